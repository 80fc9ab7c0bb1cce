"""Latency of the app's interactive path: one predicted chunk, split into encode / predict / decode.

    python scripts/benchmark_app.py                               # the default pack (assets/pack), 1 thread
    python scripts/benchmark_app.py --pack PATH_OR_REPO --repeats 50
    python scripts/benchmark_app.py --untrained cpu               # an untrained pack of the `cpu` size (same cost)
    python scripts/benchmark_app.py --http                        # also /rollout through the served app (gradio_client)
    python scripts/benchmark_app.py --http --browser              # and key presses in headless Chromium
    python scripts/benchmark_app.py --write docs/app.md           # replace the table in docs/app.md

Stages, as the World-model tab runs them for one chunk of the pack's default length:
``encode`` (frame → tokens, first time: no cache), ``encode (cached)`` (the app's diskcache hit),
``predict`` (sample the latent action by flow matching and decode tokens; default Euler steps),
``decode`` (tokens → pixels), ``chunk`` (cached encode + predict + decode: what a click costs).
Torch runs on ``--threads`` threads (default 1: the CPU is shared with training jobs).

Every row gives the wall clock and this process's CPU time (all threads): on a busy machine the
wall clock mostly measures waiting for a core, the CPU time what the work costs. ``--http`` serves
the app in this process and times ``/rollout`` through ``gradio_client`` beside the model compute of
the same request; the client runs in this process too, so its CPU time is included.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass
class Samples:
    """Repeated timings of one thing, in ms: wall clock and this process's CPU time (all its threads)."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def measure(self, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        self.wall.append((time.perf_counter() - wall) * 1e3)
        self.cpu.append((time.process_time() - cpu) * 1e3)
        return out


def stats(samples: Samples) -> tuple[float, float, float]:
    """Wall-clock median and 95th percentile (nearest rank), CPU-time median; ms."""
    t = sorted(samples.wall)
    return statistics.median(t), t[min(len(t) - 1, round(0.95 * (len(t) - 1)))], statistics.median(samples.cpu)


def timed(fn, repeats: int, warmup: int = 3) -> Samples:
    for _ in range(warmup):
        fn()
    out = Samples()
    for _ in range(repeats):
        out.measure(fn)
    return out


def untrained_pack(preset: str, path: Path) -> str:
    """An untrained pack with the default pack's shapes (128 px, 16 px patches) at a model size."""
    from rla import ModelPack, PixelPatchEncoder

    pack = ModelPack.from_presets(preset, PixelPatchEncoder(128, 16), description=f"untrained '{preset}' pack for timing")
    return str(pack.save(path))


def a_frame(size: int):
    """(frame, description, episode id or None): from the example episodes if there are any, else synthetic."""
    import numpy as np

    from app.episodes import EpisodeStore

    store = EpisodeStore.from_folder()
    if len(store):
        ep = next(iter(store))
        return ep.frames[min(5, ep.num_steps)], f"frame 5 of example episode {ep.episode_id}", str(ep.episode_id)
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (size, size, 3), dtype=np.uint8), "a random frame (no example episodes found)", None


