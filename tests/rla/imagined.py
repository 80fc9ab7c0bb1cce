"""Fixtures shared by the imagined-env and WMRL tests: a tiny pack and its successful synthetic recordings."""
from __future__ import annotations

import pytest

from rla.imagined_env import recordings_from_episodes
from tests.app.tiny import build_tiny_pack, synthetic_episodes

E = 4  # actions per imagined step on the tiny pack (its chunk is 5)


@pytest.fixture(scope="module")
def pack_dir(tmp_path_factory, one_thread):
    return build_tiny_pack(tmp_path_factory.mktemp("pack") / "tiny", train_steps=10)


@pytest.fixture(scope="module")
def pack(pack_dir):
    from rla import ModelPack

    return ModelPack.load(pack_dir)


@pytest.fixture(scope="module")
def recs(pack):
    """The 3 successful episodes of 6 (20 actions each), as recordings."""
    return recordings_from_episodes(synthetic_episodes(n=6, steps=20, seed=1), pack)
