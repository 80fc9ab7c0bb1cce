"""Record ManiSkill 3 episodes of a scripted expert with ``RecordEpisode`` (h5 + json).

    python -m training.collect --task PullCube --episodes 100 --out data/maniskill
    python -m training.collect --task PullCube --episodes 50 --noise 0.5 --out data/maniskill  # failures

One ``<name>.h5`` + ``<name>.json`` pair per call, in ManiSkill's own trajectory format
(``traj_<i>`` groups with ``actions``, per-step ``success``, ``obs/sensor_data/base_camera/
{rgb,segmentation}``, ``obs/agent/qpos``, ``env_states``). The json keeps ManiSkill's
``env_info`` and ``episodes`` and adds an ``rla`` block: task, camera, the segmentation id →
{name, kind} table and the foreground ids (robot + dynamic objects). ``rla.data.load_episodes``
reads these files. Every episode runs exactly ``--steps`` actions: an expert that is done early
holds still, so all episodes of a task have the same length.

``--sim-backend gpu --num-envs N`` steps N envs in parallel on a CUDA GPU (GPU physics and
renderer); the experts are batched, the CPU path is the one that is tested.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("MS_SKIP_ASSET_DOWNLOAD_PROMPT", "1")  # fail fast instead of prompting

import h5py
import numpy as np
import torch
from tqdm import tqdm

from rla.data.tasks import (
    DEFAULT_CONTROL_MODE,
    SUPPORTED_CONTROL_MODES,
    TASKS,
    camera_record,
    get_task,
    make_env,
    segmentation_classes,
    task_record,
)

FORMAT_VERSION = 1


@dataclass
class CollectConfig:
    """Arguments of one collection run (the CLI flags)."""

    task: str  # short task name, see rla.data.tasks.TASKS
    episodes: int  # number of episodes to record
    out: Path  # output folder
    noise: float = 0.0  # std of Gaussian noise added to the normalised actions (failure episodes)
    early_stop: float = 0.0  # probability that the expert freezes at a random step (failures)
    seed: int = 0  # episode i resets the env with seed + i
    size: int = 128  # camera width = height in px
    steps: int | None = None  # actions per episode; default: the task's
    control_mode: str = DEFAULT_CONTROL_MODE
    sim_backend: str = "cpu"
    num_envs: int = 1
    name: str | None = None  # file stem; default derived from the settings
    threads: int = 1  # torch CPU threads
    progress: bool = True
    overwrite: bool = False  # replace an existing <out>/<name>.h5 instead of refusing

    def __post_init__(self):
        self.out = Path(self.out)
        spec = get_task(self.task)  # raises on unknown names
        self.task = spec.name
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")
        if not 0 <= self.early_stop <= 1:
            raise ValueError(f"early_stop is a probability in [0, 1], got {self.early_stop}")
        if self.size < 16:
            raise ValueError(f"size must be >= 16 px, got {self.size}")
        if self.control_mode not in SUPPORTED_CONTROL_MODES:
            raise ValueError(f"control_mode {self.control_mode!r}: the scripted experts drive "
                             f"{' / '.join(SUPPORTED_CONTROL_MODES)} only")
        if self.steps is None:
            self.steps = spec.steps
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.sim_backend == "cpu" and self.num_envs != 1:
            raise ValueError("--num-envs > 1 needs --sim-backend gpu (the CPU simulator runs one env)")
        if self.name is None:
            tag = f"_noise{self.noise:g}" if self.noise else ""
            tag += f"_stop{self.early_stop:g}" if self.early_stop else ""
            self.name = f"{self.task}{tag}_s{self.seed}_n{self.episodes}"
        if not self.overwrite and (self.out / f"{self.name}.h5").exists():
            raise ValueError(f"{self.out / (self.name + '.h5')} exists; pass --overwrite or another --name")

    def command(self) -> str:
        """The CLI call that reproduces this run."""
        args = ["--task", self.task, "--episodes", self.episodes, "--out", self.out, "--seed", self.seed,
                "--size", self.size, "--steps", self.steps, "--control-mode", self.control_mode, "--name", self.name]
        args += ["--noise", self.noise] if self.noise else []
        args += ["--early-stop", self.early_stop] if self.early_stop else []
        args += ["--sim-backend", self.sim_backend, "--num-envs", self.num_envs] if self.sim_backend != "cpu" else []
        return "python -m training.collect " + " ".join(shlex.quote(str(a)) for a in args)


@dataclass
class CollectResult:
    h5_path: Path
    json_path: Path
    episodes: int
    successes: int  # episodes solved at some step (ManiSkill's success_once; Episode.succeeded)
    successes_at_end: int  # episodes still solved at the last step (success_at_end)
    frames: int  # rendered frames, including each episode's reset frame
    seconds: float  # wall time of the stepping loop (env construction excluded)

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    def summary(self, task: str) -> str:
        return (f"{task}: {self.successes}/{self.episodes} successful ({self.success_rate:.0%}; "
                f"{self.successes_at_end} at the last step), "
                f"{self.frames} frames in {self.seconds:.1f} s = {self.fps:.1f} frames/s -> {self.h5_path}")


def collect(cfg: CollectConfig) -> CollectResult:
    """Record ``cfg.episodes`` episodes; return paths and measured success / throughput."""
    from mani_skill.utils.io_utils import dump_json
    from mani_skill.utils.wrappers.record import RecordEpisode

    from rla.experts import make_expert

    torch.set_num_threads(cfg.threads)
    spec = TASKS[cfg.task]
    env = make_env(spec, size=cfg.size, control_mode=cfg.control_mode, sim_backend=cfg.sim_backend,
                   num_envs=cfg.num_envs, max_episode_steps=cfg.steps)
    env = RecordEpisode(env, output_dir=str(cfg.out), trajectory_name=cfg.name, save_video=False,
                        save_on_reset=False, source_type="scripted_expert",
                        source_desc=f"rla-explorer training.collect, expert for {cfg.task}")
    env._json_data["env_info"] = _jsonable(env._json_data["env_info"])
    rng = np.random.default_rng(cfg.seed)
    expert = make_expert(cfg.task, env, control_mode=cfg.control_mode, rng=rng)
    B, T = cfg.num_envs, cfg.steps
    successes, at_end, frames, elapsed, recorded = 0, 0, 0, 0.0, 0
    bar = tqdm(total=cfg.episodes, desc=cfg.task, unit="ep", disable=not cfg.progress)
    try:
        for first in range(0, cfg.episodes, B):
            n = min(B, cfg.episodes - first)
            seeds = [cfg.seed + first + i for i in range(B)]
            t0 = time.perf_counter()
            env.reset(seed=seeds[0] if B == 1 else seeds)
            if first == 0:
                meta = _dataset_meta(cfg, env, expert)
                env._json_data["rla"] = meta
            expert.reset()
            stop_at = [int(rng.integers(T // 5, max(T // 5 + 1, 3 * T // 4))) if rng.random() < cfg.early_stop else None
                       for _ in range(B)]
            success = torch.zeros(B, dtype=torch.bool)
            success_once = torch.zeros(B, dtype=torch.bool)
            for t in range(T):
                action = expert.act()  # (B, A)
                if cfg.noise:
                    action = action + torch.as_tensor(rng.normal(0, cfg.noise, action.shape), dtype=action.dtype,
                                                      device=action.device)
                for b, s in enumerate(stop_at):
                    if s is not None and t >= s:
                        action[b, :3] = 0.0  # freeze the arm, keep the gripper command
                action = action.clamp(-1, 1)
                _, _, _, _, info = env.step(action)
                success = info["success"].reshape(B).cpu().bool()
                success_once |= success
            elapsed += time.perf_counter() - t0
            env.flush_trajectory(env_idxs_to_flush=np.arange(n))
            for b in range(n):
                ep = env._json_data["episodes"][-n + b]
                ep["rla"] = dict(noise=cfg.noise, stopped_at=stop_at[b], success_once=bool(success_once[b]),
                                 success_at_end=bool(success[b]), expert_phase=expert.phase_name(b))
            successes += int(success_once[:n].sum())
            at_end += int(success[:n].sum())
            frames += n * (T + 1)
            recorded += n
            bar.update(n)
            bar.set_postfix(success=f"{successes / recorded:.0%}", fps=f"{frames / elapsed:.1f}")
    finally:
        bar.close()
        h5_path = Path(env._h5_file.filename)
        json_path = Path(env._json_path)
        env.close()  # writes the json; nothing is left to flush
    if recorded:
        dump_json(json_path, env._json_data, indent=2)
        compact_h5(h5_path)
    return CollectResult(h5_path, json_path, recorded, successes, at_end, frames, elapsed)


def _dataset_meta(cfg: CollectConfig, env, expert) -> dict:
    """The ``rla`` block of the json: everything the loader and evaluation need to know."""
    spec = TASKS[cfg.task]
    classes = segmentation_classes(env)
    return dict(
        format_version=FORMAT_VERSION,
        task=spec.name,
        env_id=spec.env_id,
        robot=spec.robot,
        control_mode=cfg.control_mode,
        steps=cfg.steps,
        camera=camera_record(spec, cfg.size),
        segmentation={str(k): v for k, v in classes.items()},
        foreground_ids=[k for k, v in classes.items() if v["kind"] in ("robot", "object")],
        expert=type(expert).__name__,
        task_spec=task_record(spec),
        collect_config={k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        command=cfg.command(),
    )


def _jsonable(x):
    """Replace the camera ``Pose`` in ``env_info.env_kwargs.sensor_configs`` with its raw
    ``[x, y, z, qw, qx, qy, qz]`` list so ManiSkill's json dump works (rebuild envs with
    ``rla.data.make_env``, which recreates the pose from the task's camera spec)."""
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "raw_pose"):
        return x.raw_pose.reshape(-1).tolist()
    return x


