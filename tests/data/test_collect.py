"""training.collect: real recordings with the CPU renderer (ManiSkill + lavapipe)."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from tests.data.conftest import RECORD_SIZE, RECORD_STEPS
from training.collect import CollectConfig, collect, parse_args


def test_collect_writes_maniskill_files_with_rla_metadata(recorded_dir):
    out, results = recorded_dir
    for task, res in results.items():
        assert res.h5_path.is_file() and res.json_path.is_file()
        assert res.episodes == 2 and res.frames == 2 * (RECORD_STEPS + 1) and res.fps > 0
        meta = json.loads(res.json_path.read_text())
        rla = meta["rla"]
        assert rla["task"] == task and rla["control_mode"] == "pd_ee_delta_pos"
        assert rla["camera"]["width"] == RECORD_SIZE and len(rla["camera"]["eye"]) == 3
        kinds = {v["kind"] for v in rla["segmentation"].values()}
        assert kinds == {"robot", "object", "static"}
        names = {v["name"] for k, v in rla["segmentation"].items() if int(k) in rla["foreground_ids"]}
        assert "cube" in names and "table-workspace" not in names and "goal_region" not in names
        assert [e["episode_id"] for e in meta["episodes"]] == [0, 1]
        assert all("rla" in e for e in meta["episodes"])
        with h5py.File(res.h5_path) as f:
            assert sorted(f) == ["traj_0", "traj_1"]
            cam = f["traj_0/obs/sensor_data/base_camera"]
            assert cam["rgb"].shape == (RECORD_STEPS + 1, RECORD_SIZE, RECORD_SIZE, 3)
            assert cam["segmentation"].compression == "gzip"  # compact_h5 ran
            assert f["traj_0/actions"].shape == (RECORD_STEPS, 4)
            assert f["traj_0/success"].shape == (RECORD_STEPS,)
            # the two episodes start from different seeds
            assert not np.array_equal(f["traj_0/obs/sensor_data/base_camera/rgb"][0],
                                      f["traj_1/obs/sensor_data/base_camera/rgb"][0])


def test_collect_frames_show_motion_and_actions_are_normalised(recorded_dir):
    _, results = recorded_dir
    with h5py.File(results["PokeCube"].h5_path) as f:
        rgb = f["traj_0/obs/sensor_data/base_camera/rgb"][()]
        actions = f["traj_0/actions"][()]
    assert np.abs(actions).max() <= 1.0 and np.abs(actions[:, :3]).max() > 0.1  # the expert moves the arm
    assert np.abs(rgb[-1].astype(int) - rgb[0].astype(int)).mean() > 0.5  # and the camera sees it


def test_noise_perturbs_actions_but_not_the_initial_state(tmp_path, recorded_dir):
    _, results = recorded_dir
    res = collect(CollectConfig(task="PullCube", episodes=1, out=tmp_path, steps=4, size=RECORD_SIZE, seed=3,
                                noise=0.5, progress=False))
    assert "noise0.5" in res.h5_path.name
    with h5py.File(res.h5_path) as noisy, h5py.File(results["PullCube"].h5_path) as clean:
        np.testing.assert_array_equal(noisy["traj_0/obs/sensor_data/base_camera/rgb"][0],
                                      clean["traj_0/obs/sensor_data/base_camera/rgb"][0])
        assert not np.allclose(noisy["traj_0/actions"][()], clean["traj_0/actions"][:4])


@pytest.mark.parametrize("argv, message", [
    (["--task", "Nope", "--episodes", "1", "--out", "x"], "unknown task"),
    (["--task", "PullCube", "--episodes", "0", "--out", "x"], "episodes must be"),
    (["--task", "PullCube", "--episodes", "1", "--out", "x", "--num-envs", "4"], "--sim-backend gpu"),
    (["--task", "PullCube", "--episodes", "1", "--out", "x", "--noise", "-1"], "noise"),
])
def test_cli_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err


def test_refuses_to_overwrite_a_recording(recorded_dir):
    out, _ = recorded_dir
    with pytest.raises(ValueError, match="PullCube_s3_n2.h5 exists; pass --overwrite"):
        CollectConfig(task="PullCube", episodes=2, out=out, seed=3)
    assert CollectConfig(task="PullCube", episodes=2, out=out, seed=3, overwrite=True).name == "PullCube_s3_n2"


def test_recorded_command_reproduces_the_config(recorded_dir):
    _, results = recorded_dir
    meta = json.loads(results["PokeCube"].json_path.read_text())["rla"]
    argv = meta["command"].split()[3:]
    cfg = parse_args(argv + ["--overwrite"])
    assert (cfg.task, cfg.episodes, cfg.seed, cfg.steps, cfg.size, cfg.name) == ("PokeCube", 2, 3, 12, 64, "PokeCube_s3_n2")


def test_cli_maps_short_and_env_id_names():
    assert parse_args(["--task", "PullCube-v1", "--episodes", "1", "--out", "x"]).task == "PullCube"
    cfg = parse_args(["--task", "play", "--episodes", "3", "--out", "x"])
    assert cfg.steps == 100 and cfg.name == "play_s0_n3"


@pytest.mark.slow  # ManiSkill
def test_pushcube_expert_solves_an_episode(tmp_path):
    res = collect(CollectConfig(task="PushCube", episodes=1, out=tmp_path, size=32, seed=0, progress=False))
    assert res.successes == 1
