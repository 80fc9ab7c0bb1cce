"""Choose the RLA dynamics recipe on the validation split: one change at a time, two training seeds each.

    python -m training.ablate --data data/pipeline --work runs/pipeline --out docs/ablations.md

Every variant retrains only the flow dynamics, on the pipeline's first-seed autoencoder, with
training seeds 0 and 1, and is scored on the **validation** episodes (never the test split) with
the evaluation protocol: every window, 3 × 10 recorded actions, final frame, RLA-WM at 10 Euler
steps as one sample, zero noise and the mean of 8 samples, 3 noise seeds. Each variant is
compared with the base recipe per window (paired; seeds resampled per variant). The rule, fixed
before the runs: a change is adopted when the 95 % CI of its difference to the base on
moving-token L1 of ``rla@10 mean8`` lies below zero. The first-seed regression baseline is scored
beside them as a reference. Resumable: finished runs and scores are skipped.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from training.pipeline import PRESETS, jobs_for, run, seed_dir, train_all, wait

VARIANTS = {  # name → (extra train_world_model flags, steps multiplier)
    "base": ([], 1),
    "whitened latents": (["--whiten"], 1),
    "time toward noise (logit-normal mean 0.5)": (["--time-mean", "0.5"], 1),
    "EMA 0.995": (["--ema", "0.995"], 1),
    "2x dynamics steps": ([], 2),
    "interaction-focused pairs (90 %)": (["--interaction", "0.9"], 1),
}
SEEDS = (0, 1)
KEY = "rla@10 mean8"  # the row the adoption rule reads
ROWS = ("rla@10", "rla@10 zero", "rla@10 mean8")


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.split(" (")[0]).strip("_").lower()


def train_variants(preset, data: Path, work: Path, variants: dict, first: list | None = None) -> dict:
    """Train every (variant, seed) dynamics, two processes at a time (after the commands ``first``);
    returns their run folders."""
    ae = seed_dir(work, preset.seeds[0]) / "autoencoder" / "autoencoder"
    todo, folders = list(first or []), {}
    for name, (flags, mult) in variants.items():
        for seed in SEEDS:
            out = work / "ablate" / slug(name) / f"seed{seed}"
            folders[(name, seed)] = out
            if (out / "rla" / "model.safetensors").exists():
                continue
            todo.append([sys.executable, "-m", "training.train_world_model", "--method", "rla", "--autoencoder", str(ae), "--data", str(data),
                         "--out", str(out), "--preset", preset.model, "--splits", str(work / "splits.json"), "--image-size", str(preset.image_size),
                         "--steps", str(preset.dynamics_steps * mult), "--minutes", str(preset.minutes_cap), "--batch-size", str(preset.batch_size),
                         "--threads", "1", "--seed", str(seed), *flags])
    running: list[subprocess.Popen] = []
    while todo or running:
        while todo and len(running) < 2:
            cmd = todo.pop(0)
            running.append(run(cmd, Path(cmd[cmd.index("--out") + 1]) / "train.log"))
        time.sleep(2)
        for p in [p for p in running if p.poll() is not None]:
            wait(p)
            running.remove(p)
    return folders


def score(preset, data: Path, work: Path, folders: dict, variants: dict, out_json: Path) -> dict:
    from rla import LatentFlow, ModelPack, PackInfo, RegressionWorldModel, RLAAutoencoder
    from rla.data import ChunkEvalSet, Splits, load_episodes
    from rla.encoders import EncoderSpec, build_encoder
    from rla.evaluation import EvalConfig, score_pack, summarize

    results = json.loads(out_json.read_text()) if out_json.exists() else {}
    d = seed_dir(work, preset.seeds[0])
    spec = EncoderSpec(kind="pixel_patch", image_size=preset.image_size, patch_size=preset.patch_size)
    encoder = build_encoder(spec)
    ae = RLAAutoencoder.load(d / "autoencoder" / "autoencoder")
    regression = RegressionWorldModel.load(d / "regression" / "regression")
    splits = Splits.load(work / "splits.json")
    val = splits.select([e for e in load_episodes(data) if e.task != "play"], "val")
    evalset = ChunkEvalSet(val, num_chunks=3, chunk=10, start="all", stride=preset.eval_stride)
    items = [evalset[i] for i in range(len(evalset))]
    groups = [it["episode_id"] for it in items]
    cfg = EvalConfig(rla_steps=(10,), cost=False)
    info = PackInfo(encoder=spec, action_dim=int(val[0].actions.shape[1]), action_names=["dx", "dy", "dz", "gripper"][: val[0].actions.shape[1]])
    for name in variants:
        if name in results:
            continue
        per_seed = []
        for seed in SEEDS:
            dyn = LatentFlow.load(folders[(name, seed)] / "rla")
            baselines = {"regression": regression} if name == "base" else {}
            pack = ModelPack(info, encoder, ae, dyn, baselines)
            print(f"[ablate] scoring {name}, seed {seed} on {len(items)} validation windows", flush=True)
            per_seed.append(score_pack(pack, items, cfg))
        methods = summarize(per_seed, groups, cfg)
        train = [json.loads((folders[(name, s)] / "rla_train.json").read_text())["train"] for s in SEEDS]
        results[name] = {"methods": {k: v for k, v in methods.items() if k in ROWS or k == "regression"},
                         "steps": train[0]["steps"], "cpu_seconds": [t["cpu_seconds"] for t in train]}
        out_json.write_text(json.dumps(results))
    results["_protocol"] = {"windows": len(items), "episodes": len(set(groups)), "split": "val", "seeds": list(SEEDS), "groups": groups}
    out_json.write_text(json.dumps(results))
    return results


def report(results: dict) -> str:
    from rla.stats import paired_difference

    base = results["base"]["methods"]
    p = results["_protocol"]
    metric = "token_l1_moving"
    lines = [f"Validation split: {p['episodes']} episodes, {p['windows']} windows; training seeds {p['seeds']}; "
             "moving-token L1 of the final frame (lower is better), mean [95 % CI]; Δ = variant − base on the same windows.", "",
             "| variant | dynamics steps | CPU-min per seed | " + " | ".join(ROWS) + f" | Δ {KEY} vs base | adopted |",
             "|" + "---|" * (len(ROWS) + 5)]
    for name, entry in results.items():
        if name.startswith("_"):
            continue
        m = entry["methods"]
        cells = []
        for row in ROWS:
            ci = m[row]["ci"][metric]
            cells.append(f"{ci['mean']:.4f} [{ci['low']:.4f}, {ci['high']:.4f}]")
        if name == "base":
            delta, adopted = "—", "—"
        else:
            d = paired_difference(np.asarray(m[KEY]["per_window"][metric]), np.asarray(base[KEY]["per_window"][metric]),
                                  groups=p["groups"])
            delta = f"{d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"
            adopted = "yes" if d["high"] < 0 else "no"
        cpu = ", ".join(f"{c / 60:.1f}" for c in entry["cpu_seconds"])
        lines.append(f"| {name} | {entry['steps']:,} | {cpu} | " + " | ".join(cells) + f" | {delta} | {adopted} |")
    reg = base.get("regression")
    if reg:
        ci = reg["ci"][metric]
        lines += ["", f"Reference: direct regression (first seed) {ci['mean']:.4f} [{ci['low']:.4f}, {ci['high']:.4f}] on the same windows."]
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--data", type=Path, default=Path("data/pipeline"))
    parser.add_argument("--work", type=Path, default=Path("runs/pipeline"))
    parser.add_argument("--out", type=Path, default=Path("docs/ablations.md"))
    parser.add_argument("--variants", nargs="*", default=None, help="subset of variant names (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    preset = PRESETS[args.preset]
    variants = {k: v for k, v in VARIANTS.items() if args.variants is None or k in args.variants or k == "base"}
    # the pipeline's first-seed autoencoder (trained first if missing) and regression (a reference, beside the variants)
    seed = preset.seeds[0]
    one = replace(preset, seeds=[seed], holdout_task=None)
    train_all(one, args.data, args.work, {}, only={f"autoencoder{seed}"})
    reg = next(j for j in jobs_for(one, args.work) if j.name == f"regression{seed}")
    first = [] if reg.done.exists() else [reg.command(one, args.data, args.work, seed)]
    folders = train_variants(preset, args.data, args.work, variants, first)
    results = score(preset, args.data, args.work, folders, variants, args.work / "ablate" / "scores.json")
    text = report(results)
    print(text)
    command = "python -m training.ablate " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"# Dynamics ablations on the validation split\n\nCommand: `{command}`\n\n{__doc__.split(chr(10) + chr(10), 1)[1]}\n{text}\n")
    return results


if __name__ == "__main__":
    from training.common import cli

    cli(main)
