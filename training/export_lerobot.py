"""Export recorded episodes as a LeRobotDataset (format v3.0): parquet tables, mp4 videos, metadata.

    python -m training.export_lerobot --data data/pipeline --out exports/rla-lerobot
    python -m training.export_lerobot --data data/pipeline/PushCube --out exports/pushcube --tasks PushCube

Layout written under ``--out`` (one robot's action space; mixed ones are refused, pass ``--tasks``)::

    meta/info.json                                   codebase_version "v3.0", fps, features, totals, path templates
    meta/stats.json                                  min/max/mean/std/count of action and observation.state
    meta/tasks.parquet                               task_index per task text (the pandas index "task")
    meta/episodes/chunk-000/file-000.parquet         one row per episode: length, tasks, where its rows and video are
    data/chunk-000/file-000.parquet                  one row per step, every episode
    videos/observation.images.front/chunk-CCC/file-FFF.mp4   one video per episode (file index = episode index)

Row ``t`` of an episode holds frame ``t``, the joint positions ``qpos[t]``, action ``t`` and
``next.success`` (the task's success after that action). A recording has T actions and T + 1
frames; the last frame, which no action follows, is not exported, so every video has exactly as
many frames as its episode has rows. Videos are written by ``rla.video.write_mp4`` (VP9 in MP4,
MPEG-4 Part 2 where OpenCV lacks VP9). ``fps`` is the control frequency: ManiSkill's default
20 Hz for every task recorded here. Task texts are the tasks' one-line descriptions
(``rla.data.tasks.TASKS``); the recording's own fields (episode id, reset seed, success,
control mode, source file) are kept in ``rla/*`` columns of the episodes table.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

CODEBASE_VERSION = "v3.0"
VIDEO_KEY = "observation.images.front"
CHUNKS_SIZE = 1000  # files per chunk folder, LeRobot's default
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
CODEC_NAMES = {"vp09": "vp9", "mp4v": "mpeg4"}  # FourCC written by rla.video → FFmpeg codec name
ACTION_NAMES = {  # normalised end-effector deltas in [-1, 1], gripper last when the robot has one
    "pd_ee_delta_pos": ["dx", "dy", "dz"],
    "pd_ee_delta_pose": ["dx", "dy", "dz", "drx", "dry", "drz"],
}


def task_text(task: str) -> str:
    """The natural-language task a LeRobot policy is conditioned on: the task's description."""
    from rla.data.tasks import TASKS

    spec = TASKS.get(task)
    return spec.description if spec is not None and spec.description else task


def action_names(control_mode: str, action_dim: int) -> list[str]:
    arm = ACTION_NAMES.get(control_mode, [])
    for names in (arm, arm + ["gripper"]):
        if names and len(names) == action_dim:
            return names
    return [f"a{i}" for i in range(action_dim)]


def _stats(x: np.ndarray) -> dict:
    """Per-dimension statistics of ``(rows, dim)`` in LeRobot's stats.json form."""
    return {"min": x.min(0).tolist(), "max": x.max(0).tolist(), "mean": x.mean(0).tolist(), "std": x.std(0).tolist(),
            "count": [len(x)]}


