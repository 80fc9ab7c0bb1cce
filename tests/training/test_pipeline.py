"""The whole chain on the tiny preset: collect (real renderer) → train → pack → evaluate."""
import json
import re

import pytest

from rla import ModelPack


@pytest.mark.slow
def test_tiny_pipeline_builds_a_working_pack(tmp_path, monkeypatch):
    monkeypatch.setenv("RLA_CACHE", str(tmp_path / "cache"))
    import training.common

    monkeypatch.setattr(training.common, "DEFAULT_CACHE", tmp_path / "cache")
    from training import pipeline

    pipeline.main(["--preset", "tiny", "--out", str(tmp_path / "pack"), "--data", str(tmp_path / "data"),
                   "--work", str(tmp_path / "work"), "--results", str(tmp_path / "docs" / "results.md")])
    pack = ModelPack.load(tmp_path / "pack")
    assert set(pack.world_models()) == {"rla", "regression", "token_flow"}
    assert pack.latent_map is not None and len(pack.latent_map.coords) == 60
    # the split is recorded, disjoint, and the test episodes are the fresh test recording
    splits = pack.splits
    assert splits.test == ["PushCube/test/traj_0"] and splits.val == ["PushCube/val/traj_0"]
    assert not set(splits.train) & set(splits.test) and len(splits.train) == 4
    assert {r["purpose"] for r in splits.recordings} >= {"wm_train_clean", "wm_val", "wm_test"}
    models = pack.info.manifest["models"]
    assert set(models) == {"autoencoder", "dynamics", "regression", "token_flow", "regression_matched"}
    assert all(len(m["sha256"]) == 64 and m["cpu_seconds"] > 0 for m in models.values())
    assert pack.info.preset["model"] == "tiny" and pack.info.preset["dynamics_steps"] == 20
    results = json.loads((tmp_path / "work" / "evaluation.json").read_text())
    assert results["protocol"]["split"] == "test" and results["protocol"]["episode_ids"] == splits.test
    assert results["protocol"]["windows"] == 3  # 50 steps, windows of 30 at stride 10
    assert {"rla@1", "rla@30", "rla@10 zero", "rla@10 mean8", "regression", "regression_matched", "token_flow", "copy"} <= set(results["methods"])
    assert results["methods"]["rla@10"]["cost"]["gflops"] > 0
    comparison = results["comparisons"]["rla@10 mean8 − regression"]["token_l1_moving"]  # the reported row of the preset
    assert comparison["verdict"].startswith("no verdict")  # one test episode: no interval, no claim
    stored = json.loads((tmp_path / "pack" / "results.json").read_text())["evaluation"]
    assert "per_window" not in stored["methods"]["regression"] and stored["protocol"]["split"] == "test"
    table = (tmp_path / "docs" / "results.md").read_text()
    assert table.startswith("Command: `python -m training.evaluate") and "| rla@30 (1 seed) |" in table
    assert (tmp_path / "docs" / "properties.md").exists()
    timing = (tmp_path / "docs" / "timing.md").read_text()
    assert re.search(r"\| collect PushCube_clean \| \d+ frames \|", timing) and "| train rla0 | 20 |" in timing and "not yet trained" not in timing
    # a second run finds every stage done and trains nothing; a pack folder's files from another pack are not kept
    (tmp_path / "pack2").mkdir()
    (tmp_path / "pack2" / "probes.npz").write_bytes(b"from another pack")
    logs = sorted((tmp_path / "work" / "logs").iterdir())
    mtimes = [p.stat().st_mtime for p in logs]
    pipeline.main(["--preset", "tiny", "--out", str(tmp_path / "pack2"), "--data", str(tmp_path / "data"),
                   "--work", str(tmp_path / "work"), "--results", str(tmp_path / "docs" / "results.md")])
    assert [p.stat().st_mtime for p in logs] == mtimes
    stale = tmp_path / "pack2" / "probes.npz"
    assert not stale.exists() or stale.read_bytes() != b"from another pack"  # removed, or refitted by the properties stage


def test_mixed_action_spaces_are_refused_with_a_clear_message():
    from types import SimpleNamespace

    import numpy as np

    from training.common import check_one_action_space

    eps = [SimpleNamespace(task="PushCube", actions=np.zeros((5, 4))), SimpleNamespace(task="PushT", actions=np.zeros((5, 3)))]
    with pytest.raises(SystemExit, match="3-D actions: PushT; 4-D actions: PushCube.*--tasks"):
        check_one_action_space(eps)
    check_one_action_space(eps[:1])  # one action space is fine


def test_later_seeds_are_scored_at_the_reported_steps():
    from dataclasses import replace

    from training.pipeline import PRESETS, later_seed_steps

    cpu = PRESETS["cpu"]
    assert later_seed_steps(replace(cpu, reported="rla@3 mean8")) == ["--later-seed-steps", "3"]
    assert later_seed_steps(replace(cpu, reported="rla@3 mean8", sweep_all_seeds=True)) == []
    with pytest.raises(ValueError, match="rla@<steps>"):
        later_seed_steps(replace(cpu, reported="regression"))


def test_long_jobs_start_first_and_dependencies_come_before_their_users(tmp_path):
    from training.pipeline import PRESETS, jobs_for

    names = [j.name for j in jobs_for(PRESETS["cpu"], tmp_path)]
    assert names[:3] == ["autoencoder0", "autoencoder1", "autoencoder2"]
    assert names.index("regression_matched") < names.index("regression1")  # the longest dynamics-stage job early
    position = {n: i for i, n in enumerate(names)}
    for job in jobs_for(PRESETS["cpu"], tmp_path):
        assert all(position[d] < position[job.name] for d in job.deps), job.name
