"""Choose the RLA dynamics recipe on the validation split: one change at a time, two training seeds each.

    python -m training.ablate --data data/pipeline --work runs/pipeline --out docs/ablations.md

Every variant retrains only the flow dynamics, on the pipeline's first-seed autoencoder, with
training seeds 0 and 1, and is scored on the **validation** episodes (never the test split) with
the evaluation protocol: every window, 3 × 10 recorded actions, final frame, RLA-WM at 10 Euler
steps as one sample, zero noise and the mean of 8 samples, 3 noise seeds. Each variant is
compared with the base recipe per window (paired; seeds resampled per variant). The rule, fixed
before the runs: a change is adopted when the 95 % CI of its difference to the base on
moving-token L1 of ``rla@10 mean8`` lies below zero. The first-seed regression baseline is scored
beside them as a reference.

Inputs come from the pipeline's manifest (``WORK/manifest.json``, :class:`training.pipeline.Manifest`):
the first seed's autoencoder and regression (and, for an encoder that is not invertible, the RGB
decoder; each trained and recorded first when it is not current) and the split. A pipeline run with
``--encoder/--encoder-weights/--image-size`` is ablated with the same flags. Every variant run is
recorded there as ``ablate/<variant>/seed<k>``, made from that autoencoder and split: resumable, a
current run is not trained again, and a run whose autoencoder or split changed is. Scores are kept
in ``WORK/ablate/scores.json`` with the sha256 of the models they scored, and a variant is scored
again when one of them changed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from training.common import encoder_spec
from training.pipeline import (
    PRESETS,
    Job,
    Manifest,
    configured_preset,
    encoder_is_invertible,
    job_inputs,
    record_job,
    recordings,
    run,
    train_all,
    wait,
)

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


def artefact(name: str, seed: int) -> str:
    """The manifest name of a variant run."""
    return f"ablate/{slug(name)}/seed{seed}"


def variant_jobs(preset, work: Path, variants: dict) -> list[Job]:
    """One RLA dynamics job per (variant, seed), on the first seed's autoencoder (artefact ``autoencoder<first>``)."""
    ae = f"autoencoder{preset.seeds[0]}"
    jobs = []
    for name, (flags, mult) in variants.items():
        for seed in SEEDS:
            out = work / "ablate" / slug(name) / f"seed{seed}"
            jobs.append(Job(artefact(name, seed), "training.train_world_model", out, out / "rla" / "model.safetensors", preset.dynamics_steps * mult,
                            deps=[ae], extra=["--method", "rla", *flags], report="rla_train.json", seed=seed, flags={"--autoencoder": ae}))
    return jobs


def train_variants(preset, data: Path, work: Path, variants: dict, manifest: Manifest, encoder_weights: str | None = None) -> list[str]:
    """Train every (variant, seed) dynamics that is not current in ``manifest``, two processes at a
    time, and record each; the autoencoder and the split come from the manifest. Returns the
    artefacts it trained."""
    todo: list[tuple] = []
    for job in variant_jobs(preset, work, variants):
        config, inputs = job.config(preset, encoder_weights), job_inputs(preset, manifest, job)
        if not manifest.current(job.name, config, inputs, path=job.model):
            todo.append((job, config, inputs))
    trained = list(todo)
    running: dict[str, tuple] = {}
    while todo or running:
        while todo and len(running) < 2:
            job, config, inputs = todo.pop(0)
            cmd = job.command(preset, data, work, manifest=manifest, encoder_weights=encoder_weights)
            running[job.name] = (run(cmd, job.out / "train.log"), time.time(), job, config, inputs)
        time.sleep(2)
        for name, (proc, started, job, config, inputs) in list(running.items()):
            if proc.poll() is None:
                continue
            wait(proc)
            del running[name]
            record_job(manifest, job, preset, config, inputs, round((time.time() - started) / 60, 2))
    return [job.name for job, _, _ in trained]