def export(episodes, out: str | Path, fps: float = 20.0) -> dict:
    """Write ``episodes`` (``rla.data.Episode``) under ``out`` in the LeRobotDataset v3.0 layout; returns info.json.

    Raises:
        DatasetError: no episodes, or frame sizes / action sizes / qpos sizes that differ between
            episodes (one dataset has one feature shape).
        FileExistsError: ``out`` exists and is not empty.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rla.data import DatasetError
    from rla.data.tasks import TASKS
    from rla.video import write_mp4

    out = Path(out)
    if not episodes:
        raise DatasetError("no episodes to export")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose a new --out folder")
    for what, shape_of in (("frame size", lambda e: e.frames.shape[1:]), ("action size", lambda e: e.actions.shape[1:]),
                           ("qpos size", lambda e: e.qpos.shape[1:])):
        shapes = {tuple(shape_of(e)) for e in episodes}
        if len(shapes) > 1:
            raise DatasetError(f"episodes differ in {what} ({sorted(shapes)}); export one recording setup at a time "
                               "(--tasks) or re-record at one --size")
    short = [e for e in episodes if e.num_steps < 1]
    if short:
        raise DatasetError(f"{short[0].source}: episode {short[0].episode_id} has no actions")
    height, width, _ = episodes[0].frames.shape[1:]
    action_dim, state_dim = episodes[0].actions.shape[1], episodes[0].qpos.shape[1]
    texts = list(dict.fromkeys(task_text(e.task) for e in episodes))  # first-seen order
    task_index = {t: i for i, t in enumerate(texts)}

    (out / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    (out / "data" / "chunk-000").mkdir(parents=True)
    columns = {k: [] for k in ("observation.state", "action", "timestamp", "frame_index", "episode_index", "index",
                               "task_index", "next.success", "next.done")}
    rows, codecs, start = [], set(), 0
    for i, ep in enumerate(episodes):
        T = ep.num_steps
        chunk, file = divmod(i, CHUNKS_SIZE)
        video = out / VIDEO_PATH.format(video_key=VIDEO_KEY, chunk_index=chunk, file_index=file)
        video.parent.mkdir(parents=True, exist_ok=True)
        codecs.add(write_mp4(list(ep.frames[:T]), video, fps=fps))
        columns["observation.state"] += list(ep.qpos[:T].astype(np.float32))
        columns["action"] += list(ep.actions.astype(np.float32))
        columns["timestamp"] += list(np.arange(T, dtype=np.float32) / np.float32(fps))
        columns["frame_index"] += range(T)
        columns["episode_index"] += [i] * T
        columns["index"] += range(start, start + T)
        columns["task_index"] += [task_index[task_text(ep.task)]] * T
        columns["next.success"] += list(np.asarray(ep.success, bool))
        columns["next.done"] += [False] * (T - 1) + [True]
        rows.append({
            "episode_index": i, "tasks": [task_text(ep.task)], "length": T,
            "data/chunk_index": 0, "data/file_index": 0, "dataset_from_index": start, "dataset_to_index": start + T,
            f"videos/{VIDEO_KEY}/chunk_index": chunk, f"videos/{VIDEO_KEY}/file_index": file,
            f"videos/{VIDEO_KEY}/from_timestamp": 0.0, f"videos/{VIDEO_KEY}/to_timestamp": T / fps,
            "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
            "rla/task": ep.task, "rla/episode_id": ep.episode_id, "rla/seed": ep.seed, "rla/succeeded": ep.succeeded,
            "rla/control_mode": ep.control_mode, "rla/source": Path(ep.source).name,
        })
        start += T

    vector = lambda dim: pa.list_(pa.float32(), dim)  # noqa: E731  fixed-size float32 vector
    data_schema = pa.schema([("observation.state", vector(state_dim)), ("action", vector(action_dim)),
                             ("timestamp", pa.float32()), ("frame_index", pa.int64()), ("episode_index", pa.int64()),
                             ("index", pa.int64()), ("task_index", pa.int64()), ("next.success", pa.bool_()),
                             ("next.done", pa.bool_())])
    pq.write_table(pa.table(columns, schema=data_schema), out / DATA_PATH.format(chunk_index=0, file_index=0))
    pq.write_table(pa.Table.from_pylist(rows), out / EPISODES_PATH.format(chunk_index=0, file_index=0))
    pd.DataFrame({"task_index": range(len(texts))}, index=pd.Index(texts, name="task")).to_parquet(out / "meta" / "tasks.parquet")

    robots = {getattr(TASKS.get(e.task), "robot", None) for e in episodes}
    scalar = lambda dtype: {"dtype": dtype, "shape": [1], "names": None}  # noqa: E731
    codec = "/".join(sorted(CODEC_NAMES.get(c, c) for c in codecs))
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robots.pop() if len(robots) == 1 else None,  # ManiSkill robot uid, e.g. "panda"
        "total_episodes": len(episodes),
        "total_frames": start,
        "total_tasks": len(texts),
        "chunks_size": CHUNKS_SIZE,
        "fps": fps,
        "splits": {"train": f"0:{len(episodes)}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH,
        "features": {
            VIDEO_KEY: {"dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"],
                        "info": {"video.height": height, "video.width": width, "video.codec": codec, "video.fps": fps,
                                 "video.channels": 3, "video.is_depth_map": False, "has_audio": False}},
            "observation.state": {"dtype": "float32", "shape": [state_dim], "names": [f"qpos_{j}" for j in range(state_dim)]},
            "action": {"dtype": "float32", "shape": [action_dim],
                       "names": action_names(episodes[0].control_mode, action_dim)},
            "timestamp": scalar("float32"), "frame_index": scalar("int64"), "episode_index": scalar("int64"),
            "index": scalar("int64"), "task_index": scalar("int64"),
            "next.success": scalar("bool"), "next.done": scalar("bool"),
        },
    }
    (out / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    stats = {"action": _stats(np.stack(columns["action"])), "observation.state": _stats(np.stack(columns["observation.state"]))}
    (out / "meta" / "stats.json").write_text(json.dumps(stats, indent=2))
    return info


def main(argv=None) -> dict:
    from rla.data import load_episodes
    from training.common import check_one_action_space

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", required=True, help="recorded .h5 files or folders of them")
    parser.add_argument("--out", required=True, type=Path, help="new (or empty) output folder")
    parser.add_argument("--tasks", nargs="+", default=None, help="export only these tasks (e.g. the tasks of one robot)")
    parser.add_argument("--fps", type=float, default=20.0, help="frames per second: the control frequency (ManiSkill: 20)")
    args = parser.parse_args(argv)
    if args.fps <= 0:
        parser.error(f"--fps must be positive, got {args.fps}")
    episodes = load_episodes(args.data)
    if args.tasks:
        episodes = [ep for ep in episodes if ep.task in set(args.tasks)]
    check_one_action_space(episodes)
    info = export(episodes, args.out, fps=args.fps)
    print(f"{info['total_episodes']} episodes, {info['total_frames']} frames, {info['total_tasks']} tasks -> {args.out}")
    return info


if __name__ == "__main__":
    from training.common import cli

    cli(main)
