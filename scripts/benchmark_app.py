"""Latency of the app's interactive path: one predicted chunk, split into encode / predict / decode.

    python scripts/benchmark_app.py                               # the default pack (assets/pack), 1 thread
    python scripts/benchmark_app.py --pack PATH_OR_REPO --repeats 50
    python scripts/benchmark_app.py --untrained cpu               # an untrained pack of the `cpu` size (same cost)
    python scripts/benchmark_app.py --http                        # also through the served app (gradio_client)
    python scripts/benchmark_app.py --write docs/app.md           # replace the table in docs/app.md

Stages, as the World-model tab runs them for one chunk of the pack's default length:
``encode`` (frame → tokens, first time: no cache), ``encode (cached)`` (the app's diskcache hit),
``predict`` (sample the latent action by flow matching and decode tokens; default Euler steps),
``decode`` (tokens → pixels), ``chunk`` (cached encode + predict + decode: what a click costs).
Torch runs on ``--threads`` threads (default 1: the CPU is shared with training jobs).
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def stats(times_ms: list[float]) -> tuple[float, float]:
    """Median and 95th percentile (nearest rank) in ms."""
    t = sorted(times_ms)
    return statistics.median(t), t[min(len(t) - 1, round(0.95 * (len(t) - 1)))]


def timed(fn, repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def untrained_pack(preset: str, path: Path) -> str:
    """An untrained pack with the default pack's shapes (128 px, 16 px patches) at a model size."""
    from rla import (EncoderSpec, LatentFlow, ModelPack, PackInfo, PixelPatchEncoder, RegressionWorldModel, RLAAutoencoder,
                     TokenFlowWorldModel, model_configs)

    enc = PixelPatchEncoder(128, 16)
    cfg = model_configs(preset, enc.num_tokens, enc.dim, 4)
    pack = ModelPack(PackInfo(encoder=EncoderSpec.of(enc), description=f"untrained '{preset}' pack for timing"), enc,
                     RLAAutoencoder(cfg["autoencoder"]), LatentFlow(cfg["dynamics"]),
                     {"regression": RegressionWorldModel(cfg["regression"]), "token_flow": TokenFlowWorldModel(cfg["token_flow"])})
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
    enc_times = []
    for i in range(repeats):  # a fresh frame each time: no cache
        f = frame.copy()
        f[0, 0, 0] = i % 256
        start = time.perf_counter()
        pack.encoder.encode(f[None])
        enc_times.append((time.perf_counter() - start) * 1e3)
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


def over_http(pack_path: str, frame_source, repeats: int) -> list[tuple[str, float, float]]:
    """Time ``/rollout`` (one chunk) through gradio_client against the app served in this process."""
    import socket

    from gradio_client import Client

    from app.ui import build_demo, launch_kwargs

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_demo(pack_path, cache_dir=tempfile.mkdtemp())
    demo.queue().launch(server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs())
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        source, episode, image = frame_source
        args = [source, episode, 5 if episode else 0, image, 0.5, 0, 0, 0, 0, 0, 0, 0, False, 1, pack_steps(pack_path), 1, False, 0]
        times = timed(lambda: (client.predict(*args, api_name="/rollout"), client.predict(False, api_name="/reset")), repeats, 2)
        # subtract the reset call, timed on its own
        reset = timed(lambda: client.predict(False, api_name="/reset"), repeats, 1)
        med_reset = statistics.median(reset)
        what = "an example-episode frame" if source == "Example episode" else "an uploaded frame"
        return [(f"one chunk through the served app: `/rollout` via gradio_client from {what}, five PNGs and a plot back",
                 *stats([t - med_reset for t in times]))]
    finally:
        demo.close()


def pack_steps(path: str) -> int:
    from app.packs import PACKS

    return PACKS.get(path).world_model.config.sample_steps


def _ms(v: float) -> str:
    return f"{v:.1f}" if v >= 1 else f"{v:.2f}"


def table(rows, header: str) -> str:
    lines = [header, "", "| stage | median (ms) | p95 (ms) |", "|---|---:|---:|"]
    lines += [f"| {name} | {_ms(med)} | {_ms(p95)} |" for name, med, p95 in rows]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pack", help="pack folder or Hub repo id (default: $RLA_PACK or assets/pack)")
    p.add_argument("--untrained", metavar="PRESET", help="time an untrained pack of this model size instead (tiny, cpu, paper)")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", default="1,3,10,30", help="Euler step counts to time")
    p.add_argument("--http", action="store_true", help="also time the served app through gradio_client")
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
    if args.http:
        if episode_id is not None:
            source = ("Example episode", episode_id, None)
        else:
            from gradio_client import handle_file
            from PIL import Image

            tmp = Path(tempfile.mkdtemp()) / "frame.png"
            Image.fromarray(frame).save(tmp)
            source = ("Upload", None, handle_file(str(tmp)))
        rows += over_http(path, source, max(5, args.repeats // 3))
    cpu = platform.processor() or platform.machine()
    header = (f"{label} · encoder `{pack.encoder.fingerprint}` · {args.repeats} repeats after 3 warm-up calls · "
              f"torch {torch.__version__}, {args.threads} thread(s) · {os.cpu_count()} CPU cores ({cpu}) · {where}")
    text = table(rows, header)
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
