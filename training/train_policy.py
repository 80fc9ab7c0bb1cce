"""Train a World Action Model policy, or its behaviour-cloning baseline, on the recordings of one task.

    python -m training.train_policy --pack assets/pack --data data/wam/PullCube --task PullCube \\
        --labelled-fraction 0.05 --rla-weight 0.05 --seed 0 --out assets/policies/PullCube/wam/seed0
    python -m training.train_policy --pack assets/pack --data data/wam/PullCube --task PullCube \\
        --labelled-fraction 0.05 --rla-weight 0 --seed 0 --out assets/policies/PullCube/bc/seed0

The first run is the WAM arm (action MSE on the labelled episodes + 0.05·(L1 + MSE) on the RLA
head for every sample, batches half labelled, half action-less); ``--rla-weight 0`` is the BC
baseline: the same network without the RLA head, trained on the labelled rows of the very same
batches (same initialisation, labelled set and batch order for the same ``--seed``). Both run
``--steps`` optimiser steps (``--minutes`` is only a guard; a run it cuts short says so).

Writes into ``--out``: ``config.json`` + ``model.safetensors`` (the EMA weights, which are what is
evaluated), ``train.json`` (arm, data split, sha256 of the autoencoder that made the RLA targets,
held-out scores, timings, the command), ``loss.csv`` and ``checkpoint/`` (resumable: rerun the
same command to continue; ``--steps`` larger than a finished run extends it).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from training.common import DEFAULT_CACHE, write_json
from training.loop import TrainConfig, fit

IMAGE_SIZE = 128  # input of the resnet18 trunk (the authors' 128 px)
# what must match to resume a run in the same folder
RESUME_KEYS = ("pack_autoencoder_sha256", "task", "labelled_fraction", "rla_weight", "seed", "preset", "trunk", "state",
               "batch_size", "heldout", "policy_config")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.train_policy", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--pack", required=True, help="model pack folder or Hub repo id (its encoder, autoencoder and latent statistics)")
    p.add_argument("--data", nargs="+", required=True, help="recorded .h5 files or folders (training.collect, policy_data seeds)")
    p.add_argument("--task", required=True, help="the task to learn, e.g. PullCube")
    p.add_argument("--out", type=Path, required=True, help="run folder, e.g. assets/policies/PullCube/wam/seed0")
    p.add_argument("--labelled-fraction", type=float, default=0.05, help="share of the successful episodes that keep their actions")
    p.add_argument("--rla-weight", type=float, default=0.05, help="weight of the RLA head's L1 + MSE; 0 = the BC baseline")
    p.add_argument("--seed", type=int, default=0, help="initialisation and batch order (shared by the BC and WAM arms)")
    p.add_argument("--arm", default=None, help="name of the arm in results (default: wam or bc, + _resnet18 for that trunk)")
    p.add_argument("--preset", default="cpu", help="policy size: tiny, cpu or paper")
    p.add_argument("--trunk", default=None, choices=("tokens", "resnet18"), help="image trunk (default: the preset's)")
    p.add_argument("--chunk", type=int, default=None, help="actions predicted per call (default: the pack's chunk)")
    p.add_argument("--execute", type=int, default=None, help="actions executed per chunk (default: 0.8 x chunk, as 8 of 10)")
    p.add_argument("--no-state", dest="state", action="store_false", help="no qpos input (the learned state token only)")
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps (the same for both arms)")
    p.add_argument("--minutes", type=float, default=60.0, help="wall-clock guard; a run it cuts short is flagged")
    p.add_argument("--batch-size", type=int, default=64, help="WAM batch (half labelled); BC trains on its labelled half")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=200, help="warm-up steps before the cosine decay")
    p.add_argument("--ema", type=float, default=0.999, help="maximum EMA decay of the evaluated weights")
    p.add_argument("--heldout", type=int, default=10, help="last episodes held out of training (score the heads)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="feature cache folder")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--any-seeds", action="store_true", help="accept recordings outside the policy_data seed range")
    args = p.parse_args(argv)
    if args.rla_weight < 0 or args.steps < 1 or args.batch_size < 2:
        p.error("--rla-weight must be >= 0, --steps >= 1 and --batch-size >= 2")
    if (args.chunk is not None and args.chunk < 1) or (args.execute is not None and args.execute < 1):
        p.error("--chunk and --execute must be >= 1")
    if not 0 < args.labelled_fraction <= 1:
        p.error("--labelled-fraction must be in (0, 1]")
    return args


def arm_name(args, trunk: str) -> str:
    if args.arm:
        return args.arm
    return ("wam" if args.rla_weight > 0 else "bc") + ("_resnet18" if trunk == "resnet18" else "") + ("" if args.state else "_nostate")


def load_task_episodes(paths, task: str, any_seeds: bool = False) -> list:
    """The task's episodes ordered by reset seed (so "the first n successful" is well defined)."""
    from rla.data import SEED_RANGES, load_episodes

    episodes = [e for e in load_episodes(paths) if e.task == task]
    if not episodes:
        raise SystemExit(f"no {task} episodes in {' '.join(map(str, paths))}")
    lo, hi = SEED_RANGES["policy_data"]
    outside = [e.episode_id for e in episodes if e.seed is None or not lo <= e.seed < hi]
    if outside and not any_seeds:
        raise SystemExit(f"{len(outside)} episodes (e.g. {outside[0]}) were not recorded from the policy_data seeds {lo}…{hi - 1}; "
                         "record them with training.collect --seed in that range (docs/wam.md) or pass --any-seeds")
    return sorted(episodes, key=lambda e: (e.seed if e.seed is not None else -1, e.episode_id))


