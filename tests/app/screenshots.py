"""Screenshots of every tab for docs/screenshots/ (headless Chromium via Playwright).

    python -m tests.app.screenshots                       # the default pack (assets/pack) and examples
    python -m tests.app.screenshots --tiny                # a tiny pack on synthetic episodes (no assets needed)
    python -m tests.app.screenshots --url http://127.0.0.1:7860   # an app that is already running

Each tab is opened, its main button pressed, and the page captured once the outputs arrive.
``policies`` runs one live ManiSkill episode of the WAM seed-0 PullCube policy (the simulator must
be installed); ``policies-wmrl`` rolls a WMRL policy out in imagination and captures that section.
"""
from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"

# clicks (as plotly reports it) an example-episode point a third of the way along the ◆ trace
CLICK_A_DIAMOND = """() => {
  const p = document.querySelector('#latent-map .js-plotly-plot');
  const tr = p.data.find(t => t.marker && t.marker.symbol === 'diamond');
  const i = tr ? tr.customdata[Math.floor(tr.customdata.length / 3)] : 0;
  p.emit('plotly_click', {points: [{customdata: i}]});
}"""

# tab id → (tab label, steps[, selector of the element to capture instead of the whole page]); a step is
# ("click", elem_id) | ("fill", elem_id, text) | ("check", label) | ("wait", selector[, seconds]) | ("js", function source)
# | ("select", elem_id, option text)
TABS = {
    "world-model": ("World model", [("wait", "#wm-latest img"), ("click", "reset-btn"), ("check", "Use the recorded actions (example episodes)"),
                                    ("check", "Compare with the baselines"),
                                    ("fill", "wm-samples", "4"), ("click", "rollout-btn"), ("wait", "#wm-latest img")]),
    "latent-actions": ("Latent actions", [("click", "encode-btn"), ("wait", "#la-strip img"), ("click", "transfer-btn"),
                                          ("wait", "#la-transfer img")]),
    "interpolation": ("Interpolation", [("click", "interpolate-btn"), ("wait", "#ip-strip img")]),
    "latent-space": ("Latent space", [("wait", "#latent-map .js-plotly-plot"), ("js", CLICK_A_DIAMOND), ("wait", "#ls-frames img")]),
    "evaluate": ("Evaluate", [("click", "evaluate-btn"), ("wait", "#evaluate-summary >> text=Results")]),
    "plan": ("Plan", [("click", "plan-btn"), ("wait", "#plan-picture img")]),
    "policies": ("Policies", [("wait", "#policy-table"), ("select", "policy-choice", "PullCube · wam · seed 0"),
                              ("fill", "policy-episodes", "1"), ("click", "run-policy-btn"),
                              ("wait", "#policy-status >> text=episodes successful", 600)]),
    "policies-wmrl": ("Policies", [("wait", "#wmrl-section"), ("click", "imagine-wmrl-btn"), ("wait", "#wmrl-picture img", 120)],
                      "#wmrl-section"),
    "about": ("About", [("wait", "#about-diagram svg")]),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(tiny: bool, pack: str | None, examples: str | None = None):
    """Launch the app in this process; returns (demo, url)."""
    import torch

    torch.set_num_threads(1)
    from app.packs import default_pack
    from app.ui import build_demo, launch_kwargs

    episodes = None
    if tiny:
        from tests.app.tiny import build_tiny_pack, synthetic_episodes

        episodes = synthetic_episodes()
        pack = str(build_tiny_pack(Path(tempfile.mkdtemp()) / "pack", episodes))
    demo = build_demo(pack or default_pack(), episodes=episodes, examples_dir=examples, cache_dir=tempfile.mkdtemp())
    port = free_port()
    demo.queue().launch(server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs())
    return demo, f"http://127.0.0.1:{port}/"


def wait_idle(page, timeout: float = 60.0) -> None:
    """Wait until no Gradio progress indicator is visible."""
    deadline = time.time() + timeout
    page.wait_for_timeout(400)
    while time.time() < deadline:
        if page.locator(".progress-text, .eta-bar, .pending").count() == 0:
            break
        page.wait_for_timeout(250)
    page.wait_for_timeout(600)


def run_step(page, step) -> None:
    kind, target = step[0], step[1]
    if kind == "click":
        page.locator(f"#{target}").click()
    elif kind == "fill":
        box = page.locator(f"#{target} input").first
        box.fill(step[2])
        box.press("Enter") if target == "latent-point" else box.blur()
    elif kind == "check":
        page.get_by_label(target).check()
    elif kind == "js":
        page.wait_for_function("() => document.querySelector('#latent-map .js-plotly-plot').__rlaHooked === true")
        page.evaluate(target)
    elif kind == "select":
        page.locator(f"#{target} input").first.click()
        page.get_by_role("option", name=step[2], exact=True).click()
    elif kind == "wait":
        page.wait_for_selector(target, timeout=1000 * (step[2] if len(step) > 2 else 120))
    page.wait_for_timeout(300)


def capture(url: str, out: Path, tabs=TABS, width: int = 1400) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    shots = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": width, "height": 900}, device_scale_factor=1)
        page.goto(url, wait_until="load")
        page.wait_for_selector("#predict-btn", timeout=60_000)
        for tab_id, (label, steps, *element) in tabs.items():
            page.get_by_role("tab", name=label).click()
            page.wait_for_timeout(500)
            for step in steps:
                run_step(page, step)
            wait_idle(page)
            path = out / f"{tab_id}.png"
            if element:
                page.locator(element[0]).screenshot(path=str(path))
            else:
                page.screenshot(path=str(path), full_page=True)
            shots.append(path)
            print(path)
        browser.close()
    return shots


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", help="an app that is already running")
    p.add_argument("--tiny", action="store_true", help="a tiny pack on synthetic episodes")
    p.add_argument("--pack", help="pack folder or Hub repo id (default: assets/pack)")
    p.add_argument("--examples", help="folder of example episodes (default: assets/examples)")
    p.add_argument("--only", help="comma-separated tab ids to capture (default: all)")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    demo = None
    url = args.url
    if url is None:
        demo, url = serve(args.tiny, args.pack, args.examples)
    tabs = {k: v for k, v in TABS.items() if not args.only or k in args.only.split(",")}
    try:
        capture(url, Path(args.out), tabs)
    finally:
        if demo is not None:
            demo.close()


if __name__ == "__main__":
    main()
