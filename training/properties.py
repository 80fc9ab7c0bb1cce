"""Measure the properties the paper claims for residual latent actions, each beside a null that could also score.

    python -m training.properties --pack assets/pack --data data/pipeline \
        --holdout-ae runs/pipeline/ae_without_PokeCube/autoencoder --holdout-task PokeCube --out docs/properties.md

Every number is on the pack's recorded test split (packs without one: every episode in ``--data``,
said so in the report), with 95 % bootstrap CIs that resample episodes (:mod:`rla.stats`).

- **Predictive**: reconstruction of ``z_{t+k}`` from ``(z_t, u)`` against the copy floor
  (predicting ``z_t``), per pair on the tokens that change; pairs ``(t, t + k)``, ``k`` drawn in 1–20.
- **Generalizes**: an autoencoder trained without one task, on that task's test episodes, beside
  the autoencoder that saw the task and the copy floor.
- **Ordered in time**: interior points of the noise → ``u`` path against the real in-between
  frames, beside two straight-line nulls (:mod:`rla.topology`).
- **Encodes the action**: linear probes from ``u`` to the executed actions and the displacements of
  arm and object, beside two nulls (:mod:`training.probe`); writes the probes to ``PACK/probes.npz``.

A property that does not beat its null is reported as not shown. Writes ``--out`` (markdown) and a
``.json`` beside it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from rla.autoencoder import RLAAutoencoder
from rla.horizons import AUTOENCODER_K_RANGE
from rla.labels import PATH_LABELS
from rla.metrics import moving_tokens
from rla.pack import ModelPack
from rla.probing import held_out_episodes, render_probes, run_probes
from training.common import DEFAULT_CACHE

MIN_EPISODES = 15  # fewer held-out-task episodes than this are flagged as underpowered


def recon_pairs(episodes, k_range=AUTOENCODER_K_RANGE, stride: int = 2, seed: int = 0) -> list[tuple[int, int, int]]:
    """``(episode index, t, k)`` every ``stride`` steps of every episode, ``k`` drawn uniformly (seeded)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for e, ep in enumerate(episodes):
        for t in range(0, ep.num_steps, stride):
            top = min(k_range[1], ep.num_steps - t)
            if top >= k_range[0]:
                pairs.append((e, t, int(rng.integers(k_range[0], top + 1))))
    return pairs


@torch.no_grad()
def reconstruction_scores(aes: dict, episodes, tokens, *, threshold: float, stride: int = 2, seed: int = 0) -> dict:
    """Per-pair errors of every autoencoder in ``aes`` and of the copy floor.

    A token is *moving* where the real residual's mean |·| exceeds ``threshold``; pairs without a
    moving token get NaN in the ``*_moving`` scores (left out of the means).

    Returns:
        ``{"l1_moving" | "mse_moving" | "mse": {name: (M,)}, "groups": (M,) episode ids}``; names are
        the keys of ``aes`` and ``"copy"``.
    """
    pairs = recon_pairs(episodes, stride=stride, seed=seed)
    rows = {m: {name: [] for name in [*aes, "copy"]} for m in ("l1_moving", "mse_moving", "mse")}
    for e in sorted({e for e, _, _ in pairs}):
        ts = torch.tensor([t for i, t, _ in pairs if i == e])
        ks = torch.tensor([k for i, _, k in pairs if i == e])
        z_t, z_k = tokens[e][ts].float(), tokens[e][ts + ks].float()  # (P, N, D)
        moving = moving_tokens(z_t, z_k, threshold).float()  # (P, N)
        preds = {name: ae.decode(z_t, ae.encode(z_t, z_k)) for name, ae in aes.items()} | {"copy": z_t}
        for name, pred in preds.items():
            sq, ab = (pred - z_k).square().mean(-1), (pred - z_k).abs().mean(-1)  # (P, N)
            rows["mse"][name].append(sq.mean(1))
            rows["mse_moving"][name].append((sq * moving).sum(1) / moving.sum(1))  # 0 / 0 = NaN: nothing moved
            rows["l1_moving"][name].append((ab * moving).sum(1) / moving.sum(1))
    out = {m: {name: torch.cat(v).double().numpy() for name, v in by.items()} for m, by in rows.items()}
    out["groups"] = np.asarray([episodes[e].episode_id for e, _, _ in pairs])  # pairs come in episode order
    return out


