"""Measure the three properties the paper claims for residual latent actions.

    python -m training.properties --pack assets/pack --data data/pipeline --holdout-ae runs/pipeline/ae_without_PokeCube/autoencoder --holdout-task PokeCube --out docs/properties.md

- **Predictive**: held-out reconstruction of ``z_{t+k}`` from ``(z_t, u)`` against the copy floor
  (predicting ``z_t``), on all tokens and on the tokens that change.
- **Generalizes**: an autoencoder trained without one task, evaluated on that task's held-out
  episodes, against the autoencoder that saw the task and against the copy floor.
- **Temporal topology**: decode points on the line from noise (α = 0) to the latent action of a
  held-out pair (α = 1), match each decoded frame to the closest real frame between ``t`` and
  ``t + k``, and report Spearman's ρ between α and the matched time step (1 = ordered in time).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from rla.autoencoder import RLAAutoencoder
from rla.interpolate import alphas, match_frames, noise_path, rank_correlation
from rla.pack import ModelPack
from training.common import DEFAULT_CACHE, TokenData
from training.train_autoencoder import reconstruction_report


def heldout(data, encoder, task: str | None = None) -> TokenData:
    from rla.data import FeatureCache, load_episodes, split_episodes

    _, val = split_episodes(load_episodes(data), val_fraction=0.1, seed=0)
    val = [ep for ep in val if task is None or ep.task == task]
    cache = FeatureCache(DEFAULT_CACHE)
    return TokenData(val, [cache.episode_tokens(ep, encoder) for ep in val])


@torch.no_grad()
def temporal_topology(pack: ModelPack, data: TokenData, k: int = 15, points: int = 11, pairs: int = 64, seed: int = 0) -> dict:
    """Mean Spearman ρ between α and the matched real time step over held-out pairs."""
    ae, dyn = pack.autoencoder, pack.dynamics
    gen = torch.Generator().manual_seed(seed)
    a = alphas(points)
    rhos, moved = [], 0
    candidates = [(e, t) for e, tok in enumerate(data.tokens) for t in range(0, tok.shape[0] - k, 5)]
    order = torch.randperm(len(candidates), generator=gen)[: pairs * 3].tolist()
    for i in order:
        e, t = candidates[i]
        real = data.tokens[e][t : t + k + 1]  # (k+1, N, D)
        if (real[-1] - real[0]).abs().mean() < 1e-3:
            continue  # nothing moves: no order to recover
        moved += 1
        u = ae.encode(real[:1], real[-1:])[0]  # (Q, C)
        noise = torch.randn(u.shape, generator=gen) * dyn.u_std + dyn.u_mean
        path = noise_path(u, noise, a)  # (P, Q, C)
        decoded = ae.decode(real[:1].expand(points, -1, -1), path)
        index, _ = match_frames(decoded, real)
        rho = rank_correlation(a, index.float())
        if not np.isnan(rho):
            rhos.append(rho)
        if moved >= pairs:
            break
    return {"k": k, "points": points, "pairs": len(rhos), "spearman_mean": float(np.mean(rhos)) if rhos else float("nan"),
            "spearman_median": float(np.median(rhos)) if rhos else float("nan"), "fraction_positive": float(np.mean(np.array(rhos) > 0)) if rhos else float("nan")}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", required=True)
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--holdout-ae", default=None, help="autoencoder trained with --exclude-task TASK")
    parser.add_argument("--holdout-task", default=None)
    parser.add_argument("--out", type=Path, required=True, help="markdown report (a .json is written beside it)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    pack = ModelPack.load(args.pack)
    val = heldout(args.data, pack.encoder)
    report = {"predictive": reconstruction_report(pack.autoencoder, val), "temporal_topology": temporal_topology(pack, val)}
    if args.holdout_ae and args.holdout_task:
        task_val = heldout(args.data, pack.encoder, args.holdout_task)
        report["generalizes"] = {"task": args.holdout_task, "episodes": len(task_val.episodes),
                                 "without_task": reconstruction_report(RLAAutoencoder.load(args.holdout_ae), task_val),
                                 "with_task": reconstruction_report(pack.autoencoder, task_val)}
    report["command"] = "python -m training.properties " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    args.out.write_text(render(report))
    print(render(report))
    return report


def render(r: dict) -> str:
    p, t = r["predictive"], r["temporal_topology"]
    lines = [f"Command: `{r['command']}`", "", "## Predictive (held-out pairs, k in 1–20)", "",
             "| | autoencoder | copy floor | ratio |", "|---|---|---|---|",
             f"| MSE, all tokens | {p['mse']:.5f} | {p['copy_mse']:.5f} | {p['mse_vs_copy']:.2f}x |",
             f"| MSE, moving tokens | {p['mse_moving']:.5f} | {p['copy_mse_moving']:.5f} | {p['mse_vs_copy_moving']:.2f}x |",
             f"| L1, moving tokens | {p['l1_moving']:.5f} | {p['copy_l1_moving']:.5f} | {p['l1_vs_copy_moving']:.2f}x |",
             "", f"Moving tokens are {p['moving_fraction']:.1%} of all tokens.", ""]
    if "generalizes" in r:
        g = r["generalizes"]
        w, wo = g["with_task"], g["without_task"]
        lines += [f"## Generalizes (held-out {g['task']} episodes: {g['episodes']})", "",
                  "| autoencoder | MSE moving | vs copy | L1 moving | vs copy |", "|---|---|---|---|---|",
                  f"| trained with {g['task']} | {w['mse_moving']:.5f} | {w['mse_vs_copy_moving']:.2f}x | {w['l1_moving']:.5f} | {w['l1_vs_copy_moving']:.2f}x |",
                  f"| trained without {g['task']} | {wo['mse_moving']:.5f} | {wo['mse_vs_copy_moving']:.2f}x | {wo['l1_moving']:.5f} | {wo['l1_vs_copy_moving']:.2f}x |", ""]
    lines += ["## Temporal topology", "",
              f"Decoding {t['points']} points from noise (α = 0) to the latent action (α = 1) of {t['pairs']} held-out pairs "
              f"(k = {t['k']}), each matched to the closest real frame in t…t+k:", "",
              f"- Spearman ρ(α, matched step): mean **{t['spearman_mean']:.2f}**, median {t['spearman_median']:.2f}",
              f"- pairs with ρ > 0: {t['fraction_positive']:.0%}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
