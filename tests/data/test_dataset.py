"""rla.data.dataset: split, training pairs and evaluation chunks (synthetic episodes, no sim)."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from rla.data import ChunkEvalSet, DatasetError, PairDataset, split_episodes
from tests.data.conftest import make_episode


# ----------------------------------------------------------------------------- split
def test_split_is_disjoint_complete_and_stratified(synthetic):
    train, val = split_episodes(synthetic, val_fraction=0.25)
    ids_t, ids_v = {e.episode_id for e in train}, {e.episode_id for e in val}
    assert not ids_t & ids_v and ids_t | ids_v == {e.episode_id for e in synthetic}
    assert sum(e.task == "PullCube" for e in val) == 2 and sum(e.task == "PokeCube" for e in val) == 1


def test_split_is_deterministic_and_order_independent(synthetic):
    _, val = split_episodes(synthetic, 0.25, seed=0)
    shuffled = synthetic[:]
    random.Random(1).shuffle(shuffled)
    _, val2 = split_episodes(shuffled, 0.25, seed=0)
    assert {e.episode_id for e in val} == {e.episode_id for e in val2}
    splits = {frozenset(e.episode_id for e in split_episodes(synthetic, 0.25, seed=s)[1]) for s in range(6)}
    assert len(splits) > 1  # the seed matters


def test_split_edge_cases(synthetic):
    assert split_episodes(synthetic, 0.0)[1] == []
    assert len(split_episodes(synthetic[:2], 0.01)[1]) == 1  # at least one per task with >= 2 episodes
    with pytest.raises(ValueError, match="val_fraction"):
        split_episodes(synthetic, 1.0)


# ----------------------------------------------------------------------------- pairs
def test_pair_items_match_the_episode(synthetic):
    eps = [e for e in synthetic if e.task == "PullCube"]
    ds = PairDataset(eps, k_range=(2, 5), seed=0)
    assert len(ds) == sum(e.num_steps - 2 + 1 for e in eps)
    ks = set()
    for i in range(0, len(ds), 7):
        it = ds[i]
        e = next(x for x in eps if x.episode_id == it["episode_id"])
        t, k = it["t"], it["k"]
        ks.add(k)
        assert 2 <= k <= 5 and t + k <= e.num_steps
        assert it["frame_t"].dtype == torch.uint8 and it["frame_t"].shape == (16, 16, 3)
        assert torch.equal(it["frame_t"], torch.from_numpy(e.frames[t]))
        assert torch.equal(it["frame_k"], torch.from_numpy(e.frames[t + k]))
        assert it["actions"].shape == (k, 4) and torch.equal(it["actions"], torch.from_numpy(e.actions[t:t + k]))
        assert torch.equal(it["qpos_t"], torch.from_numpy(e.qpos[t]))
        assert it["success"] == bool(e.success[t + k - 1]) and it["task"] == "PullCube"
    assert ks == {2, 3, 4, 5}


def test_pair_horizons_are_reproducible_and_redrawn_per_epoch(synthetic):
    a, b = PairDataset(synthetic[:8], seed=1), PairDataset(synthetic[:8], seed=1)
    ka = [a[i]["k"] for i in range(50)]
    assert ka == [b[i]["k"] for i in range(50)]
    a.set_epoch(1)
    assert ka != [a[i]["k"] for i in range(50)]


def test_pair_rejects_short_episodes_and_mixed_action_spaces(synthetic):
    with pytest.raises(DatasetError, match=r"pull.h5: episode pull/traj_0 has 20 steps, shorter than .* k=25"):
        PairDataset(synthetic, k_range=(25, 30))
    stick = make_episode(20, "PushT", A=3, name="t")
    with pytest.raises(DatasetError, match="mix frame sizes / action spaces"):
        PairDataset(synthetic + [stick])


def test_pair_tokens_replace_frames(synthetic):
    eps = synthetic[:3]
    tokens = [torch.arange(e.num_steps + 1, dtype=torch.float32)[:, None, None].expand(-1, 4, 2).clone() for e in eps]
    ds = PairDataset(eps, tokens=tokens)
    it = ds[3]
    assert "frame_t" not in it and it["z_t"].shape == (4, 2)
    assert it["z_t"][0, 0] == it["t"] and it["z_k"][0, 0] == it["t"] + it["k"]
    with pytest.raises(ValueError, match="expected"):
        PairDataset(eps, tokens=[t[:-1] for t in tokens])


def test_sample_batch_shares_one_k(synthetic):
    ds = PairDataset(synthetic, k_range=(1, 15))
    g = torch.Generator().manual_seed(0)
    b = ds.sample_batch(16, generator=g)
    k = b["k"]
    assert b["actions"].shape == (16, k, 4) and b["frame_t"].shape == (16, 16, 16, 3)
    assert b["qpos_t"].shape == (16, 9) and b["success"].shape == (16,) and len(b["episode_id"]) == 16
    for j in range(16):  # frame_k really is k steps later (channel 0 encodes the frame index)
        assert int(b["frame_k"][j, 0, 0, 0]) - int(b["frame_t"][j, 0, 0, 0]) == k
    b30 = ds.sample_batch(8, k=30, generator=g)  # only the PokeCube episodes (T=40) fit
    assert b30["actions"].shape[1] == 30 and set(b30["task"]) == {"PokeCube"}
    again = ds.sample_batch(16, generator=torch.Generator().manual_seed(0))
    assert again["episode_id"] == b["episode_id"] and torch.equal(again["t"], b["t"])
    with pytest.raises(DatasetError, match="no episode has 50 steps"):
        ds.sample_batch(4, k=50)


# ----------------------------------------------------------------------------- eval chunks
def test_chunk_eval_items(synthetic):
    eps = [e for e in synthetic if e.task == "PokeCube"]
    ev = ChunkEvalSet(eps, num_chunks=3, chunk=10, start=5)
    it = ev[1]
    e = eps[1]
    assert it["t0"] == 5 and it["frame_0"].shape == (16, 16, 3)
    assert it["actions"].shape == (3, 10, 4)
    assert torch.equal(it["actions"].reshape(30, 4), torch.from_numpy(e.actions[5:35]))
    assert [int(f[0, 0, 0]) for f in it["frames"]] == [15, 25, 35]
    assert it["foreground"].shape == (3, 16, 16) and it["foreground"].dtype == torch.bool


def test_chunk_eval_random_start_is_reproducible(synthetic):
    eps = [e for e in synthetic if e.task == "PokeCube"]
    a = ChunkEvalSet(eps, start="random", seed=0)
    b = ChunkEvalSet(eps[::-1], start="random", seed=0)
    assert {e.episode_id: s for e, s in zip(a.episodes, a.starts)} == {e.episode_id: s for e, s in zip(b.episodes, b.starts)}
    assert all(0 <= s <= 10 for s in a.starts) and len(set(a.starts)) > 1


def test_chunk_eval_rejects_short_episodes(synthetic):
    with pytest.raises(DatasetError, match=r"episode pull/traj_0 has 20 steps; evaluation from t0=0 needs 30"):
        ChunkEvalSet(synthetic, num_chunks=3, chunk=10)
    with pytest.raises(ValueError, match="start"):
        ChunkEvalSet(synthetic, start="middle")


def test_focused_sampling_draws_the_weighted_starts(synthetic):
    from rla.data.interaction import interaction_frames, near_interaction

    pairs = PairDataset(synthetic, k_range=(2, 2))
    weights = [np.zeros(e.num_steps + 1) for e in synthetic]
    weights[1][3] = 1.0  # one start only
    pairs.set_focus(weights, fraction=1.0)
    b = pairs.sample_batch(64, generator=torch.Generator().manual_seed(0))
    assert set(b["episode_id"]) == {synthetic[1].episode_id} and set(b["t"].tolist()) == {3}
    pairs.set_focus(weights, fraction=0.5)
    b = pairs.sample_batch(400, generator=torch.Generator().manual_seed(0))
    focused = np.mean([(e == synthetic[1].episode_id and t == 3) for e, t in zip(b["episode_id"], b["t"].tolist())])
    assert 0.4 < focused < 0.65
    # interaction: the object moves at frame 5, the gripper touches it at 8
    obj = np.zeros((11, 3))
    obj[6:] = 0.01
    tcp = np.full((11, 3), 1.0)
    tcp[8] = obj[8]
    frames = interaction_frames(tcp, obj)
    assert frames.tolist() == [i in (5, 8) for i in range(11)]
    assert near_interaction(frames, 2).tolist() == [i in (3, 4, 5, 6, 7, 8) for i in range(11)]