def in_process(pack, frame, repeats: int, steps_list: list[int]) -> list[tuple[str, float, float]]:
    import numpy as np
    import torch

    from app.features import FeatureCache
    from app.predict import predict_chunk

    rows = []
    a = np.zeros((pack.info.chunk, pack.info.action_dim), np.float32)
    a[:, 0] = 0.5
    enc_times = Samples()
    for i in range(repeats):  # a fresh frame each time: no cache
        f = frame.copy()
        f[0, 0, 0] = i % 256
        enc_times.measure(lambda: pack.encoder.encode(f[None]))
    rows.append(("encode (first time)", *stats(enc_times)))
    with tempfile.TemporaryDirectory() as d:
        cache = FeatureCache(d)
        cache.encode(pack.encoder, frame[None])
        rows.append(("encode (cached)", *stats(timed(lambda: cache.encode(pack.encoder, frame[None]), repeats))))
        z = cache.encode(pack.encoder, frame[None])[0]
        at = torch.from_numpy(a)[None]
        default = pack.world_model.config.sample_steps
        for steps in steps_list:
            gen = torch.Generator().manual_seed(0)
            rows.append((f"predict, {steps} Euler steps" + (" (default)" if steps == default else ""),
                         *stats(timed(lambda: pack.world_model.predict(z, at, steps=steps, generator=gen), repeats))))
        z_next = pack.world_model.predict(z, at, steps=default)
        rows.append(("decode to pixels", *stats(timed(lambda: pack.to_images(z_next), repeats))))

        def chunk():
            tokens, _ = cache.encode(pack.encoder, frame[None])
            predict_chunk(pack.world_model, pack, tokens[0].numpy(), a, steps=default, samples=1, seed=0, index=0, method="rla")

        rows.append((f"**one chunk: encode (cached) + predict + decode, {default} steps**", *stats(timed(chunk, repeats))))
        for name, model in pack.baselines.items():
            rows.append((f"baseline {name}: predict", *stats(timed(lambda: model.predict(z, at, steps=default), repeats))))
        cache.close()
    return rows


REQUESTS = (("`/reset` of an empty session: no model, no pictures (the protocol alone)", 0, False),
            ("`/rollout`, one chunk (a key press): 4 pictures back", 1, False),
            ("`/rollout`, 3 chunks with both baselines: 4 pictures back", 3, True))


def http_requests(pack_path: str, episode_id: str, repeats: int, browser: bool = False) -> tuple[list[tuple], Samples | None]:
    """``/rollout`` through the served app against the model compute of the same request.

    Every call starts a new rollout (the start frame alternates between t = 5 and 6) with a new
    seed, so its pictures are new and get encoded (the recorded frames repeat, as in real use).
    Returns rows ``(request, compute, server drawing, round trips...)`` and, with ``browser``, the
    key-press timings in Chromium (:func:`key_presses`).
    """
    import socket

    import numpy as np
    from gradio_client import Client

    from app.episodes import EpisodeStore
    from app.features import FeatureCache
    from app.frames import EPISODE, pick_frame
    from app.packs import PACKS
    from app.predict import extend, recorded_chunks, start_rollout
    from app.rollout_view import render
    from app.ui import build_demo, launch_kwargs

    pack, store = PACKS.get(pack_path), EpisodeStore.from_folder()
    steps = pack.world_model.config.sample_steps
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_demo(pack_path, cache_dir=tempfile.mkdtemp())
    demo.queue().launch(server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs())
    rows = []
    try:
        features = FeatureCache(tempfile.mkdtemp())
        clients = {"gradio_client": Client(f"http://127.0.0.1:{port}/", verbose=False),
                   "gradio_client, ssl_verify=False": Client(f"http://127.0.0.1:{port}/", verbose=False, ssl_verify=False)}
        for what, chunks, baselines in REQUESTS:
            compute, drawing = Samples(), Samples()
            trips = {name: Samples() for name in clients}
            for i in range(repeats + 2):  # interleaved, so that every measure sees the same load; the first two warm up
                warm = i >= 2
                if chunks:  # the same work in process: predict (+ baselines), then draw and encode
                    picked = pick_frame(store, pack.encoder.image_size, EPISODE, episode_id, 5 + i % 2, None)
                    ro = start_rollout(pack, "bench", features, picked)
                    todo = recorded_chunks(picked.episode, ro.t0, 0, ro.chunk, chunks)
                    (compute if warm else Samples()).measure(
                        lambda: extend(ro, pack, todo, True, steps=steps, samples=1, seed=1000 + i, baselines=baselines))
                    (drawing if warm else Samples()).measure(lambda: render(ro, pack, features, store, baselines).outputs())
                for name, client in clients.items():  # a new start frame and seed every call: new pictures to encode
                    (trips[name] if warm else Samples()).measure(
                        lambda: client.predict(False, api_name="/reset") if not chunks else client.predict(
                            EPISODE, episode_id, 5 + i % 2, None, 0, 0, 0, 0, 0, 0, 0, 0, True, chunks, steps, 1, baselines,
                            2000 + i, api_name="/rollout"))
            if not chunks:
                compute, drawing = Samples([0.0], [0.0]), Samples([0.0], [0.0])
            rows.append((what, compute, drawing, *trips.values()))
        presses = None
        if browser:
            def one_chunk():  # the model compute of a key press, measured in process after each press
                picked = pick_frame(store, pack.encoder.image_size, EPISODE, episode_id, 5, None)
                ro = start_rollout(pack, "bench", features, picked)
                a = np.zeros((ro.chunk, pack.info.action_dim), np.float32)
                return lambda: extend(ro, pack, [a], False, steps=steps, samples=1, seed=0, baselines=False)

            presses = key_presses(f"http://127.0.0.1:{port}/", repeats, one_chunk)
    finally:
        demo.close()
    return rows, presses