def main(argv=None) -> dict:
    args = parse_args(argv)
    from rla.data import FeatureCache
    from rla.pack import ModelPack, resolve_pack
    from rla.policy import EMATrainer, Policy, PolicyData, file_sha256, heldout_report, policy_config

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    root = resolve_pack(args.pack)
    pack = ModelPack.load(args.pack)
    ae_sha = file_sha256(root / "autoencoder" / "model.safetensors")
    ae = pack.autoencoder.config
    trunk = args.trunk or policy_config(args.preset).trunk
    episodes = load_task_episodes(args.data, args.task, args.any_seeds)
    chunk = args.chunk or pack.info.chunk
    execute = args.execute or max(1, round(0.8 * chunk))
    try:
        cfg = policy_config(
            args.preset, trunk=trunk, num_tokens=pack.encoder.num_tokens, token_dim=pack.encoder.dim, image_size=IMAGE_SIZE,
            encoder=pack.info.encoder.to_dict(), state_dim=int(episodes[0].qpos.shape[1]) if args.state else 0,
            action_dim=pack.info.action_dim, action_low=pack.info.action_low, action_high=pack.info.action_high,
            chunk=chunk, execute=execute, rla_queries=ae.num_queries, rla_dim=ae.latent_dim, rla_weight=args.rla_weight)
    except ValueError as err:  # e.g. --execute larger than --chunk
        raise SystemExit(f"invalid policy settings: {err}") from err
    run = {"arm": arm_name(args, trunk), "task": args.task, "seed": args.seed, "labelled_fraction": args.labelled_fraction,
           "rla_weight": args.rla_weight, "preset": args.preset, "trunk": trunk, "state": args.state, "batch_size": args.batch_size,
           "heldout": args.heldout, "pack": str(args.pack), "pack_autoencoder_sha256": ae_sha, "encoder": pack.encoder.fingerprint,
           "policy_config": asdict(cfg), "data": [str(d) for d in args.data],
           "command": "python -m training.train_policy " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))}
    check_resume(args.out, run)

    print(f"[policy] {len(episodes)} {args.task} episodes; encoding and computing RLA targets (k = {pack.info.chunk})", flush=True)
    data = PolicyData.build(episodes, pack, labelled_fraction=args.labelled_fraction, heldout=args.heldout, chunk=cfg.chunk, rla_k=pack.info.chunk,
                            obs="tokens" if trunk == "tokens" else "image", cache=FeatureCache(args.cache),
                            action_less_rows=args.rla_weight > 0)
    del episodes
    prep_minutes = (time.perf_counter() - t0) / 60
    summary = data.summary()
    print(f"[policy] {len(summary['labelled_episodes'])} labelled, {summary['action_less_episodes']} action-less, "
          f"{len(summary['heldout_episodes'])} held-out episodes ({prep_minutes:.1f} min to prepare)", flush=True)

    torch.manual_seed(args.seed)  # the same initial weights for both arms (the RLA head is built last)
    policy = Policy(cfg)
    policy.set_normalizer(*data.normalizer_data())
    trainer = EMATrainer(policy, max_decay=args.ema)
    tc = TrainConfig(max_steps=args.steps, max_minutes=args.minutes, batch_size=args.batch_size, lr=args.lr,
                     weight_decay=args.weight_decay, warmup_steps=args.warmup, seed=args.seed)
    write_json(args.out / "run.json", run)
    progress = args.out / "checkpoint" / "progress.json"
    first_step = json.loads(progress.read_text())["step"] if progress.is_file() else 0
    wall, cpu = time.perf_counter(), time.process_time()
    result = fit(trainer, lambda g: data.sample_batch(tc.batch_size, g), tc, args.out, name=f"{run['arm']} seed {args.seed}")
    steps_now = max(1, result["steps"] - first_step)
    wall, cpu = (time.perf_counter() - wall) / steps_now, (time.process_time() - cpu) / steps_now
    trainer = getattr(trainer, "module", trainer)
    trainer.update()  # fold in the final weights
    ema = trainer.ema.eval()
    ema.save_pretrained(args.out)
    report = {**run, "data_split": summary, "train": result, "prepare_minutes": round(prep_minutes, 2),
              "seconds_per_step": round(wall, 4), "cpu_seconds_per_step": round(cpu, 4), "threads": torch.get_num_threads(),
              "stopped_by_time": result["steps"] < args.steps, "heldout_scores": heldout_report(ema, data),
              "heldout_scores_last_weights": heldout_report(trainer.policy.eval(), data)}
    write_json(args.out / "train.json", report)
    h = report["heldout_scores"]
    r2 = f", RLA R² {h['heldout_rla_r2']:.3f}" if "heldout_rla_r2" in h else ""
    print(f"[policy] {result['steps']} steps in {result['minutes']:.1f} min ({report['seconds_per_step']:.2f} s and "
          f"{report['cpu_seconds_per_step']:.2f} CPU-s per step); "
          f"held-out action MSE {h.get('heldout_action_mse', float('nan')):.4f}{r2} -> {args.out}")
    if report["stopped_by_time"]:
        print(f"[policy] WARNING: --minutes ended the run at step {result['steps']} of {args.steps}: arms are no longer matched")
    return report


def check_resume(out: Path, run: dict) -> None:
    """Refuse to continue a checkpoint made with other settings (it would silently mix two runs)."""
    previous = out / "run.json"
    if not (out / "checkpoint").exists() or not previous.is_file():
        return
    old = json.loads(previous.read_text())
    changed = [k for k in RESUME_KEYS if old.get(k) != json.loads(json.dumps(run[k]))]
    if changed:
        raise SystemExit(f"{out} holds a run with other settings ({', '.join(changed)}): pick another --out or delete {out / 'checkpoint'}")


if __name__ == "__main__":
    from training.common import cli

    cli(main)