def score(preset, manifest: Manifest, variants: dict, out_json: Path, encoder_weights: str | None = None) -> dict:
    from rla import LatentFlow, ModelPack, PackInfo, RegressionWorldModel, RLAAutoencoder
    from rla.data import ChunkEvalSet, Splits, load_episodes
    from rla.encoders import EncoderSpec, build_encoder
    from rla.evaluation import EvalConfig, score_pack, summarize
    from rla.rgb_decoder import RGBDecoder

    results = json.loads(out_json.read_text()) if out_json.exists() else {}
    first = preset.seeds[0]
    encoder = build_encoder(encoder_spec(preset), weights=encoder_weights)
    spec = EncoderSpec.of(encoder)
    rgb_decoder = None if encoder.invertible else RGBDecoder.load(manifest.require("rgb_decoder").parent)
    ae = RLAAutoencoder.load(manifest.require(f"autoencoder{first}").parent)
    regression = RegressionWorldModel.load(manifest.require(f"regression{first}").parent)
    splits = Splits.load(manifest.require("splits"))
    val = splits.select(load_episodes([manifest.require(r.artefact) for r in recordings(preset) if r.split == "val"]), "val")
    evalset = ChunkEvalSet(val, num_chunks=3, chunk=10, start="all", stride=preset.eval_stride)
    items = [evalset[i] for i in range(len(evalset))]
    groups = [it["episode_id"] for it in items]
    cfg = EvalConfig(rla_steps=(10,), cost=False)
    info = PackInfo(encoder=spec, action_dim=int(val[0].actions.shape[1]), action_names=["dx", "dy", "dz", "gripper"][: val[0].actions.shape[1]])
    for name in variants:
        scored = manifest.sha(f"autoencoder{first}", *(artefact(name, s) for s in SEEDS), *([f"regression{first}"] if name == "base" else []))
        if results.get(name, {}).get("models") == scored:
            continue
        per_seed = []
        for seed in SEEDS:
            dyn = LatentFlow.load(manifest.require(artefact(name, seed)).parent)
            baselines = {"regression": regression} if name == "base" else {}
            pack = ModelPack(info, encoder, ae, dyn, baselines, rgb_decoder=rgb_decoder)
            print(f"[ablate] scoring {name}, seed {seed} on {len(items)} validation windows", flush=True)
            per_seed.append(score_pack(pack, items, cfg))
        methods = summarize(per_seed, groups, cfg)
        budgets = [manifest.entries[artefact(name, s)]["budget"] for s in SEEDS]
        results[name] = {"methods": {k: v for k, v in methods.items() if k in ROWS or k == "regression"},
                         "steps": budgets[0]["steps"], "cpu_seconds": [b["cpu_seconds"] for b in budgets], "models": scored}
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
    parser.add_argument("--encoder", default=None, help="the pipeline's --encoder, when it was not the preset's")
    parser.add_argument("--encoder-weights", default=None, help="the pipeline's --encoder-weights (a timm encoder's local weights)")
    parser.add_argument("--image-size", type=int, default=None, help="the pipeline's --image-size, when it was not the preset's")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of scoring (training jobs: one each)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    preset = configured_preset(args)
    variants = {k: v for k, v in VARIANTS.items() if args.variants is None or k in args.variants or k == "base"}
    # the pipeline's first-seed autoencoder and regression (a reference, beside the variants): trained and recorded when not current
    manifest = Manifest.of(args.work)
    seed = preset.seeds[0]
    one = replace(preset, seeds=[seed], holdout_task=None)
    only = {f"autoencoder{seed}", f"regression{seed}"} | (set() if encoder_is_invertible(preset) else {"rgb_decoder"})
    train_all(one, args.data, args.work, {}, only=only, manifest=manifest, encoder_weights=args.encoder_weights)
    train_variants(preset, args.data, args.work, variants, manifest, args.encoder_weights)
    results = score(preset, manifest, variants, args.work / "ablate" / "scores.json", args.encoder_weights)
    text = report(results)
    print(text)
    command = "python -m training.ablate " + " ".join(argv if argv is not None else sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"# Dynamics ablations on the validation split\n\nCommand: `{command}`\n\n{__doc__.split(chr(10) + chr(10), 1)[1]}\n{text}\n")
    return results


if __name__ == "__main__":
    from training.common import cli

    cli(main)
