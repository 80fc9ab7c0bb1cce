import re
from pathlib import Path

import pytest

from rla.data import DatasetError, Splits, check_seeds
from rla.data.splits import SEED_RANGES
from tests.data.conftest import make_episode

DOC = Path(__file__).parents[2] / "docs" / "data.md"


def test_seed_ranges_are_disjoint_and_match_the_docs_table():
    ranges = sorted(SEED_RANGES.values())
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:]))
    rows = dict(re.findall(r"^\| `(\w+)` \| (\d+–\d+) \|", DOC.read_text(), flags=re.M))
    assert rows == {k: f"{a}–{b - 1}" for k, (a, b) in SEED_RANGES.items()}


def test_seeds_outside_their_range_are_refused():
    check_seeds("wm_test", 20_000, 20)
    with pytest.raises(ValueError, match="outside the range reserved for wm_test"):
        check_seeds("wm_test", 20_990, 20)
    with pytest.raises(ValueError, match="unknown seed purpose"):
        check_seeds("holdout", 0, 1)


def test_splits_are_disjoint_select_what_they_list_and_round_trip(tmp_path):
    eps = [make_episode(5, task="T", name=f"T/{name}", index=i) for name in ("clean", "test") for i in range(2)]
    splits = Splits.from_roles({"train": eps[:2], "test": eps[2:]})
    assert [e.episode_id for e in splits.select(eps, "test")] == ["T/test/traj_0", "T/test/traj_1"]
    splits.save(tmp_path / "s.json")
    assert Splits.load(tmp_path / "s.json") == splits
    with pytest.raises(ValueError, match="in both the train and the test split"):
        Splits(train=["a"], test=["a"])
    with pytest.raises(DatasetError, match="does not hold"):
        splits.select(eps[:2], "test")
    with pytest.raises(DatasetError, match="no such splits file"):
        Splits.load(tmp_path / "missing.json")