def key_presses(url: str, repeats: int, compute, chromium: str = "/usr/bin/chromium") -> tuple[Samples, Samples]:
    """Headless Chromium on the World model tab: from a key press (`D` or `A`: one chunk) to its pictures shown.

    After each press ``compute()()`` (the same model work, in process) is timed too, so both see the same load.
    """
    from playwright.sync_api import sync_playwright

    done = """([n, old]) => {
      const status = document.querySelector('#wm-status')?.innerText || '';
      const shown = (sel) => { const im = document.querySelector(sel + ' img'); return im && im.complete && im.naturalWidth > 0; };
      const latest = document.querySelector('#wm-latest img');
      return status.includes(n + (n > 1 ? ' chunks' : ' chunk')) && latest && latest.src !== old
        && ['#wm-latest', '#wm-real', '#wm-filmstrip', '#wm-change'].every(shown);
    }"""
    out, model = Samples(), Samples()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="load")
        page.wait_for_selector("#wm-latest img", timeout=60_000)
        page.locator("#header").click()
        n = 0
        for i in range(repeats + 2):
            if n == 8:  # keep the filmstrip at the size of a short game
                page.keyboard.press("r")
                page.wait_for_selector("#wm-latest img", state="detached", timeout=60_000)
                n = 0
            if n == 0 and i == 0:
                page.keyboard.press("r")
                page.wait_for_selector("#wm-latest img", state="detached", timeout=60_000)
            n += 1
            old = page.evaluate("() => document.querySelector('#wm-latest img')?.src || null")

            def press(key="d" if i % 2 else "a", n=n, old=old):
                page.keyboard.press(key)
                page.wait_for_function(done, arg=[n, old], polling="raf", timeout=60_000)

            (out if i >= 2 else Samples()).measure(press)
            (model if i >= 2 else Samples()).measure(compute())
        browser.close()
    return out, model


def client_setup_ms(repeats: int = 10) -> float:
    import httpx

    return statistics.median(timed(lambda: httpx.Client().close(), repeats, 1).wall)


def http_table(rows, clients=("gradio_client", "gradio_client, ssl_verify=False")) -> str:
    """Each cell: wall-clock median (CPU-time median), ms; overhead = round trip − model compute."""
    head = "| request | model compute | app drawing + encoding (in process) | " + \
        " | ".join(f"round trip, {c} | overhead" for c in clients) + " |"
    lines = [head, "|---" + "|---:" * (2 + 2 * len(clients)) + "|"]
    med = statistics.median
    for what, compute, drawing, *trips in rows:
        cells = [f"{_ms(med(x.wall))} ({_ms(med(x.cpu))})" for x in (compute, drawing)]
        for t in trips:
            cells += [f"{_ms(med(t.wall))} ({_ms(med(t.cpu))})",
                      f"**{_ms(med(t.wall) - med(compute.wall))}** ({_ms(med(t.cpu) - med(compute.cpu))})"]
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ms(v: float) -> str:
    return f"{v:.1f}" if v >= 1 else f"{v:.2f}"


