"""The whole chain on the tiny preset: collect (real renderer) → train → pack → evaluate."""
import json

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
    results = json.loads((tmp_path / "pack" / "evaluation.json").read_text())
    assert {"rla@1", "rla@30", "regression", "token_flow", "copy"} <= set(results["methods"])
    assert results["methods"]["rla@10"]["cost"]["gflops"] > 0
    table = (tmp_path / "docs" / "results.md").read_text()
    assert table.startswith("Command: `python -m training.evaluate") and "| rla@30 |" in table
    assert (tmp_path / "docs" / "properties.md").read_text().count("Spearman") == 1
    # a second run finds every stage done and trains nothing
    logs = sorted((tmp_path / "work" / "logs").iterdir())
    mtimes = [p.stat().st_mtime for p in logs]
    pipeline.main(["--preset", "tiny", "--out", str(tmp_path / "pack2"), "--data", str(tmp_path / "data"),
                   "--work", str(tmp_path / "work"), "--results", str(tmp_path / "docs" / "results.md")])
    assert [p.stat().st_mtime for p in logs] == mtimes


def test_mixed_action_spaces_are_refused_with_a_clear_message():
    from types import SimpleNamespace

    import numpy as np

    from training.common import check_one_action_space

    eps = [SimpleNamespace(task="PushCube", actions=np.zeros((5, 4))), SimpleNamespace(task="PushT", actions=np.zeros((5, 3)))]
    with pytest.raises(SystemExit, match="3-D actions: PushT; 4-D actions: PushCube.*--tasks"):
        check_one_action_space(eps)
    check_one_action_space(eps[:1])  # one action space is fine
