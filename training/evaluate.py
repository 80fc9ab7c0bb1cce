"""Evaluate model packs on the recorded test split with the paper's protocol, with 95 % CIs.

    python -m training.evaluate --pack assets/pack runs/pipeline/packs/seed1 runs/pipeline/packs/seed2 \\
        --data data/pipeline --out runs/results.json --markdown docs/results.md

One pack per training seed (the first is the one shipped). Every window at ``--stride`` frames in
every test episode; 3 autoregressive chunks of 10 recorded actions from the real start frame; the
final frame scored. Stochastic methods: one sample, zero noise and the mean of 8 samples, for
every noise seed; RLA-WM at 1, 3, 10 and 30 Euler steps. CIs resample training seeds and episodes
(:mod:`rla.stats`); ``--reported`` names the RLA-WM row that is *the* method, fixed before the
run, and it is compared (paired, per window) with regression, token flow and its 30-step self.
Costs: GFLOPs and ms per chunk, and the training budget of each method from the pack manifest.
``--split val`` scores the validation split instead (for choices; the test split is for the report).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from rla.evaluation import EvalConfig, evaluate_packs
from rla.metrics import load_lpips
from rla.pack import ModelPack
from rla.report import comparison_table, markdown_table, per_chunk_table
from training.common import write_json


def eval_items(packs: list, episodes: list, split: str, num_chunks: int, chunk: int, stride: int) -> list[dict]:
    """Every window of the packs' recorded ``split`` among ``episodes`` (all task episodes with ``split='all'``)."""
    from rla.data import ChunkEvalSet

    episodes = [ep for ep in episodes if ep.task != "play"]  # Table 1 scores task episodes
    if split != "all":
        splits = packs[0].splits
        if splits is None:
            raise SystemExit(f"{packs[0].info.description!r} records no splits (built before they existed): pass --split all "
                             "and data the pack never saw, or rebuild the pack with training.pipeline")
        for other in packs[1:]:
            if other.splits is None or getattr(other.splits, split) != getattr(splits, split):
                raise SystemExit(f"the packs disagree on the {split} split: every seed must be scored on the same episodes")
        train_ids = set(splits.train)
        episodes = splits.select(episodes, split)
        leaked = [e.episode_id for e in episodes if e.episode_id in train_ids]
        assert not leaked, f"{split} episodes were trained on: {leaked[:3]}"
    dataset = ChunkEvalSet(episodes, num_chunks=num_chunks, chunk=chunk, start="all", stride=stride)
    return [dataset[i] for i in range(len(dataset))]


def reported_comparisons(reported: str, steps) -> list[tuple[str, str]]:
    """The reported row against the baselines, and every RLA-WM step count against 30 steps (same mode)."""
    base, _, mode = reported.partition(" ")
    suffix = f" {mode}" if mode else ""
    pairs = [(reported, "regression"), (reported, "token_flow"), (reported, f"token_flow{suffix}"), (reported, "regression_matched")]
    pairs += [(f"rla@{s}{suffix}", f"rla@30{suffix}") for s in steps if s != 30]
    return list(dict.fromkeys(pairs))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", nargs="+", required=True, help="pack folders or Hub ids, one per training seed (the first is reported)")
    parser.add_argument("--data", nargs="+", required=True, help="recorded .h5 files or folders")
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    parser.add_argument("--markdown", type=Path, default=None, help="also write a markdown report here")
    parser.add_argument("--split", choices=("test", "val", "all"), default="test")
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=10)
    parser.add_argument("--stride", type=int, default=10, help="a window starts every this many frames")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 3, 10, 30], help="Euler steps for RLA-WM")
    parser.add_argument("--later-seed-steps", type=int, nargs="*", default=None,
                        help="Euler steps for the packs after the first (default: all of --steps); the step sweep then has one seed")
    parser.add_argument("--noise-seeds", type=int, nargs="+", default=[100, 101, 102])
    parser.add_argument("--samples", type=int, default=8, help="samples per noise seed (mean-of-N rows, energy score)")
    parser.add_argument("--reported", default="rla@10", help="the RLA-WM row named as the method before the run")
    parser.add_argument("--extra", nargs="*", default=[], help="NAME=FOLDER: more deterministic baselines (first seed only)")
    parser.add_argument("--lpips-weights", default=None, help="AlexNet weights file (alexnet-owt-7be5be79.pth) for LPIPS")
    parser.add_argument("--encoder-weights", default=None,
                        help="a local weight file or folder for the packs' timm encoder (default: HF cache, then Hub)")
    parser.add_argument("--cache", type=Path, default=None, help="keep each pack's per-window scores here; a rerun reuses them")
    parser.add_argument("--no-cost", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    packs = [ModelPack.load(p, encoder_weights=args.encoder_weights) for p in args.pack]
    for item in args.extra:
        name, _, folder = item.partition("=")
        from rla.baselines import RegressionWorldModel

        if Path(folder).exists():
            packs[0].baselines[name] = RegressionWorldModel.load(folder)
    from rla.data import load_episodes

    items = eval_items(packs, load_episodes(args.data), args.split, args.chunks, args.chunk, args.stride)
    cfg = EvalConfig(rla_steps=tuple(args.steps), noise_seeds=tuple(args.noise_seeds), num_samples=args.samples, cost=not args.no_cost,
                     later_seed_steps=tuple(args.later_seed_steps) if args.later_seed_steps else None)
    rep = args.reported
    comparisons = reported_comparisons(rep, args.steps)
    lpips_model = load_lpips(args.lpips_weights) if args.lpips_weights else load_lpips()
    results = evaluate_packs(packs, items, cfg, comparisons=comparisons, lpips_model=lpips_model, cache_dir=args.cache,
                             progress=lambda f, m: print(f"[{f:4.0%}] {m}", file=sys.stderr, flush=True))
    results["protocol"].update(command="python -m training.evaluate " + " ".join(argv if argv is not None else sys.argv[1:]),
                               split=args.split, reported=rep, stride=args.stride,
                               episode_ids=sorted({it["episode_id"] for it in items}))
    write_json(args.out, results)
    table = markdown_table(results, [p.info.manifest for p in packs], rep)
    print(table)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        p = results["protocol"]
        args.markdown.write_text(
            f"Command: `{p['command']}`\n\n"
            f"Split: **{p['split']}** · {p['episodes']} episodes · {p['windows']} windows (stride {p['stride']}) · "
            f"{p['num_chunks']} chunks of {p['chunk']} actions, final frame · {p['training_seeds']} training seeds · "
            f"noise seeds {p['noise_seeds']} × {p['num_samples']} samples · foreground from {p['foreground']} · "
            f"LPIPS {'on' if p['lpips'] else 'unavailable (no AlexNet weights): GMSD on the foreground stands in'}. "
            f"Means with 95 % CIs (bootstrap over training seeds and episodes). The reported RLA-WM row, named before "
            f"the run: **{rep}**.\n\n{table}\n\nPaired differences (per window, same test items):\n\n{comparison_table(results)}\n\n"
            f"Token L1 on moving tokens at each chunk end:\n\n{per_chunk_table(results)}\n")
    return results


if __name__ == "__main__":
    from training.common import cli

    cli(main)