def summarise_reconstruction(scores: dict, comparisons: list[tuple[str, str]], n_boot: int = 2000, seed: int = 0) -> dict:
    """Means with CIs of every score, and the paired differences ``a − b`` for each ``(a, b)``."""
    from rla.stats import hierarchical_bootstrap, paired_difference

    g = scores["groups"]
    out = {"pairs": int(len(g)), "episodes": int(len(np.unique(g))), "means": {}, "differences": {}}
    for metric in ("l1_moving", "mse_moving", "mse"):
        out["means"][metric] = {name: hierarchical_bootstrap(v, groups=g, n_boot=n_boot, seed=seed) for name, v in scores[metric].items()}
        out["differences"][metric] = {f"{a} - {b}": paired_difference(scores[metric][a], scores[metric][b], groups=g, n_boot=n_boot, seed=seed)
                                      for a, b in comparisons}
    out["moving_pairs"] = int(np.isfinite(scores["l1_moving"]["copy"]).sum())
    return out


def temporal_topology(pack: ModelPack, episodes, tokens, k: int = 10, stride: int = 5, n_boot: int = 2000, seed: int = 0) -> dict:
    """Interior-α scores of the noise → ``u`` path and both nulls, with CIs (:func:`rla.topology.summarise`)."""
    from rla.topology import summarise, topology_scores, windows

    wins = [w for ep, z in zip(episodes, tokens) for w in windows(z, ep.episode_id, k, stride)]
    dyn = pack.dynamics
    scores = topology_scores(pack.autoencoder, wins, noise_mean=dyn.u_mean, noise_std=dyn.u_std, seed=seed)
    return summarise(scores, n_boot=n_boot, seed=seed) | {"stride": stride}


