"""The World model tab in a real browser (headless Chromium): the opening rollout, keyboard play, export."""
from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (/usr/bin/chromium)")]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url):
    """A fresh page (its own session) with the keyboard handler installed."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url, wait_until="load")
    page.wait_for_selector("#wm-latest img", timeout=60_000)  # the opening rollout arrives without a click
    page.locator("#header").click()  # focus the page, not a text box
    yield page
    page.close()


def status(page) -> str:
    return page.locator("#wm-status").inner_text()


def wait_status(page, text: str) -> None:
    page.wait_for_function("(t) => document.querySelector('#wm-status')?.innerText.includes(t)", arg=text, timeout=60_000)


def latest(page) -> np.ndarray:
    src = page.locator("#wm-latest img").get_attribute("src")
    return np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB")).astype(int)


def slider(page, i: int) -> float:
    return float(page.locator(f"#action-{i} input[type=number]").input_value())


def press(page, key: str, expect: str) -> None:
    page.keyboard.press(key)
    wait_status(page, expect)


def test_the_tab_opens_on_a_rollout_of_the_first_example(page):
    assert "3 chunks" in status(page) and "recorded actions" in status(page)
    assert page.locator("#wm-filmstrip img").count() == 1 and page.locator("#wm-change img").count() == 1
    assert "Keyboard play" in page.locator("#wm-keys").inner_text()


def test_keys_drive_the_rollout(page):
    press(page, "d", "4 chunks")  # continues the opening rollout with +dx
    assert (slider(page, 0), slider(page, 1), slider(page, 2)) == (1.0, 0.0, 0.0)
    assert "mixed recorded and your actions" in status(page)
    press(page, "z", "3 chunks")  # undo
    press(page, "r", "Set the actions")  # reset: back to the start frame
    page.locator("#wm-latest img").wait_for(state="detached", timeout=30_000)

    press(page, "d", "1 chunk")
    right = latest(page)
    press(page, "r", "Set the actions")
    page.locator("#wm-latest img").wait_for(state="detached", timeout=30_000)
    press(page, "a", "1 chunk")
    assert slider(page, 0) == -1.0
    left = latest(page)
    assert np.abs(right - left).mean() > 0.05, "+dx and −dx should predict different frames"

    press(page, "w", "2 chunks")
    assert (slider(page, 0), slider(page, 1)) == (0.0, 1.0)
    grip = slider(page, 3)
    press(page, "g", "3 chunks")  # toggles the gripper and predicts
    assert slider(page, 3) == (-1.0 if grip > 0 else 1.0)
    press(page, " ", "4 chunks")  # Space: again with the current sliders

    # what the server predicted with, from the exported actions: the keys' values arrived before each click
    page.locator("#export-btn").click()
    link = page.locator("#wm-downloads a[href$='.json']")
    link.wait_for(timeout=60_000)
    chunks = json.loads(page.request.get(link.get_attribute("href")).body())["chunks"]
    g = -1.0 if grip > 0 else 1.0
    assert [c["actions"][0] for c in chunks] == [[-1.0, 0, 0, grip], [0, 1.0, 0, grip], [0, 1.0, 0, g], [0, 1.0, 0, g]]
    assert not any(c["recorded"] for c in chunks)


def test_keys_typed_into_a_text_box_do_not_play(page):
    box = page.locator("#wm-samples input[type=number]")
    box.click()
    page.keyboard.press("r")  # would reset the rollout
    page.keyboard.press("d")
    page.wait_for_timeout(1500)
    assert "3 chunks" in status(page)


PLAY = """(src) => new Promise((done) => {
  const v = document.createElement('video');
  v.muted = true;
  v.onloadeddata = () => done({ok: true, width: v.videoWidth, height: v.videoHeight, seconds: v.duration});
  v.onerror = () => done({ok: false, code: v.error && v.error.code});
  v.src = src;
  document.body.appendChild(v);
  setTimeout(() => done({ok: false, code: 'timeout'}), 20000);
})"""


def test_export_downloads_a_video_the_browser_plays(page, tmp_path):
    import cv2

    page.locator("#export-btn").click()
    links = page.locator("#wm-downloads a[href]")
    links.first.wait_for(timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('#wm-downloads a[href]').length >= 3", timeout=30_000)
    hrefs = {h.rsplit(".", 1)[-1]: h for h in (links.nth(i).get_attribute("href") for i in range(links.count()))}
    assert set(hrefs) >= {"mp4", "gif", "json"}, hrefs
    mp4 = tmp_path / "rollout.mp4"
    mp4.write_bytes(page.request.get(hrefs["mp4"]).body())
    cap = cv2.VideoCapture(str(mp4))
    frames = 0
    while cap.read()[0]:
        frames += 1
    width = cap.get(cv2.CAP_PROP_FRAME_WIDTH)
    cap.release()
    assert frames == 4, "the start and three chunks"
    played = page.evaluate(PLAY, hrefs["mp4"])
    assert played["ok"] and played["width"] == width and played["seconds"] > 1, played
    with Image.open(io.BytesIO(page.request.get(hrefs["gif"]).body())) as gif:
        assert gif.n_frames == 4
    record = json.loads(page.request.get(hrefs["json"]).body())
    assert len(record["chunks"]) == 3 and all(c["recorded"] for c in record["chunks"])
    assert len(record["chunks"][0]["actions"]) == record["chunk"]


def test_export_through_the_api(client, tmp_path):
    import cv2

    with pytest.raises(Exception, match="Predict at least one chunk"):
        client.predict(False, api_name="/export")
    client.predict("Example episode", "synthetic-1", 2, None, 1.0, 0, 0, -1.0, 0, 0, 0, 0, False, 2, 4, 1, True, 0,
                   api_name="/rollout")
    files = client.predict(True, api_name="/export")
    by_kind = {Path(f).suffix: Path(f) for f in files}
    assert set(by_kind) == {".mp4", ".gif", ".json"}
    cap = cv2.VideoCapture(str(by_kind[".mp4"]))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    assert count == 3, "the start and two chunks"
    with Image.open(by_kind[".gif"]) as gif:
        assert gif.n_frames == 3 and gif.size[0] > 3 * 256, "RLA-WM, real and two baselines side by side"
    record = json.loads(by_kind[".json"].read_text())
    assert record["start"] == {"episode": "synthetic-1", "t": 2, "task": "PullCube"}
    assert [c["recorded"] for c in record["chunks"]] == [False, False]
    assert record["chunks"][1]["actions"][0] == [1.0, 0.0, 0.0, -1.0] and record["chunks"][0]["steps"] == 4
    assert set(record["methods"]) == {"rla", "regression", "token_flow"}