def compact_h5(path: Path) -> None:
    """Rewrite ``path`` with every array of rank >= 3 gzip-compressed.

    ``RecordEpisode`` compresses ``rgb`` but stores ``segmentation`` raw (int16, 32 KB per
    128 px frame); compressing it shrinks a file about 5×. Keys and dtypes are unchanged.
    """
    tmp = path.with_suffix(".h5.tmp")

    def copy(src: h5py.Group, dst: h5py.Group) -> None:
        for key, item in src.items():
            if isinstance(item, h5py.Group):
                copy(item, dst.create_group(key, track_order=True))
            elif item.ndim >= 3:
                dst.create_dataset(key, data=item[()], compression="gzip", compression_opts=5)
            else:
                dst.create_dataset(key, data=item[()])
        for k, v in src.attrs.items():
            dst.attrs[k] = v

    with h5py.File(path, "r") as src, h5py.File(tmp, "w", track_order=True) as dst:
        copy(src, dst)
    os.replace(tmp, path)


def parse_args(argv: list[str] | None = None) -> CollectConfig:
    p = argparse.ArgumentParser(prog="python -m training.collect", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, help=f"one of {', '.join(TASKS)} (or a ManiSkill env id)")
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--noise", type=float, default=0.0, help="Gaussian action noise std (failure episodes)")
    p.add_argument("--early-stop", type=float, default=0.0, help="probability of freezing the arm mid-episode")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=128, help="camera resolution (square)")
    p.add_argument("--steps", type=int, default=None, help="actions per episode (default: per task)")
    p.add_argument("--control-mode", default=DEFAULT_CONTROL_MODE, choices=SUPPORTED_CONTROL_MODES)
    p.add_argument("--sim-backend", default="cpu", choices=("cpu", "gpu"))
    p.add_argument("--num-envs", type=int, default=1, help="parallel envs (gpu backend only)")
    p.add_argument("--name", default=None, help="output file stem")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file of the same name")
    a = p.parse_args(argv)
    try:
        return CollectConfig(task=a.task, episodes=a.episodes, out=a.out, noise=a.noise, early_stop=a.early_stop,
                             seed=a.seed, size=a.size, steps=a.steps, control_mode=a.control_mode,
                             sim_backend=a.sim_backend, num_envs=a.num_envs, name=a.name, threads=a.threads,
                             progress=a.progress, overwrite=a.overwrite)
    except ValueError as e:
        p.error(str(e))


def main(argv: list[str] | None = None) -> CollectResult:
    cfg = parse_args(argv)
    sys.stdin = open(os.devnull)  # never block on an asset-download prompt
    result = collect(cfg)
    print(result.summary(cfg.task))
    return result


if __name__ == "__main__":
    from training.common import cli

    cli(main)