def table(rows, header: str) -> str:
    lines = [header, "", "| stage | median (ms) | p95 (ms) | CPU time, median (ms) |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {_ms(med)} | {_ms(p95)} | {_ms(cpu)} |" for name, med, p95, cpu in rows]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pack", help="pack folder or Hub repo id (default: $RLA_PACK or assets/pack)")
    p.add_argument("--untrained", metavar="PRESET", help="time an untrained pack of this model size instead (tiny, cpu, paper)")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", default="1,3,10,30", help="Euler step counts to time")
    p.add_argument("--http", action="store_true", help="also time the served app through gradio_client")
    p.add_argument("--browser", action="store_true", help="with --http: also time key presses in headless Chromium")
    p.add_argument("--write", type=Path, help="replace the table between the benchmark markers in this markdown file")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from app.packs import PACKS, default_pack

    if args.untrained:
        path = untrained_pack(args.untrained, Path(tempfile.mkdtemp()) / "pack")
        label = f"untrained `{args.untrained}` pack (same shapes and cost as a trained one)"
    else:
        path = default_pack(args.pack)
        if path is None:
            sys.exit("No pack: pass --pack PATH, set RLA_PACK, build assets/pack, or use --untrained cpu")
        label = f"pack `{Path(path).name if Path(path).exists() else path}`"
    pack = PACKS.get(path)
    frame, where, episode_id = a_frame(pack.encoder.image_size)
    rows = in_process(pack, frame, args.repeats, [int(s) for s in args.steps.split(",")])
    cpu = platform.processor() or platform.machine()
    header = (f"{label} · encoder `{pack.encoder.fingerprint}` · {args.repeats} repeats after 3 warm-up calls · "
              f"torch {torch.__version__}, {args.threads} thread(s) · {os.cpu_count()} CPU cores ({cpu}) · {where} · "
              f"load average {os.getloadavg()[0]:.1f} at the start")
    text = table(rows, header)
    if args.http:
        if episode_id is None:
            sys.exit("--http needs example episodes (assets/examples)")
        n = max(5, args.repeats // 2)
        rows_http, presses = http_requests(path, episode_id, n, browser=args.browser)
        text += (f"\n\nThrough the served app (server and client in this process), medians of {n} calls after 2 warm-up "
                 f"calls, each beside the same work in process, recorded actions, {pack.world_model.config.sample_steps} Euler steps, "
                 "1 sample. Each cell: wall clock "
                 "in ms (CPU time of the process, all threads, in ms); overhead = round trip − model compute:\n\n"
                 + http_table(rows_http)
                 + f"\n\nCreating one `httpx.Client()` (which `gradio_client` does for every call and every file it "
                 f"downloads; it loads the CA bundle) takes {_ms(client_setup_ms())} ms here.")
        if presses is not None:
            med, p95, _ = stats(presses[0])
            compute = statistics.median(presses[1].wall)
            text += (f"\n\nIn headless Chromium, from a key press (`D`/`A`, one chunk) to its four pictures shown: median "
                     f"{_ms(med)} ms, p95 {_ms(p95)} ms ({n} presses after 2 warm-up ones, rollouts of up to 8 chunks), "
                     f"**{_ms(med - compute)} ms** above the model compute of one chunk ({_ms(compute)} ms, timed after each "
                     "press). Browser, server and client share the machine's cores.")
    print(text)
    if args.write:
        doc = args.write.read_text()
        start, end = "<!-- benchmark:start -->", "<!-- benchmark:end -->"
        if start not in doc or end not in doc:
            sys.exit(f"{args.write} has no {start} … {end} markers")
        command = "python scripts/benchmark_app.py " + " ".join(argv if argv is not None else sys.argv[1:])
        block = f"{start}\n`{command.strip()}`\n\n{text}\n{end}"
        args.write.write_text(re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, doc, flags=re.S))
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
