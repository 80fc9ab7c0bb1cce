"""Where along its path a flow world model errs: a diagnostic on the validation split.

    python scripts/flow_time_profile.py --pack assets/pack --data data/pipeline
    python scripts/flow_time_profile.py --pack assets/pack --data data/pipeline --token-flow runs/pipeline/old/token_flow_time0/token_flow

For the pack's token-space flow (or the one in ``--token-flow``), on one chunk of recorded actions
from validation windows (never the test split), it prints the moving-token L1 of the final
prediction

- after 1, 3, 10 and 30 Euler steps (one sample, and zero noise), beside copying the start frame
  and the pack's direct regression;
- of the network's clean-token prediction ``x̂(x_t, t)`` when it is given the *true* future mixed
  with noise at flow time ``t`` (``t = 1`` is pure noise, where a sampler starts): low error at
  small ``t`` and high error at ``t = 1`` means the start of the path, where the sampler's first
  steps decide the sample, was barely trained.
"""
from __future__ import annotations

import argparse

import torch

from rla.data import ChunkEvalSet, load_episodes
from rla.metrics import moving_tokens
from rla.pack import ModelPack

TIMES = (0.05, 0.2, 0.5, 0.8, 1.0)
STEPS = (1, 3, 10, 30)


def moving_l1(pred: torch.Tensor, z_k: torch.Tensor, moving: torch.Tensor) -> float:
    return float((pred - z_k).abs().mean(-1)[moving].mean())


@torch.no_grad()
def profile(pack: ModelPack, flow, z_t: torch.Tensor, z_k: torch.Tensor, a: torch.Tensor, seed: int = 0) -> list[tuple[str, float]]:
    moving = moving_tokens(z_t, z_k, pack.autoencoder.config.change_threshold)
    rows = [("copy the start frame", moving_l1(z_t, z_k, moving))]
    if "regression" in pack.baselines:
        rows.append(("direct regression", moving_l1(pack.baselines["regression"].predict(z_t, a), z_k, moving)))
    for steps in STEPS:
        sample = flow.predict(z_t, a, steps=steps, generator=torch.Generator().manual_seed(seed))
        zero = flow.predict(z_t, a, steps=steps, temperature=0.0)
        rows.append((f"token flow, {steps} Euler steps: one sample / zero noise",
                     (moving_l1(sample, z_k, moving), moving_l1(zero, z_k, moving))))
    x_0 = (z_k - flow.z_mean) / flow.z_std
    cond = flow.prepare(z_t, a)
    gen = torch.Generator().manual_seed(seed)
    for t in TIMES:
        tt = torch.full((len(z_t),), t)
        x_t = flow.path.sample(x_0, tt, noise=torch.randn(x_0.shape, generator=gen)).x_t
        x_hat = flow.head(x_t, tt, cond) * flow.z_std + flow.z_mean
        rows.append((f"clean-token prediction x̂ from the true future noised to t = {t}", moving_l1(x_hat, z_k, moving)))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", default="assets/pack")
    parser.add_argument("--data", required=True, nargs="+")
    parser.add_argument("--token-flow", default=None, help="a token-flow model folder to profile instead of the pack's")
    parser.add_argument("--episodes", type=int, default=16, help="validation episodes (a window every 20 frames)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pack = ModelPack.load(args.pack)
    if args.token_flow:
        from rla.baselines import TokenFlowWorldModel

        flow = TokenFlowWorldModel.load(args.token_flow)
    elif "token_flow" in pack.baselines:
        flow = pack.baselines["token_flow"]
    else:
        raise SystemExit(f"{args.pack} has no token-flow baseline: pass --token-flow FOLDER")
    if pack.splits is None:
        raise SystemExit(f"{args.pack} records no splits: this diagnostic reads its validation episodes only")
    episodes = pack.splits.select([e for e in load_episodes(args.data) if e.task != "play"], "val")[:args.episodes]
    data = ChunkEvalSet(episodes, num_chunks=1, chunk=pack.info.chunk, start="all", stride=20)
    items = [data[i] for i in range(len(data))]
    frames_t = torch.stack([it["frame_0"] for it in items]).numpy()
    frames_k = torch.stack([it["frames"][0] for it in items]).numpy()
    z_t, z_k = pack.encoder.encode(frames_t), pack.encoder.encode(frames_k)
    a = torch.stack([it["actions"][0] for it in items]).float()
    print(f"{len(items)} validation windows from {len(episodes)} episodes, one chunk of {pack.info.chunk} recorded actions; "
          f"token flow trained with time_mean = {flow.config.time_mean}\n")
    print("| prediction | moving-token L1 ↓ |\n|---|---|")
    for name, value in profile(pack, flow, z_t, z_k, a):
        cell = " / ".join(f"{v:.4f}" for v in value) if isinstance(value, tuple) else f"{value:.4f}"
        print(f"| {name} | {cell} |")


if __name__ == "__main__":
    main()
