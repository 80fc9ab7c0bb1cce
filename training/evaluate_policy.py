"""Score a policy, the scripted expert or zero actions in the ManiSkill simulator; summarise many runs.

    python -m training.evaluate_policy --policy assets/policies/PullCube/wam/seed0 --task PullCube \\
        --episodes 100 --seed 0 --out assets/policies/PullCube/wam/seed0/eval_test.json
    python -m training.evaluate_policy --policy expert --task PullCube --episodes 100 --out assets/policies/PullCube/expert/eval_test.json
    python -m training.evaluate_policy --policy zero --task PullCube --episodes 100 --out assets/policies/PullCube/zero/eval_test.json
    python -m training.evaluate_policy --summarize assets/policies/PullCube/*/*/eval_test.json assets/policies/PullCube/*/eval_test.json \\
        --out docs/wam_table.md
    python -m training.evaluate_policy --policy assets/policies/PullCube/wmrl/seed0 --task PullCube --episodes 100 \\
        --out assets/policies/PullCube/wmrl/seed0/eval_test.json

Episode ``i`` resets with seed ``start + S + i``, where ``start`` opens the reserved
``policy_test`` range (``--split val``: ``policy_val``, for pilots) and ``S`` is ``--seed``; every
arm uses the same reset seeds. Every row, the expert's included, runs under the episode length of
``rla.data.make_env`` for the task; success is success-once (solved at some step). The result file
is rewritten after each episode, and rerunning the command continues where it stopped.
``--policy`` takes a behaviour-cloning / WAM policy folder (``training.train_policy``) or a WMRL
one (``training.train_wmrl``), loaded with ``rla.wmrl.load_any_policy``; both act with their mean
action. The result's header records ``policy_kind`` and, for WMRL, the RL seed as ``train_seed``
and the initial policy it fine-tuned (``base``: path and the sha256 of its weights).
``--summarize`` reads result files and writes a markdown table: success per task and arm with a
hierarchical bootstrap CI (training seeds, then reset seeds) and the paired differences: WAM − BC
seed by seed, and WMRL − its initial policy, each RL seed with the one policy it started from
(``rla.policy.results.pairings``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

os.environ.setdefault("MS_SKIP_ASSET_DOWNLOAD_PROMPT", "1")

HEADER_KEYS = ("task", "split", "policy", "arm", "train_seed", "max_steps", "seed_offset")  # must match to resume


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.evaluate_policy", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--policy", help="a policy folder (config.json + model.safetensors), 'expert' or 'zero'")
    p.add_argument("--task", help="task, e.g. PullCube")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=0, help="offset of the first reset seed inside the split's reserved range")
    p.add_argument("--split", default="test", choices=("test", "val"), help="reset seeds: policy_test (reported) or policy_val (pilots)")
    p.add_argument("--out", type=Path, required=True, help="result JSON (evaluation) or markdown file (--summarize)")
    p.add_argument("--summarize", nargs="+", type=Path, default=None, metavar="FILE", help="summarise result files instead of running")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    args = p.parse_args(argv)
    if args.summarize is None and (not args.policy or not args.task):
        p.error("--policy and --task are required (or --summarize FILES)")
    if args.episodes < 1:
        p.error("--episodes must be >= 1")
    return args


def reset_seeds(split: str, offset: int, episodes: int) -> list[int]:
    """The reserved reset seeds ``start + offset + i``; raises ``ValueError`` outside the range."""
    from rla.data import SEED_RANGES, check_seeds

    purpose = {"test": "policy_test", "val": "policy_val"}[split]
    first = SEED_RANGES[purpose][0] + offset
    check_seeds(purpose, first, episodes)
    return [first + i for i in range(episodes)]


def describe_policy(spec: str) -> dict:
    """Header fields of a run: the arm, training seed, what kind of policy it is and how it was trained.

    ``policy_kind`` is ``policy`` (``rla.policy.Policy``: BC or WAM, described by its ``train.json``),
    ``wmrl`` (``rla.wmrl.WMRLPolicy``: its ``run.json`` gives the RL seed as ``train_seed``, and
    ``base`` the initial policy it fine-tuned, with the sha256 of its weights; ``train`` holds its
    ``wmrl.json`` summary), or the reference ``expert`` / ``zero``. ``sha256`` is that of the
    folder's ``model.safetensors``: the summary pairs a WMRL run with the result of its initial policy by it.
    """
    from rla.hub import file_sha256
    from rla.policy.results import policy_info

    if spec in ("expert", "zero"):
        return {"policy": spec, "arm": spec, "train_seed": None, "policy_kind": spec, "train": None}
    folder = Path(spec)
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise SystemExit(f"--policy {spec}: not 'expert', 'zero' or a policy folder with config.json and model.safetensors")
    about = policy_info(folder)
    header = {"policy": str(folder.resolve()), "arm": about["arm"], "train_seed": about["train_seed"],
              "policy_kind": about["policy_kind"], "sha256": file_sha256(folder / "model.safetensors")}
    if about["policy_kind"] == "wmrl":
        report = json.loads((folder / "wmrl.json").read_text()) if (folder / "wmrl.json").is_file() else {}
        train = {k: report.get(k) for k in ("minutes", "iterations", "imagined_return_first_10pct", "imagined_return_last_10pct",
                                             "mean_abs_residual_last", "approx_kl_mean", "reward_validity")} if report else None
        if train is not None:
            train["autoencoder_sha256"] = about["pack_autoencoder_sha256"]
        return {**header, "base": about["base"], "train": train}
    info = json.loads((folder / "train.json").read_text()) if (folder / "train.json").is_file() else {}
    train = None
    if info:
        split = info.get("data_split", {})
        train = {"minutes": info.get("train", {}).get("minutes"), "steps": info.get("train", {}).get("steps"),
                 "seconds_per_step": info.get("seconds_per_step"), "rla_weight": info.get("rla_weight"),
                 "labelled_fraction": info.get("labelled_fraction"), "labelled_episodes": len(split.get("labelled_episodes", [])),
                 "action_less_episodes": split.get("action_less_episodes"), "autoencoder_sha256": info.get("pack_autoencoder_sha256"),
                 "heldout_scores": info.get("heldout_scores"), "stopped_by_time": info.get("stopped_by_time")}
    return {**header, "train": train}


def make_actor(spec: str, task: str, env, action_dim: int):
    from rla.policy.rollout import PolicyActor, ZeroActor

    if spec == "zero":
        return ZeroActor(action_dim)
    if spec == "expert":
        from rla.experts import ExpertActor

        return ExpertActor(task)
    from rla.wmrl import load_any_policy

    policy = load_any_policy(spec)  # a behaviour-cloning policy or a WMRL one (its base plus the residual head)
    if policy.action_dim != action_dim:
        raise SystemExit(f"{spec} acts in {policy.action_dim}-D, {task}'s env takes {action_dim}-D actions")
    return PolicyActor(policy)


def evaluate(args) -> dict:
    from rla.data import get_task
    from rla.policy.results import KIND, VERSION
    from rla.policy.rollout import episode_steps, make_policy_env, run_episode

    torch.set_num_threads(args.threads)
    try:
        spec = get_task(args.task)
        seeds = reset_seeds(args.split, args.seed, args.episodes)
    except ValueError as err:  # unknown task, seeds outside the reserved range
        raise SystemExit(str(err)) from err
    header = {"kind": KIND, "version": VERSION, "task": spec.name, "split": args.split, **describe_policy(args.policy),
              "max_steps": episode_steps(spec.name), "seed_offset": args.seed}
    result = {**header, "episodes": []}
    if args.out.is_file():
        old = json.loads(args.out.read_text())
        changed = [k for k in HEADER_KEYS if old.get(k) != header[k]]
        if changed:
            raise SystemExit(f"{args.out} holds another evaluation ({', '.join(changed)} differ): pick another --out or delete it")
        result["episodes"] = [e for e in old.get("episodes", []) if e["reset_seed"] in set(seeds)]
    done = {e["reset_seed"] for e in result["episodes"]}
    todo = [s for s in seeds if s not in done]
    if todo:
        env = make_policy_env(spec.name)
        actor = make_actor(args.policy, spec.name, env, int(env.action_space.shape[-1]))
        bar = tqdm(total=len(seeds), initial=len(done), desc=f"{header['arm']} {spec.name}", unit="ep", disable=not args.progress)
        try:
            for s in todo:
                out = run_episode(env, actor, s, header["max_steps"])
                result["episodes"].append(out.to_dict())
                result["episodes"].sort(key=lambda e: e["reset_seed"])
                write_atomic(args.out, finish(result))
                bar.update(1)
                bar.set_postfix(success=f"{np.mean([e['success'] for e in result['episodes']]):.0%}")
        finally:
            bar.close()
            env.close()
    result = finish(result)
    write_atomic(args.out, result)
    print(f"{header['arm']} on {spec.name} ({args.split}): {result['successes']}/{result['n']} successful "
          f"({result['success_rate']:.0%}) -> {args.out}")
    return result


def finish(result: dict) -> dict:
    eps = result["episodes"]
    n = len(eps)
    return {**result, "n": n, "successes": int(sum(e["success"] for e in eps)),
            "success_rate": float(np.mean([e["success"] for e in eps])) if n else float("nan"),
            "mean_steps": float(np.mean([e["steps"] for e in eps])) if n else float("nan"),
            "seconds": round(float(sum(e["seconds"] for e in eps)), 1), "updated": time.strftime("%Y-%m-%d %H:%M:%S")}


def write_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    os.replace(tmp, path)


def summarize_files(files: list[Path], out: Path) -> str:
    from rla.policy.results import load_result, markdown, summarize

    try:
        results = [load_result(f) for f in files]
    except ValueError as err:
        raise SystemExit(str(err)) from err
    text = markdown(summarize(results))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"<!-- python -m training.evaluate_policy --summarize {' '.join(map(str, files))} --out {out} -->\n" + text)
    print(text)
    return text


def main(argv=None):
    args = parse_args(argv)
    if args.summarize is not None:
        return summarize_files(args.summarize, args.out)
    sys.stdin = open(os.devnull)  # never block on an asset-download prompt
    return evaluate(args)


if __name__ == "__main__":
    from training.common import cli

    cli(main)
