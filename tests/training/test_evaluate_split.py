"""training.evaluate scores only the packs' recorded test split, and refuses what it cannot vouch for."""
import pytest

from rla import ModelPack
from rla.data import Splits
from tests.app.tiny import build_tiny_pack, synthetic_episodes
from training.evaluate import eval_items


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    episodes = synthetic_episodes()
    path = build_tiny_pack(tmp_path_factory.mktemp("pack") / "p", episodes, train_steps=2)
    return ModelPack.load(path), episodes


def _with_splits(pack, episodes, test_ids):
    pack.info.splits = Splits(train=[e.episode_id for e in episodes if e.episode_id not in test_ids], test=list(test_ids)).to_dict()
    return pack


def test_only_the_recorded_test_episodes_are_scored(setup):
    pack, episodes = setup
    test_ids = [episodes[0].episode_id]
    items = eval_items([_with_splits(pack, episodes, test_ids)], episodes, "test", num_chunks=1, chunk=4, stride=2)
    assert {it["episode_id"] for it in items} == set(test_ids)
    assert len(items) == (episodes[0].num_steps - 4) // 2 + 1  # every window at the stride


def test_packs_without_a_split_or_with_different_splits_are_refused(setup):
    pack, episodes = setup
    pack.info.splits = {}
    with pytest.raises(SystemExit, match="records no splits"):
        eval_items([pack], episodes, "test", 1, 4, 2)
    a = _with_splits(pack, episodes, [episodes[0].episode_id])
    other = ModelPack(a.info, a.encoder, a.autoencoder, a.dynamics)
    other.info = type(a.info)(**{**a.info.__dict__, "splits": Splits(test=[episodes[1].episode_id]).to_dict()})
    with pytest.raises(SystemExit, match="disagree on the test split"):
        eval_items([a, other], episodes, "test", 1, 4, 2)
