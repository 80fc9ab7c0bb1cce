"""Report WMRL runs: learning curves, imagined vs real effect of the fine-tuning, per RL seed.

    python -m training.wmrl_report --pack assets/pack --runs assets/policies/PullCube/wmrl/seed* \\
        --plot docs/wmrl_curves.png --out docs/wmrl_runs.md

For every run folder (``training.train_wmrl``): the imagined return over the first and the last
10 % of iterations (from ``log.csv``; it must rise), the final mean |residual| in normalised action
units (below 0.02 the run "did not move"), and the **imagined effect**: the WMRL policy and its
frozen initial policy driven through the same imagined episodes (same recordings, start frames and
world-model noise; ``rla.wmrl.imagined_comparison``) on ``--episodes`` starts drawn with
``--seed``, the paired return difference with a bootstrap CI over episodes. Beside it the **real
effect**: success of the WMRL policy minus its initial policy in ManiSkill on the same reset seeds
(``eval_test.json`` of both, paired by reset seed). Imagined up and real down means the policy
exploits the model. ``--reward corresponding`` scores every run's imagined effect with that reward
(default: each run's own), so a control trained on ``--reward shuffled`` is measured against the
reward it did not see. The plot shows the imagined return per iteration (10-iteration running mean),
the mean |residual| and the approximate KL, one line per seed.
"""
from __future__ import annotations

import argparse
import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from rla.imagined_env import REWARDS
from training.common import DEFAULT_CACHE, cli

MOVE_THRESHOLD = 0.02  # mean |residual| below this (normalised action units): the run "did not move"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pack", default="assets/pack")
    p.add_argument("--runs", type=Path, nargs="+", required=True, help="WMRL run folders (one per RL seed)")
    p.add_argument("--episodes", type=int, default=64, help="imagined episodes per run for the imagined effect")
    p.add_argument("--seed", type=int, default=1000, help="seed of the imagined starts and noise (not a training seed)")
    p.add_argument("--data", nargs="+", help="recordings of the imagined env (default: the --data of each run's initial policy)")
    p.add_argument("--any-seeds", action="store_true", help="accept recordings outside the reserved policy_data seeds")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--plot", type=Path, help="PNG of the learning curves")
    p.add_argument("--out", type=Path, help="markdown table")
    p.add_argument("--reward", choices=REWARDS, default=None,
                   help="the reward the imagined effect is scored with (default: each run's own training reward)")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def read_log(folder: Path) -> dict[str, np.ndarray]:
    with open(folder / "log.csv") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{folder}/log.csv has no iterations")
    return {k: np.array([float(r[k]) if r[k] not in ("", "None") else np.nan for r in rows]) for k in rows[0]}


def running_mean(x: np.ndarray, window: int = 10) -> np.ndarray:
    out = np.full_like(x, np.nan)
    for i in range(len(x)):
        part = x[max(0, i - window + 1): i + 1]
        out[i] = np.nanmean(part) if np.isfinite(part).any() else np.nan
    return out


def real_effect(folder: Path) -> dict | None:
    """WMRL − initial success (points) on the reset seeds both were scored on, or None without both files."""
    from rla.policy.results import load_result
    from rla.stats import paired_difference

    mine = folder / "eval_test.json"
    if not mine.is_file():
        return None
    r = load_result(mine)
    base = Path(r["base"]["path"]) / "eval_test.json" if r.get("base") else None
    if base is None or not base.is_file():
        return None
    b = load_result(base)
    a_s = {e["reset_seed"]: float(e["success"]) for e in r["episodes"]}
    b_s = {e["reset_seed"]: float(e["success"]) for e in b["episodes"]}
    seeds = sorted(set(a_s) & set(b_s))
    d = paired_difference(np.array([[a_s[s] for s in seeds]]), np.array([[b_s[s] for s in seeds]]))
    return {"wmrl": 100 * np.mean([a_s[s] for s in seeds]), "initial": 100 * np.mean([b_s[s] for s in seeds]),
            "mean": 100 * d["mean"], "low": 100 * d["low"], "high": 100 * d["high"], "episodes": len(seeds)}


