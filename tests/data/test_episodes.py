"""rla.data.episodes: loading recorded files and the errors bad data raises."""
from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from rla.data import DatasetError, Episode, load_episodes
from tests.data.conftest import RECORD_SIZE, RECORD_STEPS, make_episode


def test_load_shapes_dtypes_and_ids(recorded_dir):
    out, _ = recorded_dir
    eps = load_episodes(out)
    assert [e.episode_id for e in eps] == ["PokeCube_s3_n2/traj_0", "PokeCube_s3_n2/traj_1",
                                           "PullCube_s3_n2/traj_0", "PullCube_s3_n2/traj_1"]
    for e in eps:
        T = RECORD_STEPS
        assert e.num_steps == T
        assert e.frames.shape == (T + 1, RECORD_SIZE, RECORD_SIZE, 3) and e.frames.dtype == np.uint8
        assert e.actions.shape == (T, 4) and e.actions.dtype == np.float32
        assert e.qpos.shape == (T + 1, 9) and e.qpos.dtype == np.float32
        assert e.success.shape == (T,) and e.success.dtype == bool
        assert e.foreground.shape == (T + 1, RECORD_SIZE, RECORD_SIZE) and e.foreground.dtype == bool
        assert 0.01 < e.foreground.mean() < 0.6  # robot + objects, not the table
        assert e.control_mode == "pd_ee_delta_pos"
    assert {e.task for e in eps} == {"PokeCube", "PullCube"}


def test_load_accepts_files_folders_and_lists(recorded_dir):
    out, results = recorded_dir
    one = load_episodes(results["PullCube"].h5_path)
    both = load_episodes([results["PullCube"].h5_path, str(results["PokeCube"].h5_path)])
    assert [e.episode_id for e in one] == ["PullCube_s3_n2/traj_0", "PullCube_s3_n2/traj_1"]
    assert len(both) == 4
    np.testing.assert_array_equal(one[0].frames, load_episodes(out)[2].frames)


def test_succeeded_is_success_once():
    e = make_episode(10)
    e.success[:] = False
    e.success[4] = True
    assert e.succeeded and not e.success_at_end
    e.success[:] = False
    assert not e.succeeded


@pytest.fixture
def copy_of(recorded_dir, tmp_path):
    """A private copy of the PullCube recording to damage."""
    _, results = recorded_dir
    src = results["PullCube"]
    h5, js = tmp_path / src.h5_path.name, tmp_path / src.json_path.name
    shutil.copy(src.h5_path, h5)
    shutil.copy(src.json_path, js)
    return h5, js


def test_missing_path_names_it(tmp_path):
    with pytest.raises(DatasetError, match="nothing_here.h5: no such file"):
        load_episodes(tmp_path / "nothing_here.h5")
    with pytest.raises(DatasetError, match="no .h5 episode files"):
        load_episodes(tmp_path)


def test_truncated_h5_names_the_file(copy_of):
    h5, _ = copy_of
    data = h5.read_bytes()
    h5.write_bytes(data[: len(data) // 3])
    with pytest.raises(DatasetError, match=rf"{h5.name}.*(truncated|corrupt)"):
        load_episodes(h5)


def test_missing_json_names_the_file(copy_of):
    h5, js = copy_of
    js.unlink()
    with pytest.raises(DatasetError, match=rf"{h5.name}: missing {js.name}"):
        load_episodes(h5)


def test_json_h5_mismatch(copy_of):
    h5, js = copy_of
    meta = json.loads(js.read_text())
    meta["episodes"] = meta["episodes"][:1]
    js.write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=rf"{h5.name}: h5 and json disagree"):
        load_episodes(h5)


def test_missing_camera_lists_the_ones_present(copy_of):
    h5, _ = copy_of
    with pytest.raises(DatasetError, match=r"camera 'hand_camera' not recorded.*base_camera"):
        load_episodes(h5, camera="hand_camera")


def test_inconsistent_lengths_in_file(copy_of):
    h5, _ = copy_of
    with h5py.File(h5, "r+") as f:
        a = f["traj_1/actions"][()]
        del f["traj_1/actions"]
        f["traj_1/actions"] = a[:-2]
    with pytest.raises(DatasetError, match=r"traj_1 has inconsistent lengths"):
        load_episodes(h5)


def test_missing_dataset_in_file(copy_of):
    h5, _ = copy_of
    with h5py.File(h5, "r+") as f:
        del f["traj_0/obs/agent/qpos"]
    with pytest.raises(DatasetError, match=rf"{h5.name}:traj_0: missing dataset"):
        load_episodes(h5)


def test_same_file_names_in_task_folders_get_task_prefixed_ids(recorded_dir, tmp_path):
    _, results = recorded_dir
    for task, res in results.items():
        (tmp_path / task).mkdir()
        shutil.copy(res.h5_path, tmp_path / task / "clean.h5")
        shutil.copy(res.json_path, tmp_path / task / "clean.json")
    ids = [e.episode_id for e in load_episodes(tmp_path)]
    assert ids == ["PokeCube/clean/traj_0", "PokeCube/clean/traj_1", "PullCube/clean/traj_0", "PullCube/clean/traj_1"]


def test_duplicate_ids_are_rejected(recorded_dir, tmp_path):
    _, results = recorded_dir
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copy(results["PullCube"].h5_path, tmp_path / sub)
        shutil.copy(results["PullCube"].json_path, tmp_path / sub)
    with pytest.raises(DatasetError, match="duplicate episode ids"):
        load_episodes(tmp_path)


def test_episode_checks_lengths():
    e = make_episode(5)
    with pytest.raises(DatasetError, match="inconsistent lengths"):
        Episode(e.frames[:-1], e.actions, e.qpos, e.success, None, "PullCube", "x/traj_0", "pd_ee_delta_pos")


def test_shipped_examples_load_and_cover_every_task():
    """assets/examples: 2 episodes per task, each task with a success (play has no goal)."""
    from pathlib import Path

    from rla.data import TASKS

    root = Path(__file__).resolve().parents[2] / "assets" / "examples"
    eps = load_episodes(root)
    by_task = {t: [e for e in eps if e.task == t] for t in TASKS}
    assert all(len(v) == 2 for v in by_task.values()), {t: len(v) for t, v in by_task.items()}
    for task, episodes in by_task.items():
        assert all(e.num_steps == TASKS[task].steps and e.image_size == (128, 128) for e in episodes)
        assert all(e.foreground is not None for e in episodes)
        if task != "play":
            assert any(e.succeeded for e in episodes), task
    assert {e.action_dim for e in by_task["PushT"] + by_task["RollBall"]} == {3}
