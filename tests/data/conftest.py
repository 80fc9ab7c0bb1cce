"""Fixtures for rla.data / training.collect tests: a tiny real recording and synthetic episodes."""
from __future__ import annotations

import numpy as np
import pytest

from rla.data import Episode

RECORD_STEPS = 12
RECORD_SIZE = 64


@pytest.fixture(scope="session")
def recorded_dir(tmp_path_factory):
    """2 short episodes each of PullCube and PokeCube, recorded with the real CPU renderer."""
    from training.collect import CollectConfig, collect

    out = tmp_path_factory.mktemp("recorded")
    results = {}
    for task in ("PullCube", "PokeCube"):
        cfg = CollectConfig(task=task, episodes=2, out=out, steps=RECORD_STEPS, size=RECORD_SIZE, seed=3,
                            progress=False)
        results[task] = collect(cfg)
    return out, results


def make_episode(T: int = 20, task: str = "PullCube", A: int = 4, size: int = 16, J: int = 9, name: str = "synth",
                 index: int = 0, seed: int = 0) -> Episode:
    """A random but well-formed episode; frame t has every pixel equal to t (mod 256) in channel 0."""
    rng = np.random.default_rng(seed + index)
    frames = rng.integers(0, 256, (T + 1, size, size, 3), dtype=np.uint8)
    frames[..., 0] = (np.arange(T + 1) % 256)[:, None, None]
    return Episode(
        frames=frames,
        actions=rng.uniform(-1, 1, (T, A)).astype(np.float32),
        qpos=rng.normal(size=(T + 1, J)).astype(np.float32),
        success=np.arange(T) >= T - 3,
        foreground=rng.random((T + 1, size, size)) < 0.3,
        task=task,
        episode_id=f"{name}/traj_{index}",
        control_mode="pd_ee_delta_pos",
        source=f"{name}.h5",
    )


@pytest.fixture
def synthetic():
    """12 episodes: 8 PullCube (T=20) and 4 PokeCube (T=40)."""
    return [make_episode(20, "PullCube", name="pull", index=i) for i in range(8)] + \
        [make_episode(40, "PokeCube", name="poke", index=i) for i in range(4)]
