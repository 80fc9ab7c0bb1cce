"""Episodes recorded by ``training.collect`` (ManiSkill ``RecordEpisode`` h5 + json), in memory.

File layout read here (one ``traj_<i>`` group per episode, T actions, T + 1 frames)::

    traj_<i>/actions                                   (T, A)        float32
    traj_<i>/success                                   (T,)          bool, after each action
    traj_<i>/obs/agent/qpos                            (T+1, J)      float32
    traj_<i>/obs/sensor_data/<camera>/rgb              (T+1, H, W, 3) uint8
    traj_<i>/obs/sensor_data/<camera>/segmentation     (T+1, H, W, 1) int16 (optional)

The json next to the h5 lists the episodes (``episodes[].episode_id``) and, in its ``rla``
block, the task, control mode and the foreground segmentation ids. Files recorded by plain
ManiSkill (no ``rla`` block) load too: the task is derived from ``env_info.env_id`` and
``foreground`` is None.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rla.data.tasks import CAMERA_NAME, ENV_ID_TO_TASK


class DatasetError(ValueError):
    """Bad or missing data; the message names the file (and episode) and what is wrong."""


@dataclass
class Episode:
    """One recorded episode. ``T`` actions; frame ``t + 1`` is the result of action ``t``."""

    frames: np.ndarray  # (T+1, H, W, 3) uint8 RGB
    actions: np.ndarray  # (T, A) float32, in the env's normalised action space [-1, 1]
    qpos: np.ndarray  # (T+1, J) float32 joint positions
    success: np.ndarray  # (T,) bool, the task's success after each action
    foreground: np.ndarray | None  # (T+1, H, W) bool: robot + moving objects; None if not recorded
    task: str  # short task name, e.g. "PullCube" or "play"
    episode_id: str  # f"{file_stem}/traj_{i}" (prefixed "{task}/" unless the stem starts with the task)
    control_mode: str  # ManiSkill controller the actions are for, e.g. "pd_ee_delta_pos"
    source: str = ""  # the h5 file it came from
    seed: int | None = None  # the env reset seed it was recorded from (None if not recorded)

    def __post_init__(self):
        T = len(self.actions)
        if self.frames.shape[0] != T + 1 or self.qpos.shape[0] != T + 1 or self.success.shape[0] != T:
            raise DatasetError(
                f"{self.source or self.episode_id}: episode {self.episode_id} has inconsistent lengths: "
                f"{len(self.frames)} frames, {T} actions, {len(self.qpos)} qpos, {len(self.success)} success "
                "(expected T+1 frames and qpos for T actions)")
        if self.foreground is not None and self.foreground.shape != self.frames.shape[:3]:
            raise DatasetError(f"{self.source}: episode {self.episode_id}: foreground {self.foreground.shape} "
                               f"does not match frames {self.frames.shape[:3]}")

    @property
    def num_steps(self) -> int:
        """T, the number of actions."""
        return len(self.actions)

    @property
    def succeeded(self) -> bool:
        """ManiSkill's ``success_once``: the task was solved at some step.

        This is ManiSkill's own episode metric (its envs terminate on success). For RollBall
        the ball can roll through the goal and on, so "at the end" would undercount.
        """
        return bool(self.success.any())

    @property
    def success_at_end(self) -> bool:
        """ManiSkill's ``success_at_end`` (the json's per-episode ``success``)."""
        return bool(self.success[-1]) if len(self.success) else False

    @property
    def image_size(self) -> tuple[int, int]:
        return self.frames.shape[1], self.frames.shape[2]

    @property
    def action_dim(self) -> int:
        return self.actions.shape[1]


def find_h5_files(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of ``.h5`` files."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("*.h5"))
            if not found:
                raise DatasetError(f"{p}: folder contains no .h5 episode files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise DatasetError(f"{p}: no such file or folder")
    return files


def load_episodes(paths: str | Path | Sequence[str | Path], camera: str = CAMERA_NAME) -> list[Episode]:
    """Load every episode of the given h5 files / folders, in file then ``traj`` order.

    Raises:
        DatasetError: naming the file for a missing path, an unreadable or truncated h5, a
            missing or mismatching json, a missing camera or inconsistent array lengths.
    """
    episodes: list[Episode] = []
    for path in find_h5_files(paths):
        episodes.extend(load_file(path, camera=camera))
    ids = [e.episode_id for e in episodes]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:3]
        raise DatasetError(f"duplicate episode ids {dup}: two files share a name; rename one (ids are file_stem/traj_i)")
    return episodes


def load_file(path: str | Path, camera: str = CAMERA_NAME) -> list[Episode]:
    """Load all episodes of one ``.h5`` (with its ``.json`` beside it)."""
    import h5py

    path = Path(path)
    meta = _read_json(path)
    rla = meta.get("rla", {})
    task = rla.get("task") or ENV_ID_TO_TASK.get(meta.get("env_info", {}).get("env_id", ""), "unknown")
    fg_ids = np.asarray(rla["foreground_ids"], dtype=np.int64) if "foreground_ids" in rla else None
    listed = meta.get("episodes", [])
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(f"{path}: cannot open as HDF5 (truncated or corrupt?): {e}") from e
    episodes = []
    with f:
        keys = sorted((k for k in f.keys() if k.startswith("traj_")), key=lambda k: int(k.split("_")[1]))
        json_keys = [f"traj_{e['episode_id']}" for e in listed]
        if sorted(json_keys, key=lambda k: int(k.split("_")[1])) != keys:
            raise DatasetError(f"{path}: h5 and json disagree: h5 has {len(keys)} episodes {keys[:3]}…, "
                               f"json lists {len(json_keys)} {json_keys[:3]}…; re-record or fix the json")
        for key, info in zip(keys, sorted(listed, key=lambda e: int(e["episode_id"]))):
            episodes.append(_read_traj(path, f[key], key, info, task, fg_ids, camera))
    return episodes


def episode_id(path: Path, key: str, task: str) -> str:
    """``f"{stem}/{key}"``, prefixed with ``f"{task}/"`` unless the stem already starts with the
    task name: ``PullCube_s0_n100.h5`` → ``PullCube_s0_n100/traj_3``, while
    ``data/PullCube/clean.h5`` → ``PullCube/clean/traj_3`` (so per-task folders with the same
    file names do not collide). Depends only on the file name and task, not on the folder."""
    stem = path.stem
    return f"{stem}/{key}" if stem.startswith(task) else f"{task}/{stem}/{key}"


def _read_json(h5_path: Path) -> dict:
    if not h5_path.is_file():
        raise DatasetError(f"{h5_path}: no such file")
    json_path = h5_path.with_suffix(".json")
    if not json_path.is_file():
        raise DatasetError(f"{h5_path}: missing {json_path.name} beside it (RecordEpisode writes both)")
    try:
        return json.loads(json_path.read_text())
    except json.JSONDecodeError as e:
        raise DatasetError(f"{json_path}: invalid json: {e}") from e


def _read_traj(path: Path, g, key: str, info: dict, task: str, fg_ids: np.ndarray | None, camera: str) -> Episode:
    where = f"{path}:{key}"
    try:
        sensors = g["obs/sensor_data"]
        if camera not in sensors:
            raise DatasetError(f"{where}: camera {camera!r} not recorded; cameras present: {sorted(sensors)}")
        cam = sensors[camera]
        if "rgb" not in cam:
            raise DatasetError(f"{where}: camera {camera!r} has no rgb (keys: {sorted(cam)})")
        frames = cam["rgb"][()]
        seg = cam["segmentation"][()] if ("segmentation" in cam and fg_ids is not None) else None
        actions = g["actions"][()].astype(np.float32)
        qpos = g["obs/agent/qpos"][()].astype(np.float32)
        success = g["success"][()].astype(bool) if "success" in g else np.zeros(len(actions), bool)
    except KeyError as e:
        raise DatasetError(f"{where}: missing dataset ({e}); is this a RecordEpisode file?") from e
    except OSError as e:
        raise DatasetError(f"{where}: cannot read (truncated or corrupt file?): {e}") from e
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise DatasetError(f"{where}: rgb must be (T+1, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    foreground = np.isin(seg[..., 0], fg_ids) if seg is not None else None
    return Episode(
        frames=frames, actions=actions, qpos=qpos, success=success, foreground=foreground, task=task,
        episode_id=episode_id(path, key, task), control_mode=str(info.get("control_mode", "unknown")), source=str(path),
        seed=int(info["episode_seed"]) if info.get("episode_seed") is not None else None,
    )
