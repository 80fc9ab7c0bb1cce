"""training.publish: a complete model card, and no upload of a pack that does not load or has broken files."""
import json
import shutil
import sys
from pathlib import Path

import huggingface_hub
import pytest
from huggingface_hub import ModelCard

from rla import ModelPack
from rla.pack import PackError
from tests.app.tiny import build_tiny_pack
from tests.rla.test_checkpoints import _tiny_pack
from training import publish

CI = {"token_l1_moving": {"mean": 0.1234, "low": 0.1111, "high": 0.1357}}
EVALUATION = {"protocol": {"num_chunks": 3, "chunk": 10, "split": "test", "windows": 12, "reported": "rla@10",
                           "episode_ids": ["PushCube/test/traj_0", "PushCube/test/traj_1"],
                           "command": "python -m training.evaluate --pack p --data d --out e.json"},
              "methods": {"rla@10": {"ci": CI, "training_seeds": [0], "cost": {"gflops": 0.25, "ms_median": 4.0}},
                          "regression": {"ci": {"token_l1_moving": {"mean": 0.2, "low": 0.18, "high": 0.22}},
                                         "training_seeds": [0], "cost": {"gflops": 0.1, "ms_median": 1.0}}}}


@pytest.fixture(scope="module")
def tiny_pack_dir(tmp_path_factory):
    return build_tiny_pack(tmp_path_factory.mktemp("pack") / "pack", train_steps=2)


def _copy(src: Path, dst: Path) -> Path:
    return Path(shutil.copytree(src, dst))


@pytest.fixture
def no_hub(monkeypatch):
    """Replaces HfApi: records every call instead of contacting the Hub."""
    calls = []

    class FakeApi:
        def __init__(self, *args, **kwargs):
            calls.append(("HfApi", kwargs))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    return calls