def imagined_effect(pack, wmrl, recordings, config, episodes: int, seed: int) -> dict:
    """Paired imagined return (WMRL − initial) over ``episodes`` starts drawn with ``seed``."""
    from rla.imagined_env import shuffled_partner
    from rla.stats import paired_difference
    from rla.wmrl import imagined_comparison

    rng = np.random.default_rng(seed)
    e = config.actions_per_step
    ret = {"initial": [], "wmrl": []}
    for i in range(episodes):
        r = int(rng.integers(len(recordings)))
        last = recordings[r].num_steps - e
        t0 = 0 if rng.random() < config.start_zero_prob else int(rng.integers(last + 1))
        partner = recordings[shuffled_partner(r, len(recordings))] if config.reward == "shuffled" else None
        out = imagined_comparison(pack.world_model, wmrl, recordings[r], t0, config, seed=seed * 100_003 + i,
                                  action_low=pack.info.action_low, action_high=pack.info.action_high, partner=partner)
        for name in ret:
            ret[name].append(sum(out["reward"][name]))
    a, b = np.array([ret["wmrl"]]), np.array([ret["initial"]])
    d = paired_difference(a, b)
    return {"initial": float(b.mean()), "wmrl": float(a.mean()), "mean": d["mean"], "low": d["low"], "high": d["high"],
            "episodes": episodes}


def plot(logs: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = (("imagined_return", "imagined return per episode\n(10-iteration running mean)"),
              ("mean_abs_residual", "mean |residual| (normalised action units)"), ("approx_kl", "approximate KL"))
    for ax, (key, title) in zip(axes, panels):
        for name, log in logs.items():
            y = running_mean(log[key]) if key == "imagined_return" else log[key]
            ax.plot(log["iteration"], y, label=name, lw=1.4)
        if key == "mean_abs_residual":
            ax.axhline(MOVE_THRESHOLD, color="grey", ls="--", lw=1, label='"did not move" below')
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("PPO iteration")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(rows: list[dict], command: str) -> str:
    lines = [f"Made by `{command}`.", "",
             "| RL seed | imagined return, first → last 10 % of iterations | mean \\|residual\\| | moved? "
             "| imagined effect, WMRL − initial [95 % CI] | real success, initial → WMRL (%) | real effect (points) [95 % CI] |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        im, re = r["imagined"], r["real"]
        real_rates = f"{re['initial']:.0f} → {re['wmrl']:.0f}" if re else "not evaluated"
        real_diff = f"{re['mean']:+.1f} [{re['low']:+.1f}, {re['high']:+.1f}]" if re else "—"
        lines.append(f"| {r['name']} | {r['first']:.3f} → {r['last']:.3f} | {r['residual']:.4f} | "
                     f"{'yes' if r['residual'] >= MOVE_THRESHOLD else 'did not move'} | "
                     f"{im['mean']:+.4f} [{im['low']:+.4f}, {im['high']:+.4f}] ({im['episodes']} episodes, {im['reward']} reward) | "
                     f"{real_rates} | {real_diff} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> list[dict]:
    import shlex
    import sys

    args = parse_args(argv)
    from rla.data import FeatureCache
    from rla.imagined_env import ImaginedEnvConfig, recordings_from_episodes
    from rla.pack import ModelPack
    from rla.wmrl import WMRLPolicy
    from training.train_policy import load_task_episodes

    torch.set_num_threads(args.threads)
    pack = ModelPack.load(args.pack)
    rows, logs, recordings = [], {}, {}
    for folder in args.runs:
        run = json.loads((folder / "run.json").read_text())
        summary = json.loads((folder / "wmrl.json").read_text())
        data = args.data or json.loads((Path(run["policy"]) / "train.json").read_text())["data"]
        key = (str(data), run["task"])
        if key not in recordings:
            recordings[key] = recordings_from_episodes(load_task_episodes(data, run["task"], args.any_seeds), pack,
                                                       cache=FeatureCache(args.cache))
        config = ImaginedEnvConfig(**run["env_config"])
        trained_on = config.reward
        if args.reward:
            config = replace(config, reward=args.reward)
        wmrl = WMRLPolicy.load(folder).eval()
        name = f"seed {run['seed']}" + ("" if trained_on == "corresponding" else f" ({trained_on} reward)")
        logs[name] = read_log(folder)
        im = {**imagined_effect(pack, wmrl, recordings[key], config, args.episodes, args.seed), "reward": config.reward}
        rows.append({"name": name, "first": summary["imagined_return_first_10pct"], "last": summary["imagined_return_last_10pct"],
                     "residual": summary["mean_abs_residual_last"], "imagined": im, "real": real_effect(folder)})
        print(f"[wmrl_report] {folder}: imagined effect ({config.reward} reward) {im['mean']:+.4f} [{im['low']:+.4f}, {im['high']:+.4f}]",
              flush=True)
    command = "python -m training.wmrl_report " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    text = markdown(rows, command)
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.plot:
        plot(logs, args.plot)
    return rows


if __name__ == "__main__":
    cli(main)
