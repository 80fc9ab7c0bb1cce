"""Write synthetic episodes as a recording (h5 + json) that ``rla.data.load_episodes`` reads.

The layout is the one ``training.collect`` gets from ManiSkill's ``RecordEpisode`` (see
``rla/data/episodes.py``), reduced to what the loader reads, so training scripts and exporters can
be tested end to end without the simulator.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from rla.data.tasks import CAMERA_NAME


def write_recording(episodes, path: str | Path, task: str, *, first_seed: int = 0,
                    control_mode: str = "pd_ee_delta_pos") -> Path:
    """Episodes with ``frames (T+1, H, W, 3)``, ``actions (T, A)`` and ``success (T,)`` → ``path`` (.h5)
    and its .json. Episode ``i`` gets reset seed ``first_seed + i``; qpos is zeros when absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    listed = []
    with h5py.File(path, "w") as f:
        for i, ep in enumerate(episodes):
            g = f.create_group(f"traj_{i}")
            g["actions"] = np.asarray(ep.actions, np.float32)
            g["success"] = np.asarray(ep.success, bool)
            qpos = getattr(ep, "qpos", None)
            g["obs/agent/qpos"] = np.zeros((len(ep.frames), 2), np.float32) if qpos is None else np.asarray(qpos, np.float32)
            g[f"obs/sensor_data/{CAMERA_NAME}/rgb"] = np.asarray(ep.frames, np.uint8)
            listed.append({"episode_id": i, "episode_seed": first_seed + i, "control_mode": control_mode,
                           "elapsed_steps": len(ep.actions), "success": bool(np.asarray(ep.success)[-1])})
    meta = {"env_info": {"env_id": f"{task}-v1"}, "episodes": listed, "rla": {"task": task, "control_mode": control_mode}}
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path
