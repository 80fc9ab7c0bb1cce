"""A real browser (headless Chromium via Playwright) drives the World model tab."""
from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not shutil.which("chromium") and not __import__("os").path.exists(CHROMIUM),
                                reason="needs Debian's chromium (/usr/bin/chromium)")


@pytest.fixture(scope="module")
def page(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app_url, wait_until="load")
        page.wait_for_selector("#predict-btn", timeout=60_000)
        yield page
        browser.close()


def predicted(page, previous: str | None = None) -> tuple[str, np.ndarray]:
    """Wait for the predicted frame (a new one if ``previous`` is given); return its URL and pixels."""
    img = page.locator("#wm-latest img")
    img.wait_for(timeout=60_000)
    if previous is not None:
        page.wait_for_function("([sel, old]) => { const i = document.querySelector(sel); return i && i.src !== old; }",
                               arg=["#wm-latest img", previous], timeout=60_000)
    src = img.get_attribute("src")
    body = page.request.get(src).body()
    return src, np.asarray(Image.open(io.BytesIO(body)).convert("RGB")).astype(int)


def test_moving_a_slider_changes_the_prediction(page):
    page.locator("#wm-latest img").wait_for(timeout=60_000)  # the tab opens on a rollout of the first example
    page.locator("#reset-btn").click()
    page.locator("#wm-latest img").wait_for(state="detached", timeout=30_000)
    page.locator("#predict-btn").click()
    src, before = predicted(page)
    page.wait_for_function("() => document.querySelector('#wm-status').innerText.includes('1 chunk')", timeout=60_000)

    page.locator("#reset-btn").click()
    page.locator("#wm-latest img").wait_for(state="detached", timeout=30_000)
    slider = page.locator("#action-0 input[type=range]")
    slider.focus()
    slider.press("End")  # dx to its maximum
    assert float(page.locator("#action-0 input[type=number]").input_value()) == 1.0

    page.locator("#predict-btn").click()
    _, after = predicted(page, previous=src)
    assert before.shape == after.shape
    assert np.abs(before - after).mean() > 0.05, "the predicted frame should depend on the action"


def test_a_bad_pack_shows_a_message_and_the_session_keeps_working(page):
    page.get_by_text("Model pack").first.click()
    page.locator("#pack-box textarea, #pack-box input").first.fill("no/such/pack")
    page.locator("#load-pack-btn").click()
    toast = page.locator("[data-testid=toast-text]").first
    toast.wait_for(timeout=30_000)
    assert "not found" in toast.inner_text() and "Traceback" not in page.content()
    src = page.locator("#wm-latest img").get_attribute("src")
    page.locator("#predict-btn").click()
    predicted(page, previous=src)  # the old pack still answers


def test_clicking_a_point_on_the_latent_map_shows_its_frames(page):
    page.get_by_role("tab", name="Latent space").click()
    page.wait_for_selector("#latent-map .js-plotly-plot", timeout=60_000)
    page.wait_for_function("() => document.querySelector('#latent-map .js-plotly-plot').__rlaHooked === true", timeout=30_000)
    # the screen position of the first example-episode point (the diamonds trace)
    x, y = page.evaluate("""() => {
        const p = document.querySelector('#latent-map .js-plotly-plot');
        const tr = p._fullData.find(t => t.marker && t.marker.symbol === 'diamond');
        const box = p.querySelector('.nsewdrag').getBoundingClientRect();
        return [box.left + p._fullLayout.xaxis.l2p(tr.x[0]), box.top + p._fullLayout.yaxis.l2p(tr.y[0])];
    }""")
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_selector("#ls-frames img", timeout=60_000)
    assert int(page.locator("#latent-point input").input_value()) >= 0  # the diamond, or a neighbour it overlaps
    page.get_by_role("tab", name="World model").click()
