"""Fine-tune a behaviour-cloning policy inside the pack's world model with PPO (WMRL).

    python -m training.train_wmrl --pack assets/pack --policy assets/policies/PullCube/bc_nostate/seed0 \\
        --task PullCube --seed 0 --out runs/wmrl/PullCube/seed0

The imagined env (``rla.imagined_env``) starts from the task's successful recordings (by default
the ``--data`` the initial policy was trained on, read from its ``train.json``) and rewards
``-5 · mean |predicted − recorded tokens|``. The initial policy is frozen; PPO + GAE (stable-baselines3)
trains a zero-initialised residual action head and a value head (``rla.wmrl``), with the authors'
settings (γ 0.9, λ 0.95, clip 0.2, 4 epochs, lr 1e-4, target KL 0.1, no BC loss) and CPU-scale
defaults: 32 envs × 4 chunk-steps per iteration, 10 Euler steps, 200 iterations.

Writes into ``--out``: ``config.json`` + ``model.safetensors`` (the WMRL policy: the frozen base +
the heads; ``rla.wmrl.load_any_policy`` loads it), ``run.json`` (settings, command), ``log.csv``
(one row per iteration: imagined return, approximate KL, value loss, mean |residual|, …),
``wmrl.json`` (the summary) and ``checkpoint/`` (every ``--checkpoint-every`` iterations; rerun the
same command to continue from the last one; a larger ``--iterations`` extends a finished run).
A resumed run draws its env starts and noise from ``(seed, iteration it resumed at)``.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from rla.imagined_env import REWARDS
from training.common import DEFAULT_CACHE, cli, write_json

LOG_FIELDS = ("iteration", "timesteps", "minutes", "imagined_return", "episodes", "reward_per_step", "approx_kl", "value_loss",
              "policy_loss", "clip_fraction", "std", "explained_variance", "mean_abs_residual")
# what must match to continue a run in the same folder
RESUME_KEYS = ("policy_sha256", "pack_autoencoder_sha256", "task", "seed", "envs", "env_config", "ppo", "recordings")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.train_wmrl", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--pack", required=True, help="model pack folder or Hub repo id (its world model is the env)")
    p.add_argument("--policy", type=Path, required=True, help="initial policy folder (training.train_policy --no-state, tokens trunk)")
    p.add_argument("--task", required=True, help="task whose successful recordings start the episodes, e.g. PullCube")
    p.add_argument("--seed", type=int, default=0, help="PPO sampling, env starts and world-model noise")
    p.add_argument("--out", type=Path, required=True, help="run folder, e.g. runs/wmrl/PullCube/seed0")
    p.add_argument("--data", nargs="+", default=None, help="recordings (.h5 files or folders); default: the policy's training data")
    p.add_argument("--any-seeds", action="store_true", help="accept recordings outside the policy_data seed range")
    p.add_argument("--iterations", type=int, default=200, help="PPO iterations (rollout + update)")
    p.add_argument("--envs", type=int, default=32, help="imagined envs stepped together (the authors': 112)")
    p.add_argument("--steps-per-iteration", type=int, default=4, help="chunk-steps per env per iteration (the authors': 4)")
    p.add_argument("--euler-steps", type=int, default=10, help="flow Euler steps per prediction (the authors': 30)")
    p.add_argument("--max-chunk-steps", type=int, default=6, help="chunk-steps before an imagined episode is truncated")
    p.add_argument("--reward", default="corresponding", choices=REWARDS,
                   help="reward target: the recorded frame at the same time, the recording's last frame, or 'shuffled' "
                        "(a control: another recording's frame at the same time)")
    p.add_argument("--batch-size", type=int, default=32, help="PPO minibatch")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--gamma", type=float, default=0.9)
    p.add_argument("--gae-lambda", type=float, default=0.95)
    p.add_argument("--clip", type=float, default=0.2)
    p.add_argument("--target-kl", type=float, default=0.1)
    p.add_argument("--validity-starts", type=int, default=4,
                   help="recorded starts per recording for the reward-validity check before training (0 = skip)")
    p.add_argument("--checkpoint-every", type=int, default=5, help="iterations between resumable checkpoints")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="feature cache folder")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    args = p.parse_args(argv)
    positive = ("iterations", "envs", "steps_per_iteration", "euler_steps", "max_chunk_steps", "batch_size", "epochs", "checkpoint_every")
    bad = [f"--{n.replace('_', '-')}" for n in positive if getattr(args, n) < 1]
    if bad:
        p.error(f"{', '.join(bad)} must be >= 1")
    if args.validity_starts < 0:
        p.error("--validity-starts must be >= 0")
    if args.lr <= 0 or not 0 < args.gamma <= 1 or not 0 <= args.gae_lambda <= 1 or args.clip <= 0 or args.target_kl <= 0:
        p.error("--lr, --clip and --target-kl must be > 0, --gamma in (0, 1], --gae-lambda in [0, 1]")
    return args


def load_initial_policy(folder: Path):
    """The frozen initial policy: it must observe tokens only (what the imagined env provides)."""
    from rla.policy import Policy

    policy = Policy.load(folder)
    c = policy.config
    if c.trunk != "tokens":
        raise SystemExit(f"{folder}: a {c.trunk} policy observes frames; WMRL here runs on tokens-trunk policies (--trunk tokens)")
    if c.state_dim:
        raise SystemExit(f"{folder} was trained with qpos ({c.state_dim}-D); the imagined env has none: "
                         "train the initial policy with --no-state --rla-weight 0 --labelled-fraction 1.0 (docs/wam.md)")
    return policy


def recorded_data(args) -> list:
    if args.data:
        return args.data
    info = args.policy / "train.json"
    if not info.is_file():
        raise SystemExit(f"{args.policy} has no train.json naming its training data: pass --data")
    return json.loads(info.read_text())["data"]


def train(pack, policy, recordings, out: Path, *, seed: int, iterations: int, envs: int, env_config, ppo_settings,
          checkpoint_every: int = 5, progress: bool = True, run: dict | None = None) -> dict:
    """PPO on the imagined env for ``iterations`` in total (continuing ``out/checkpoint`` when present)."""
    from rla.imagined_env import ImaginedCore
    from rla.wmrl import WMRLPolicy, make_ppo, mean_abs_residual, sb3_classes

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint"
    wmrl = WMRLPolicy.from_policy(policy)
    per_iteration = envs * ppo_settings.n_steps
    start, done_before = 0, {}
    if (ckpt / "progress.json").is_file():
        from safetensors.torch import load_file

        done_before = json.loads((ckpt / "progress.json").read_text())
        start = int(done_before["iteration"])
        wmrl.load_state_dict(load_file(str(ckpt / "policy.safetensors")), strict=True)
    # a fresh run uses `seed`; a resumed one a seed derived from (seed, iteration) so it does not replay the first starts
    run_seed = seed if start == 0 else int(np.random.SeedSequence([seed, start]).generate_state(1)[0] % 2**31)
    venv = sb3_classes()["vec_env"](ImaginedCore.from_pack(pack, recordings, envs, env_config))
    ppo = make_ppo(wmrl, venv, ppo_settings, seed=run_seed)
    if start:
        ppo.policy.optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
        ppo.num_timesteps, ppo._n_updates = start * per_iteration, int(done_before.get("n_updates", 0))
        print(f"[wmrl] resumed at iteration {start} of {iterations}", flush=True)
    log_path = out / "log.csv"
    rows = _read_log(log_path, upto=start)
    t0 = time.perf_counter() - float(done_before.get("seconds", 0.0))
    cpu0 = time.process_time() - float(done_before.get("cpu_seconds", 0.0))
    bar = tqdm(total=iterations, initial=start, desc=f"wmrl seed {seed}", unit="it", disable=not progress, mininterval=5)

    def after_update(model) -> None:
        it = model.num_timesteps // per_iteration
        logs = model.logger.name_to_value
        obs = torch.from_numpy(model.rollout_buffer.observations.reshape(-1, *model.rollout_buffer.obs_shape))
        row = {"iteration": it, "timesteps": model.num_timesteps, "minutes": (time.perf_counter() - t0) / 60, **venv.pop_finished(),
               "approx_kl": logs.get("train/approx_kl"), "value_loss": logs.get("train/value_loss"),
               "policy_loss": logs.get("train/policy_gradient_loss"), "clip_fraction": logs.get("train/clip_fraction"),
               "std": float((wmrl.config.std_scale * torch.nn.functional.softplus(wmrl.std_param.detach())).mean()),
               "explained_variance": logs.get("train/explained_variance"), "mean_abs_residual": mean_abs_residual(wmrl, obs)}
        rows.append({k: row.get(k) for k in LOG_FIELDS})
        _write_log(log_path, rows)
        bar.update(1)
        bar.set_postfix(ret=f"{row['imagined_return']:.3f}", kl=f"{row['approx_kl']:.4f}", res=f"{row['mean_abs_residual']:.4f}")
        if it % checkpoint_every == 0 or it >= iterations:
            _checkpoint(ckpt, model, it, time.perf_counter() - t0, time.process_time() - cpu0)

    ppo.after_update = after_update
    if start < iterations:
        ppo.learn(total_timesteps=(iterations - start) * per_iteration, reset_num_timesteps=False)
    bar.close()
    wmrl.eval().save_pretrained(out)
    summary = summarize(rows, iterations)
    report = {**(run or {}), "iterations": iterations, "resumed_at": start or None, "minutes": round((time.perf_counter() - t0) / 60, 2),
              "cpu_seconds": round(time.process_time() - cpu0, 1), "threads": torch.get_num_threads(), **summary}
    write_json(out / "wmrl.json", report)
    return report


def summarize(rows: list[dict], iterations: int) -> dict:
    """Imagined return over the first and last 10 % of iterations, and the final mean |residual|."""
    def mean(key, part):
        vals = [float(r[key]) for r in part if r.get(key) not in (None, "") and not math.isnan(float(r[key]))]
        return float(np.mean(vals)) if vals else float("nan")

    n = max(1, round(0.1 * iterations))
    first, last = rows[:n], rows[-n:]
    return {"imagined_return_first_10pct": mean("imagined_return", first), "imagined_return_last_10pct": mean("imagined_return", last),
            "mean_abs_residual_last": float(rows[-1]["mean_abs_residual"]) if rows else float("nan"),
            "approx_kl_mean": mean("approx_kl", rows)}


def _checkpoint(ckpt: Path, model, iteration: int, seconds: float, cpu_seconds: float) -> None:
    from safetensors.torch import save_file

    ckpt.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.policy.wmrl.state_dict().items()}
    save_file(state, str(ckpt / "policy.safetensors"))
    torch.save(model.policy.optimizer.state_dict(), ckpt / "optimizer.pt")
    (ckpt / "progress.json").write_text(json.dumps({"iteration": iteration, "n_updates": model._n_updates, "seconds": seconds,
                                                    "cpu_seconds": cpu_seconds}))


def _read_log(path: Path, upto: int) -> list[dict]:
    """Rows of an earlier run up to the iteration it resumes from (rows past the last checkpoint are redone)."""
    if not upto or not path.is_file():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if int(r["iteration"]) <= upto]  # kept as written


def _write_log(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=LOG_FIELDS)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def check_resume(out: Path, run: dict) -> None:
    """Refuse to continue a checkpoint made with other settings."""
    previous = out / "run.json"
    if not (out / "checkpoint" / "progress.json").is_file() or not previous.is_file():
        return
    old = json.loads(previous.read_text())
    changed = [k for k in RESUME_KEYS if old.get(k) != json.loads(json.dumps(run[k]))]
    if changed:
        raise SystemExit(f"{out} holds a run with other settings ({', '.join(changed)}): pick another --out or delete {out / 'checkpoint'}")


def main(argv=None) -> dict:
    args = parse_args(argv)
    from rla.data import FeatureCache
    from rla.imagined_env import ImaginedEnvConfig, recordings_from_episodes
    from rla.pack import ModelPack, resolve_pack
    from rla.policy import file_sha256
    from rla.wmrl import PPOSettings
    from training.train_policy import load_task_episodes

    if args.threads:
        torch.set_num_threads(args.threads)
    policy = load_initial_policy(args.policy)
    root = resolve_pack(args.pack)
    pack = ModelPack.load(args.pack)
    if (policy.config.num_tokens, policy.config.token_dim) != (pack.encoder.num_tokens, pack.encoder.dim):
        raise SystemExit(f"{args.policy} observes {policy.config.num_tokens}x{policy.config.token_dim} tokens, "
                         f"the pack makes {pack.encoder.num_tokens}x{pack.encoder.dim}")
    if policy.config.action_dim != pack.info.action_dim:
        raise SystemExit(f"{args.policy} acts in {policy.config.action_dim}-D, the pack's world model in {pack.info.action_dim}-D")
    episodes = load_task_episodes(recorded_data(args), args.task, args.any_seeds)
    recordings = recordings_from_episodes(episodes, pack, cache=FeatureCache(args.cache))
    del episodes
    env_config = ImaginedEnvConfig(actions_per_step=policy.config.execute, euler_steps=args.euler_steps,
                                   max_chunk_steps=args.max_chunk_steps, reward=args.reward)
    settings = PPOSettings(n_steps=args.steps_per_iteration, batch_size=args.batch_size, n_epochs=args.epochs, lr=args.lr,
                           gamma=args.gamma, gae_lambda=args.gae_lambda, clip_range=args.clip, target_kl=args.target_kl)
    run = {"task": args.task, "seed": args.seed, "envs": args.envs, "policy": str(args.policy),
           "policy_sha256": file_sha256(args.policy / "model.safetensors"), "pack": str(args.pack),
           "pack_autoencoder_sha256": file_sha256(root / "autoencoder" / "model.safetensors"),
           "env_config": asdict(env_config), "ppo": asdict(settings), "recordings": [r.episode_id for r in recordings],
           "command": "python -m training.train_wmrl " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))}
    check_resume(args.out, run)
    write_json(args.out / "run.json", run)
    validity = None
    if args.validity_starts:
        from rla.imagined_env import reward_validity

        v = reward_validity(pack, recordings, starts_per_recording=args.validity_starts, sigma=0.5, config=env_config, seed=args.seed,
                            action_low=pack.info.action_low, action_high=pack.info.action_high)
        validity = {k: v[k] for k in ("fraction", "n", "sigma", "chunk_steps")}
        print(f"[wmrl] reward validity: recorded actions beat sigma = 0.5 noise in {v['fraction']:.0%} of {v['n']} recorded starts"
              + ("" if v["fraction"] >= 0.75 else " (below 75 %: the reward barely tells actions apart; RL optimises little)"), flush=True)
    print(f"[wmrl] {len(recordings)} successful {args.task} recordings; {args.envs} envs x {settings.n_steps} chunk-steps "
          f"per iteration, {args.iterations} iterations", flush=True)
    report = train(pack, policy, recordings, args.out, seed=args.seed, iterations=args.iterations, envs=args.envs,
                   env_config=env_config, ppo_settings=settings, checkpoint_every=args.checkpoint_every, progress=args.progress,
                   run={**run, "reward_validity": validity})
    print(f"[wmrl] imagined return {report['imagined_return_first_10pct']:.3f} (first 10 %) -> "
          f"{report['imagined_return_last_10pct']:.3f} (last 10 %); mean |residual| {report['mean_abs_residual_last']:.4f} "
          f"-> {args.out}")
    return report


if __name__ == "__main__":
    cli(main)
