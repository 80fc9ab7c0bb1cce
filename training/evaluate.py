"""Evaluate a model pack on held-out episodes with the paper's protocol and print a table.

    python -m training.evaluate --pack assets/pack --data data --out runs/results.json --markdown docs/results.md

Every method on the same held-out episodes (the split the training scripts never read): RLA-WM
at 1, 3, 10 and 30 Euler steps, direct regression, token-space flow matching and the copy floor;
3 autoregressive chunks of 10 recorded actions from a real start frame; final-frame scores plus
one per chunk end; cost per predicted chunk (FLOPs, milliseconds on this machine).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from rla.evaluation import evaluate_pack
from rla.pack import ModelPack
from training.common import write_json

COLUMNS = [("token_l1", "token L1 ↓", 4), ("token_l1_moving", "token L1 moving ↓", 4), ("ssim", "SSIM ↑", 3),
           ("ssim_fg", "SSIM fg ↑", 3), ("psnr", "PSNR ↑", 2), ("psnr_fg", "PSNR fg ↑", 2), ("lpips", "LPIPS ↓", 3)]


def eval_items(data, num_chunks: int, chunk: int, seed: int = 0, split: str = "heldout") -> list[dict]:
    """Fixed-chunk evaluation items from the held-out split (or all episodes with split='all')."""
    from rla.data import ChunkEvalSet, load_episodes, split_episodes

    episodes = [ep for ep in load_episodes(data) if ep.task != "play"]  # Table 1 scores task episodes
    if split == "heldout":
        _, episodes = split_episodes(episodes, val_fraction=0.1, seed=0)
    # a reproducible random start per episode, so chunks cover contact as well as the approach
    dataset = ChunkEvalSet(episodes, num_chunks=num_chunks, chunk=chunk, start="random", seed=seed)
    return [dataset[i] for i in range(len(dataset))]


def markdown_table(results: dict) -> str:
    """The results as a markdown table: one row per method, final frame."""
    header = "| method | Euler steps | " + " | ".join(c[1] for c in COLUMNS) + " | GFLOPs/chunk | ms/chunk (median) |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 4)]
    for name, entry in results["methods"].items():
        final = entry["final"]
        cells = ["n/a" if final.get(m) is None else f"{final[m]:.{d}f}" for m, _, d in COLUMNS]
        cost = entry.get("cost")
        costs = [f"{cost['gflops']:.3f}", f"{cost['ms_median']:.1f}"] if cost else ["—", "—"]
        lines.append(f"| {name} | {entry.get('steps') or '—'} | " + " | ".join(cells) + " | " + " | ".join(costs) + " |")
    return "\n".join(lines)


def per_chunk_table(results: dict, metric: str = "token_l1_moving") -> str:
    chunks = results["protocol"]["num_chunks"]
    lines = ["| method | " + " | ".join(f"chunk {i + 1}" for i in range(chunks)) + " |", "|" + "---|" * (chunks + 1)]
    for name, entry in results["methods"].items():
        values = entry["per_chunk"].get(metric)
        if values is not None:
            lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", required=True, help="pack folder or Hub repo id")
    parser.add_argument("--data", nargs="+", required=True, help="recorded .h5 files or folders")
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    parser.add_argument("--markdown", type=Path, default=None, help="also write a markdown table here")
    parser.add_argument("--split", choices=("heldout", "all"), default="heldout")
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=10)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 3, 10, 30], help="Euler steps for RLA-WM")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pack = ModelPack.load(args.pack)
    items = eval_items(args.data, args.chunks, args.chunk, split=args.split)
    results = evaluate_pack(pack, items, rla_steps=args.steps, progress=lambda f, m: print(f"[{f:4.0%}] {m}", file=sys.stderr))
    results["protocol"]["command"] = "python -m training.evaluate " + " ".join(argv if argv is not None else sys.argv[1:])
    results["protocol"]["episode_ids"] = [it["episode_id"] for it in items]
    write_json(args.out, results)
    table = markdown_table(results)
    print(table)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(f"Command: `{results['protocol']['command']}`\n\n{table}\n\nToken L1 on moving tokens at each chunk end:\n\n{per_chunk_table(results)}\n")
    return results


if __name__ == "__main__":
    main()