def test_model_card_and_layout_offline(tmp_path):
    _tiny_pack().save(tmp_path / "pack")
    files = publish.main(["--pack", str(tmp_path / "pack"), "--repo-id", "someone/rla-pack", "--dry-run"])
    names = {str(f) for f in files}
    assert {"pack.json", "README.md", "autoencoder/model.safetensors", "autoencoder/config.json",
            "dynamics/model.safetensors", "regression/config.json", "latent_map.npz"} <= names
    card = (tmp_path / "pack" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: pytorch")
    assert 'ModelPack.load("someone/rla-pack")' in card and "pixel patches (16 px, 4 px patches" in card
    assert "`autoencoder/`" in card and "`regression/`" in card


def test_card_has_paper_data_budget_evaluation_and_licence(tmp_path, tiny_pack_dir, no_hub):
    pack_dir = _copy(tiny_pack_dir, tmp_path / "pack")
    info = json.loads((pack_dir / "pack.json").read_text())
    info["splits"] = {"train": ["PushCube/clean/traj_0", "PushCube/clean/traj_1", "PullCube/clean/traj_0"],
                      "val": ["PushCube/val/traj_0"], "test": ["PushCube/test/traj_0", "PushCube/test/traj_1"],
                      "recordings": [{"split": "train", "task": "PushCube", "file": "PushCube/clean.h5", "seeds": [0, 1],
                                      "episodes": 2, "noise": 0.0}]}
    info["preset"] = {"model": "tiny"}
    info["manifest"] = {"seed": 0, "models": {
        "autoencoder": {"steps": 1500, "cpu_seconds": 321.5, "batch_size": 32, "ema": 0.0, "sha256": "ab" * 32},
        "dynamics": {"steps": 2500, "cpu_seconds": 654.0, "batch_size": 32, "ema": 0.999, "sha256": "cd" * 32}}}
    (pack_dir / "pack.json").write_text(json.dumps(info))
    (pack_dir / "results.json").write_text(json.dumps({"evaluation": EVALUATION}))

    files = publish.main(["--pack", str(pack_dir), "--repo-id", "someone/rla-pack"])
    card = (pack_dir / "README.md").read_text()
    meta = ModelCard(card).data.to_dict()
    assert meta["license"] == "mit" and {"world-model", "robotics", "rla-explorer"} <= set(meta["tags"])
    assert "More Information Needed" not in card
    assert "Learning Visual Feature-Based World Models via Residual Latent Action" in card and "arxiv.org/abs/2605.07079" in card
    assert "Zhang, Xu, Tao, Wang, She, Boularias" in card and "https://github.com/mlzxy/rla-wm" in card
    assert "| train | 3 | 1 | 2 |" in card and "| test | 2 | 0 | 2 |" in card  # columns: total, PullCube, PushCube
    assert "| `PushCube/clean.h5` | train | PushCube | 2 | 0–1 | 0.0 |" in card
    assert "| autoencoder | 1,500 | 322 | 32 | 0.0 | `abababababab` |" in card and "| dynamics | 2,500 | 654 |" in card
    assert "0.1234 [0.1111, 0.1357]" in card and "**rla@10** (reported)" in card and "95 % confidence intervals" in card
    assert "2 held-out `test` episodes, 12 windows" in card and "python -m training.evaluate --pack p" in card
    params = sum(p.numel() for p in ModelPack.load(pack_dir).dynamics.parameters())
    assert f"| `dynamics/` | `LatentFlow` | {params:,} |" in card
    # checked, then uploaded: exactly the checked files
    assert [c[0] for c in no_hub] == ["HfApi", "create_repo", "upload_folder"]
    assert no_hub[2][1]["allow_patterns"] == [str(f) for f in files] and "results.json" in no_hub[2][1]["allow_patterns"]


def test_card_says_plainly_when_there_is_no_evaluation_split_or_budget(tmp_path, tiny_pack_dir):
    pack_dir = _copy(tiny_pack_dir, tmp_path / "pack")
    publish.main(["--pack", str(pack_dir), "--repo-id", "someone/rla-pack", "--dry-run"])
    card = (pack_dir / "README.md").read_text()
    assert "**Not evaluated.**" in card and "no quality claim" in card
    assert "records no train/val/test split" in card and "records no training manifest" in card
    old_format = {"evaluation": {"protocol": {}, "methods": {"rla@10": {"final": {"token_l1": 0.1}}}}}  # no "ci"
    (pack_dir / "results.json").write_text(json.dumps(old_format))
    publish.main(["--pack", str(pack_dir), "--repo-id", "someone/rla-pack", "--dry-run"])
    assert "**No confidence intervals.**" in (pack_dir / "README.md").read_text()


@pytest.mark.parametrize("breakage, message", [
    (lambda d: (d / "dynamics" / "model.safetensors").write_bytes(b"\x00" * 7), "does not load with ModelPack.load"),
    (lambda d: (d / "autoencoder" / "config.json").unlink(), "does not load with ModelPack.load"),
    (lambda d: (d / "pack.json").write_text("{"), "does not load with ModelPack.load"),
    (lambda d: (d / "evaluation.json").write_text("{not json"), "evaluation.json: not valid JSON"),
    (lambda d: (d / "token_flow" / "config.json").rename(d / "token_flow" / "config.bak"), "does not load"),
])
def test_a_broken_pack_is_refused_before_any_hub_call(tmp_path, tiny_pack_dir, no_hub, breakage, message):
    pack_dir = _copy(tiny_pack_dir, tmp_path / "pack")
    breakage(pack_dir)
    with pytest.raises(PackError, match=message) as err:
        publish.main(["--pack", str(pack_dir), "--repo-id", "someone/rla-pack"])
    assert "refusing to publish" in str(err.value)
    assert no_hub == []  # HfApi was never even constructed


def test_an_incomplete_card_is_refused(tmp_path, tiny_pack_dir, no_hub, monkeypatch):
    pack_dir = _copy(tiny_pack_dir, tmp_path / "pack")
    monkeypatch.setattr(publish, "model_card", lambda pack, repo_id: "---\nlicense: mit\n---\n# x\n\nMore Information Needed\n")
    with pytest.raises(PackError) as err:
        publish.main(["--pack", str(pack_dir), "--repo-id", "someone/rla-pack"])
    text = str(err.value)
    assert "section '## Evaluation' is missing" in text and "'More Information Needed'" in text and "library_name" in text
    assert no_hub == []


def test_cli_prints_the_refusal_and_exits_2(tmp_path, tiny_pack_dir, no_hub, monkeypatch, capsys):
    from training.common import cli

    pack_dir = _copy(tiny_pack_dir, tmp_path / "pack")
    (pack_dir / "dynamics" / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(sys, "argv", ["publish", "--pack", str(pack_dir), "--repo-id", "someone/rla-pack"])
    with pytest.raises(SystemExit) as exit_:
        cli(publish.main)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "refusing to publish" in err and "Traceback" not in err and no_hub == []
