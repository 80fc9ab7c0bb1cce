"""How long one step of the batched imagined env takes on a pack (the WMRL issue: 32 envs well under a second).

    python scripts/benchmark_imagined_env.py --pack assets/pack --data assets/examples --envs 1 8 32 --euler-steps 10

Prints a markdown table: envs, Euler steps, wall and CPU milliseconds per step (median of
``--repeats`` steps after one warm-up step), with ``--threads`` torch threads. The recordings are
the successful episodes under ``--data`` that act in the pack's action space (the example episodes by default, so it runs offline).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pack", default="assets/pack")
    p.add_argument("--data", default="assets/examples")
    p.add_argument("--envs", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--euler-steps", type=int, nargs="+", default=[10])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)

    from rla import ModelPack
    from rla.data import load_episodes
    from rla.imagined_env import ImaginedCore, ImaginedEnvConfig, recordings_from_episodes

    torch.set_num_threads(args.threads)
    pack = ModelPack.load(args.pack)
    episodes = [e for e in load_episodes(args.data) if np.asarray(e.actions).shape[1] == pack.info.action_dim]
    recordings = recordings_from_episodes(episodes, pack)
    lines = [f"`{args.pack}`, {args.threads} torch thread(s), median of {args.repeats} steps", "",
             "| envs | Euler steps | wall ms / step | CPU ms / step |", "|---|---|---|---|"]
    for steps in args.euler_steps:
        for n in args.envs:
            config = ImaginedEnvConfig(euler_steps=steps, max_chunk_steps=args.repeats + 2, start_zero_prob=1.0)
            core = ImaginedCore.from_pack(pack, recordings, n, config)
            wall, cpu = [], []
            for i in range(args.repeats + 1):
                core.reset()  # every step starts fresh so no env runs out of recording
                a = torch.zeros(n, *core.action_shape)
                t0, c0 = time.perf_counter(), time.process_time()
                core.step(a)
                if i:  # the first step warms up
                    wall.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
            lines.append(f"| {n} | {steps} | {1000 * np.median(wall):.0f} | {1000 * np.median(cpu):.0f} |")
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