def main(argv=None) -> dict:
    from rla.data import FeatureCache

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", required=True)
    parser.add_argument("--data", nargs="+", required=True, help="recorded .h5 files or folders holding the pack's test split")
    parser.add_argument("--holdout-ae", default=None, help="autoencoder trained with --exclude-task TASK")
    parser.add_argument("--holdout-task", default=None)
    parser.add_argument("--out", type=Path, required=True, help="markdown report (a .json is written beside it)")
    parser.add_argument("--probe-weights", default=None, help="where to save the probes (default PACK/probes.npz; 'none' skips)")
    parser.add_argument("--topology-k", type=int, default=10, help="frames between the two of a topology pair")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap replicates per CI")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="feature cache folder")
    parser.add_argument("--encoder-weights", default=None,
                        help="a local weight file or folder for the pack's timm encoder (default: HF cache, then Hub)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    pack = ModelPack.load(args.pack, encoder_weights=args.encoder_weights)
    episodes, note = held_out_episodes(pack, args.data)
    cache = FeatureCache(args.cache)
    tokens = [cache.episode_tokens(e, pack.encoder).half() for e in episodes]  # exact (the cache stores float16), half the memory
    threshold = pack.autoencoder.config.change_threshold
    boot = dict(n_boot=args.n_boot, seed=args.seed)
    report = {"episodes_from": note, "episodes": len(episodes), "tasks": sorted({e.task for e in episodes}),
              "predictive": summarise_reconstruction(
                  reconstruction_scores({"autoencoder": pack.autoencoder}, episodes, tokens, threshold=threshold, seed=args.seed),
                  [("autoencoder", "copy")], **boot),
              "temporal_topology": temporal_topology(pack, episodes, tokens, k=args.topology_k, **boot)}
    if args.holdout_ae and args.holdout_task:
        sel = [i for i, e in enumerate(episodes) if e.task == args.holdout_task]
        if not sel:
            raise SystemExit(f"no {args.holdout_task} episodes among the test episodes ({note})")
        aes = {"without_task": RLAAutoencoder.load(args.holdout_ae), "with_task": pack.autoencoder}
        scores = reconstruction_scores(aes, [episodes[i] for i in sel], [tokens[i] for i in sel], threshold=threshold, seed=args.seed)
        report["generalizes"] = {"task": args.holdout_task, "underpowered": len(sel) < MIN_EPISODES, **summarise_reconstruction(
            scores, [("without_task", "copy"), ("without_task", "with_task"), ("with_task", "copy")], **boot)}
    if len({e.episode_id for e in episodes}) >= 2:
        report["probes"], probes = run_probes(pack, episodes, tokens, seed=args.seed, n_boot=args.n_boot)
        weights = args.probe_weights or str(Path(args.pack) / "probes.npz")
        if weights.lower() != "none":
            probes.save(weights)
    else:
        report["probes"] = None  # cross-validation by episode needs two episodes
    report["command"] = "python -m training.properties " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    args.out.write_text(render(report))
    print(render(report))
    return report


def _ci(d: dict, fmt: str = ".4f") -> str:
    return f"{d['mean']:{fmt}} [{d['low']:{fmt}}, {d['high']:{fmt}}]"


def _shown(diff: dict, lower_is_better: bool = True) -> bool:
    return diff["high"] < 0 if lower_is_better else diff["low"] > 0


def render(r: dict) -> str:
    p, t = r["predictive"], r["temporal_topology"]
    m, d = p["means"], p["differences"]
    pred_shown = _shown(d["l1_moving"]["autoencoder - copy"])
    lines = [f"Command: `{r['command']}`", "",
             f"Episodes: {r['episodes']} ({', '.join(r['tasks'])}), {r['episodes_from']}. Every interval is a 95 % "
             "bootstrap CI that resamples episodes (`rla.stats`). A property that does not beat its null is reported as not shown.", "",
             f"## Predictive: {'shown' if pred_shown else 'not shown'}", "",
             f"One decoder pass from `(z_t, u)` against copying `z_t`, on {p['pairs']} pairs (t, t + k), k drawn in "
             f"{AUTOENCODER_K_RANGE[0]}–{AUTOENCODER_K_RANGE[1]}, of {p['episodes']} episodes. Errors per pair on the tokens that change "
             f"({p['moving_pairs']} pairs have some), then averaged over pairs:", "",
             "| | autoencoder | copy floor | autoencoder − copy |", "|---|---|---|---|"]
    for metric, name in (("l1_moving", "L1, moving tokens"), ("mse_moving", "MSE, moving tokens"), ("mse", "MSE, all tokens")):
        lines.append(f"| {name} | {_ci(m[metric]['autoencoder'])} | {_ci(m[metric]['copy'])} | {_ci(d[metric]['autoencoder - copy'])} |")
    lines.append("")
    if "generalizes" in r:
        g = r["generalizes"]
        gm, gd = g["means"]["l1_moving"], g["differences"]["l1_moving"]
        shown = _shown(gd["without_task - copy"])
        lines += [f"## Generalizes to {g['task']}: {'shown' if shown else 'not shown'}", "",
                  f"An autoencoder trained without {g['task']}, on {g['pairs']} pairs of {g['episodes']} {g['task']} test episodes"
                  + (f" (**fewer than {MIN_EPISODES} episodes: underpowered**)" if g["underpowered"] else "") + ". L1 on moving tokens:", "",
                  "| autoencoder | L1 moving | MSE moving |", "|---|---|---|",
                  f"| trained without {g['task']} | {_ci(gm['without_task'])} | {_ci(g['means']['mse_moving']['without_task'])} |",
                  f"| trained with {g['task']} | {_ci(gm['with_task'])} | {_ci(g['means']['mse_moving']['with_task'])} |",
                  f"| copy floor | {_ci(gm['copy'])} | {_ci(g['means']['mse_moving']['copy'])} |", "",
                  f"- without − copy: {_ci(gd['without_task - copy'])} (below 0: it beats copying on a task it never saw)",
                  f"- without − with: {_ci(gd['without_task - with_task'])} (the price of not having seen the task)", ""]
    paths, labels = t["paths"], PATH_LABELS
    lines += [f"## Ordered in time: {'shown' if t['ordered_in_time'] else 'not shown'}", "",
              f"Decoding the interior points α = j/{t['k']} (j = 1…{t['k'] - 1}) of the line from noise (α = 0) to the latent "
              f"action (α = 1) of {t['pairs']} test pairs (t, t + {t['k']}) of {t['episodes']} episodes, every {t['stride']} steps, "
              "and the same points on two straight lines that know nothing of time. Error: token L1 to the real frame at "
              "t + αk. ρ: Spearman correlation of α with the step of the closest real frame in t…t+k "
              "(undefined, every point matching one frame, counts as 0).", "",
              "| path | token L1 to frame t + αk ↓ | ρ(α, matched step) ↑ | ρ undefined |", "|---|---|---|---|"]
    for name, s in paths.items():
        lines.append(f"| {labels[name]} | {_ci(s['error'])} | {_ci(s['rho'], '.2f')} | {s['rho_undefined']:.0%} |")
    lines += ["", "| RLA − null | token L1 | ρ |", "|---|---|---|"]
    for name, v in t["vs_nulls"].items():
        lines.append(f"| {labels[name].removeprefix('null: ')} | {_ci(v['error'])} | {_ci(v['rho'], '.2f')} |")
    lines += ["", "Ordered in time means RLA's ρ beats both nulls (each CI of the difference above 0); "
              f"its in-between frames are {'closer to' if t['closer_to_real'] else 'not closer to'} the real ones than both nulls'.", ""]
    if r.get("probes"):
        shown = [name for name, e in r["probes"]["targets"].items() if e["shown"]]
        lines += [f"## Encodes the action: {'shown for ' + ', '.join(shown) if shown else 'not shown'}", "", render_probes(r["probes"]), ""]
    else:
        lines += ["## Encodes the action: not measured", "", "The probes need at least 2 test episodes (cross-validation by episode).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    from training.common import cli

    cli(main)
