"""training.publish: the repo folder and its card come from the files; nothing broken, unloadable or inconsistent is uploaded."""
import json
import shutil
import sys
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard

from rla import ModelPack
from rla.pack import PackError
from rla.policy import Policy, policy_config
from rla.policy.results import KIND, load_result, markdown, summarize
from tests.app.tiny import build_tiny_pack
from tests.rla.test_checkpoints import _tiny_pack
from training import publish

pytestmark = pytest.mark.usefixtures("one_thread")

CI = {"token_l1_moving": {"mean": 0.1234, "low": 0.1111, "high": 0.1357}}
EVALUATION = {"protocol": {"num_chunks": 3, "chunk": 10, "split": "test", "windows": 12, "reported": "rla@10",
                           "episode_ids": ["PushCube/test/traj_0", "PushCube/test/traj_1"],
                           "command": "python -m training.evaluate --pack p --data d --out e.json"},
              "methods": {"rla@10": {"ci": CI, "training_seeds": [0, 1], "cost": {"gflops": 0.25, "ms_median": 4.0}},
                          "regression": {"ci": {"token_l1_moving": {"mean": 0.2, "low": 0.18, "high": 0.22}},
                                         "training_seeds": [0], "cost": {"gflops": 0.1, "ms_median": 1.0}}},
              "comparisons": {"rla@10 − regression": {"token_l1_moving": {"mean": -0.0766, "low": -0.09, "high": -0.06,
                                                                          "verdict": "rla@10 beats regression"}}}}
AE_SHA = "ab" * 32


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


def _run(*args) -> list[Path]:
    return publish.main([str(a) for a in args])


# ---- a model pack -----------------------------------------------------------------------------------

def test_model_card_and_layout_offline(tmp_path):
    _tiny_pack().save(tmp_path / "pack")
    files = _run("--pack", tmp_path / "pack", "--repo-id", "someone/rla-pack", "--dry-run", "--out", tmp_path / "repo")
    names = {str(f) for f in files}
    assert {"pack.json", "README.md", "autoencoder/model.safetensors", "autoencoder/config.json",
            "dynamics/model.safetensors", "regression/config.json", "latent_map.npz"} <= names
    assert sorted(p.relative_to(tmp_path / "repo") for p in (tmp_path / "repo").rglob("*") if p.is_file() and p.name != publish.MARKER) == files
    assert not (tmp_path / "pack" / "README.md").exists()  # the pack folder itself is left as it was
    card = (tmp_path / "repo" / "README.md").read_text()
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
        "dynamics": {"steps": 2500, "cpu_seconds": 654.0, "batch_size": 32, "ema": 0.999, "sha256": "cd" * 32},
        "regression_matched": {"steps": 4000, "cpu_seconds": 900.0, "batch_size": 32, "ema": 0.0, "sha256": "ef" * 32}}}
    (pack_dir / "pack.json").write_text(json.dumps(info))
    (pack_dir / "results.json").write_text(json.dumps({"evaluation": EVALUATION}))

    out = tmp_path / "repo"
    files = _run("--pack", pack_dir, "--repo-id", "someone/rla-pack", "--out", out)
    card = (out / "README.md").read_text()
    meta = ModelCard(card).data.to_dict()
    assert meta["license"] == "mit" and {"world-model", "robotics", "rla-explorer"} <= set(meta["tags"])
    assert "More Information Needed" not in card
    assert "Learning Visual Feature-Based World Models via Residual Latent Action" in card and "arxiv.org/abs/2605.07079" in card
    assert "Zhang, Xu, Tao, Wang, She, Boularias" in card and "https://github.com/mlzxy/rla-wm" in card
    assert "| train | 3 | 1 | 2 |" in card and "| test | 2 | 0 | 2 |" in card  # columns: total, PullCube, PushCube
    assert "| `PushCube/clean.h5` | train | PushCube | 2 | 0–1 | 0.0 |" in card
    assert "| autoencoder | 1,500 | 322 | 32 | 0.0 | `abababababab` |" in card and "| dynamics | 2,500 | 654 |" in card
    assert "| regression_matched (evaluated below; not in this repository) | 4,000 |" in card
    assert "0.1234 [0.1111, 0.1357]" in card and "**rla@10** (reported)" in card and "95 % confidence intervals" in card
    assert "2 held-out `test` episodes, 12 windows" in card and "python -m training.evaluate --pack p" in card
    assert "pool packs trained with seeds 0, 1" in card and "this repository holds the seed-0 pack" in card
    assert "| rla@10 − regression | token_l1_moving | -0.0766 [-0.0900, -0.0600] | rla@10 beats regression |" in card
    assert "token L1 moving: token L1 on moving patches" in card
    params = sum(p.numel() for p in ModelPack.load(pack_dir).dynamics.parameters())
    assert f"| `dynamics/` | `LatentFlow` | {params:,} |" in card
    # checked, then uploaded: exactly the checked files of the written folder
    assert [c[0] for c in no_hub] == ["HfApi", "create_repo", "upload_folder"]
    upload = no_hub[2][1]
    assert upload["folder_path"] == str(out) and upload["allow_patterns"] == [f.as_posix() for f in files]
    assert "results.json" in upload["allow_patterns"] and "README.md" in upload["allow_patterns"]


def test_card_says_plainly_when_there_is_no_evaluation_split_or_budget(tmp_path, tiny_pack_dir):
    pack_dir = _copy(tiny_pack_dir, tmp_path / "pack")
    _run("--pack", pack_dir, "--repo-id", "someone/rla-pack", "--dry-run", "--out", tmp_path / "repo")
    card = (tmp_path / "repo" / "README.md").read_text()
    assert "**Not evaluated.**" in card and "no quality claim" in card
    assert "records no train/val/test split" in card and "records no training manifest" in card
    old_format = {"evaluation": {"protocol": {}, "methods": {"rla@10": {"final": {"token_l1": 0.1}}}}}  # no "ci"
    (pack_dir / "results.json").write_text(json.dumps(old_format))
    _run("--pack", pack_dir, "--repo-id", "someone/rla-pack", "--dry-run", "--out", tmp_path / "repo")  # rewrites its own folder
    assert "**No confidence intervals.**" in (tmp_path / "repo" / "README.md").read_text()


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
        _run("--pack", pack_dir, "--repo-id", "someone/rla-pack", "--out", tmp_path / "repo")
    assert "refusing to publish" in str(err.value)
    assert no_hub == []  # HfApi was never even constructed


def test_an_incomplete_card_is_refused(tmp_path, tiny_pack_dir, no_hub, monkeypatch):
    import rla.cards

    pack_dir = _copy(tiny_pack_dir, tmp_path / "pack")
    monkeypatch.setattr(rla.cards, "pack_card", lambda pack, repo_id, files: "---\nlicense: mit\n---\n# x\n\nMore Information Needed\n")
    with pytest.raises(PackError) as err:
        _run("--pack", pack_dir, "--repo-id", "someone/rla-pack", "--out", tmp_path / "repo")
    text = str(err.value)
    assert "section '## Evaluation' is missing" in text and "'More Information Needed'" in text and "library_name" in text
    assert no_hub == []


def test_cli_prints_the_refusal_and_exits_2(tmp_path, tiny_pack_dir, no_hub, monkeypatch, capsys):
    from training.common import cli

    pack_dir = _copy(tiny_pack_dir, tmp_path / "pack")
    (pack_dir / "dynamics" / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(sys, "argv", ["publish", "--pack", str(pack_dir), "--repo-id", "someone/rla-pack", "--out", str(tmp_path / "r")])
    with pytest.raises(SystemExit) as exit_:
        cli(publish.main)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "refusing to publish" in err and "Traceback" not in err and no_hub == []


def test_an_out_folder_publish_did_not_write_is_left_alone(tmp_path, tiny_pack_dir, no_hub):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(PackError, match="was not written by training.publish"):
        _run("--pack", tiny_pack_dir, "--repo-id", "someone/rla-pack", "--out", tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me" and no_hub == []


def test_space_readme_names_the_uploaded_pack_once_and_only_after_the_upload(tmp_path, tiny_pack_dir, no_hub, capsys):
    """--space-readme: the project's own Space README gains ``models: [repo]`` after the upload, keeping
    the rest of its front matter and text; a dry run and a refused pack leave it as it was."""
    readme = Path(shutil.copy(Path(__file__).resolve().parents[2] / "README.md", tmp_path / "README.md"))
    original, before = readme.read_text(), huggingface_hub.SpaceCard.load(readme)
    assert "models" not in before.data.to_dict()  # nothing is published yet: the Space names no repo it cannot link
    common = ("--pack", tiny_pack_dir, "--repo-id", "someone/rla-pack", "--out", tmp_path / "repo", "--space-readme", readme)
    _run(*common, "--dry-run")
    assert readme.read_text() == original and no_hub == []
    assert "someone/rla-pack would be added to the models: of" in capsys.readouterr().out
    broken = _copy(tiny_pack_dir, tmp_path / "broken")
    (broken / "dynamics" / "model.safetensors").write_bytes(b"")
    with pytest.raises(PackError):
        _run("--pack", broken, "--repo-id", "someone/rla-pack", "--out", tmp_path / "repo2", "--space-readme", readme)
    assert readme.read_text() == original and no_hub == []
    _run(*common)
    after = huggingface_hub.SpaceCard.load(readme)
    assert [c[0] for c in no_hub] == ["HfApi", "create_repo", "upload_folder"]
    assert after.data.models == ["someone/rla-pack"] and after.text == before.text
    assert {k: v for k, v in after.data.to_dict().items() if k != "models"} == before.data.to_dict()
    _run(*common)  # published again: named once
    assert huggingface_hub.SpaceCard.load(readme).data.models == ["someone/rla-pack"]


def test_a_space_readme_that_is_not_one_is_refused_before_anything_is_sent(tmp_path, tiny_pack_dir, no_hub):
    notes = tmp_path / "NOTES.md"
    notes.write_text("# notes, no front matter\n")
    for readme, message in ((notes, "not a Hugging Face Space README"), (tmp_path / "missing.md", "no such file")):
        with pytest.raises(PackError, match=message):
            _run("--pack", tiny_pack_dir, "--repo-id", "someone/rla-pack", "--out", tmp_path / "repo", "--space-readme", readme)
    assert no_hub == [] and not (tmp_path / "repo").exists() and notes.read_text() == "# notes, no front matter\n"


# ---- policies ---------------------------------------------------------------------------------------

RECORDING = "PullCube_s30000_n20"


def _write_recording(data: Path) -> None:
    """The ManiSkill JSON of a 20-episode recording from reset seeds 30000–30019 (the .h5 is not needed here)."""
    data.mkdir(parents=True, exist_ok=True)
    episodes = [{"episode_id": i, "episode_seed": 30_000 + i, "success": True, "rla": {"success_once": True}} for i in range(20)]
    (data / f"{RECORDING}.json").write_text(json.dumps({
        "env_info": {"env_id": "PullCube-v1", "env_kwargs": {"robot_uids": "panda", "control_mode": "pd_ee_delta_pos"}},
        "episodes": episodes}))


def _save_policy(folder: Path, arm: str, seed: int, rla_weight: float, data: Path, state_dim: int = 9) -> Policy:
    torch.manual_seed(seed)
    enc = {"kind": "pixel_patch", "image_size": 64, "patch_size": 16}
    policy = Policy(policy_config("tiny", num_tokens=16, token_dim=768, state_dim=state_dim, chunk=5, execute=4, rla_queries=4,
                                  rla_dim=8, rla_weight=rla_weight, encoder=enc))
    policy.save_pretrained(folder)
    (folder / "train.json").write_text(json.dumps({
        "arm": arm, "task": "PullCube", "seed": seed, "labelled_fraction": 0.1, "rla_weight": rla_weight, "batch_size": 64,
        "pack": "assets/pack", "pack_autoencoder_sha256": AE_SHA, "data": [str(data)], "threads": 1, "cpu_seconds_per_step": 0.25,
        "command": f"python -m training.train_policy --rla-weight {rla_weight} --seed {seed} --out {arm}/seed{seed}",
        "data_split": {"labelled_episodes": [f"{RECORDING}/traj_{i}" for i in range(2)], "action_less_episodes": 16 if rla_weight else 0,
                       "heldout_episodes": [f"{RECORDING}/traj_{i}" for i in (18, 19)], "rla_k": 10, "labelled_share": 0.5},
        "train": {"steps": 300, "minutes": 2.5, "cpu_seconds": 75.0 + seed},
        "heldout_scores": {"heldout_action_mse": 0.2 + seed / 100, **({"heldout_rla_r2": 0.61} if rla_weight else {})}}))
    return policy


def _write_eval(folder: Path, arm: str, seed, successes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "eval_test.json"
    path.write_text(json.dumps({
        "kind": KIND, "task": "PullCube", "split": "test", "arm": arm, "train_seed": seed, "max_steps": 50, "seed_offset": 0,
        "train": {"minutes": 2.5, "autoencoder_sha256": AE_SHA} if seed is not None else None,
        "episodes": [{"reset_seed": 41_000 + i, "success": bool(s), "steps": 20} for i, s in enumerate(successes)]}))
    return path


@pytest.fixture(scope="module")
def policy_root(tmp_path_factory) -> Path:
    """``PullCube/{wam,bc}/seed{0,1}`` with weights, train.json, an evaluation, and what must not be uploaded; expert and zero rows."""
    base = tmp_path_factory.mktemp("policies")
    data, root = base / "data", base / "policies" / "PullCube"
    _write_recording(data)
    rng = np.random.default_rng(0)
    for arm, rate, weight in (("wam", 0.6, 0.05), ("bc", 0.3, 0.0)):
        for seed in (0, 1):
            folder = root / arm / f"seed{seed}"
            _save_policy(folder, arm, seed, weight, data)
            _write_eval(folder, arm, seed, rng.random(30) < rate)
            (folder / "checkpoint").mkdir()
            (folder / "checkpoint" / "model.safetensors").write_bytes(b"resumable state")
            (folder / "loss.csv").write_text("step,loss\n")
            (folder / "run.json").write_text("{}")
    _write_eval(root / "expert", "expert", None, np.ones(30))
    _write_eval(root / "zero", "zero", None, np.zeros(30))
    return root


@pytest.fixture
def policies(policy_root, tmp_path) -> Path:
    return _copy(policy_root, tmp_path / "PullCube")


def _publish_policies(root: Path, out: Path, *extra) -> list[Path]:
    return _run("--policies", root, "--repo-id", "someone/rla-policies", "--out", out, *extra)


def _measured_table(root: Path) -> str:
    return markdown(summarize([load_result(p) for p in sorted(root.rglob("eval_*.json"))]))


def test_policies_dry_run_writes_the_repo_folder_and_a_card_with_the_measured_table(policies, tmp_path, no_hub, capsys):
    out = tmp_path / "repo"
    files = _publish_policies(policies, out, "--dry-run")
    per_policy = ["config.json", "eval_test.json", "model.safetensors", "train.json"]
    expected = {f"PullCube/{arm}/seed{s}/{n}" for arm in ("wam", "bc") for s in (0, 1) for n in per_policy}
    expected |= {"PullCube/expert/eval_test.json", "PullCube/zero/eval_test.json", "README.md"}
    assert {f.as_posix() for f in files} == expected  # no checkpoint/, loss.csv, run.json
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != publish.MARKER}
    assert written == expected and no_hub == []
    assert "dry run: 19 files checked" in capsys.readouterr().out
    assert (out / "PullCube/wam/seed1/model.safetensors").read_bytes() == (policies / "wam/seed1/model.safetensors").read_bytes()

    card = (out / "README.md").read_text()
    table = _measured_table(policies)
    assert table.strip() and all(line in card for line in table.strip().splitlines())  # every row, the CIs and the paired difference
    assert "| PullCube | test | wam − bc | 0, 1 | 30 |" in card
    meta = ModelCard(card).data.to_dict()
    assert meta["license"] == "mit" and {"world-action-model", "behavior-cloning", "robotics"} <= set(meta["tags"])
    assert "https://github.com/mlzxy/rla-wm" in card and "vla_bc_policy_rla_unified.py" in card and "arxiv.org/abs/2605.07079" in card
    assert "| `PullCube_s30000_n20` | PullCube | 30000–30019 | 20 | 20 |" in card  # recorded seeds, read from the recording
    assert "| wam (PullCube) | 10.0 % | 2 (reset seeds 30000–30001) | 16 | 2 |" in card
    assert "| bc (PullCube) | 10.0 % | 2 (reset seeds 30000–30001) | 0 | 2 | the labelled rows only" in card
    assert f"sha256 `{AE_SHA}`" in card and "(4-D `pd_ee_delta_pos` actions, Panda arm)" in card
    assert "| `PullCube/wam/seed1` | 300 | 64 | 76 | 0.250 | 2.5 | 1 |" in card
    assert "python -m training.train_policy --rla-weight 0.05 --seed 1" in card
    assert "| `PullCube/wam/seed0` | 0.2000 | 0.610 |" in card and "| `PullCube/bc/seed1` | 0.2100 | — (no RLA head) |" in card
    params = sum(p.numel() for p in Policy.load(policies / "wam/seed0").parameters())
    assert f"| `PullCube/wam/seed0/` | `Policy` | {params:,} | tokens | yes | weight 0.05 |" in card
    assert 'load_any_policy(f"{root}/PullCube/wam/seed0")' in card and "More Information" not in card


def test_the_card_changes_when_an_evaluation_file_changes(policies, tmp_path):
    _publish_policies(policies, tmp_path / "repo", "--dry-run")
    before = (tmp_path / "repo" / "README.md").read_text()
    path = policies / "wam" / "seed0" / "eval_test.json"
    result = json.loads(path.read_text())
    for ep in result["episodes"][:10]:
        ep["success"] = not ep["success"]
    path.write_text(json.dumps(result))
    _publish_policies(policies, tmp_path / "repo", "--dry-run")
    after = (tmp_path / "repo" / "README.md").read_text()
    wam_row = next(line for line in _measured_table(policies).splitlines() if line.startswith("| PullCube | test | wam |"))
    assert wam_row in after and wam_row not in before and after != before


def test_policies_upload_exactly_the_checked_folder(policies, tmp_path, no_hub):
    files = _publish_policies(policies, tmp_path / "repo", "--private")
    assert [c[0] for c in no_hub] == ["HfApi", "create_repo", "upload_folder"] and no_hub[1][1] == "someone/rla-policies"
    upload = no_hub[2][1]
    assert upload["folder_path"] == str(tmp_path / "repo") and upload["allow_patterns"] == [f.as_posix() for f in files]
    assert not any("checkpoint" in p or p.endswith("run.json") for p in upload["allow_patterns"])


def test_arms_picks_arms_and_keeps_the_reference_rows(policies, tmp_path):
    files = {f.as_posix() for f in _publish_policies(policies, tmp_path / "repo", "--dry-run", "--arms", "wam")}
    assert not any("/bc/" in f for f in files) and "PullCube/expert/eval_test.json" in files and "PullCube/wam/seed1/train.json" in files


def _drop_a_tensor(folder: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "model.safetensors"))
    state.pop(sorted(state)[0])
    save_file(state, str(folder / "model.safetensors"))


def _edit(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("breakage, message", [
    (lambda d: (d / "wam/seed0/model.safetensors").write_bytes(b"\x00" * 7), "PullCube/wam/seed0: does not load"),
    (lambda d: _drop_a_tensor(d / "bc/seed1"), "PullCube/bc/seed1: does not load with rla.wmrl.load_any_policy"),
    (lambda d: _edit(d / "wam/seed1/config.json", colour="blue"), "PullCube/wam/seed1: does not load"),
    (lambda d: (d / "bc/seed0/config.json").unlink(), "PullCube/bc/seed0: no config.json"),
    (lambda d: (d / "wam/seed1/model.safetensors").unlink(), "PullCube/wam/seed1: no model.safetensors; the run finished but its weights"),
    (lambda d: _edit(d / "wam/seed0/train.json", task="PokeCube"), "PullCube/wam/seed0/train.json says task 'PokeCube'"),
    (lambda d: _edit(d / "bc/seed1/train.json", seed=0), "PullCube/bc/seed1/train.json says seed 0"),
    (lambda d: _edit(d / "bc/seed1/eval_test.json", arm="wam"), "PullCube/bc/seed1/eval_test.json says arm 'wam'"),
    (lambda d: (d / "bc/seed0/eval_test.json").write_text("{"), "PullCube/bc/seed0/eval_test.json: not a readable JSON file"),
    (lambda d: _edit(d / "wam/seed1/eval_test.json", train_seed=0), "PullCube/wam/seed1/eval_test.json says train_seed 0"),
    (lambda d: _edit(d / "wam/seed1/eval_test.json", train={"autoencoder_sha256": "cd" * 32}), "belongs to another run"),
    (lambda d: _edit(d / "bc/seed1/train.json", pack_autoencoder_sha256="cd" * 32), "2 different autoencoders"),
    (lambda d: [(d / "bc_nostate/seed0").mkdir(parents=True), (d / "bc_nostate/seed0/run.json").write_text("{}")],
     "PullCube/bc_nostate/seed0: no config.json or model.safetensors; its training has not finished"),
])
def test_a_broken_policy_folder_is_refused_and_nothing_is_uploaded(policies, tmp_path, no_hub, breakage, message):
    breakage(policies)
    with pytest.raises(publish.PublishError, match="refusing to publish") as err:
        _publish_policies(policies, tmp_path / "repo")
    assert message in str(err.value) and "nothing was uploaded" in str(err.value)
    assert no_hub == []


def test_the_bit_exact_check_catches_a_load_that_changes_one_weight(policies, tmp_path, no_hub, monkeypatch):
    import rla.wmrl

    real = rla.wmrl.load_any_policy

    def off_by_one_ulp(path):
        model = real(path)
        with torch.no_grad():
            p = model.action_head.bias
            p[0] = torch.nextafter(p[0], torch.tensor(float("inf")))
        return model

    monkeypatch.setattr(rla.wmrl, "load_any_policy", off_by_one_ulp)
    with pytest.raises(publish.PublishError) as err:
        _publish_policies(policies, tmp_path / "repo")
    assert "action_head.bias loads as torch.float32 (20,), not bit-exactly the stored" in str(err.value) and no_hub == []


def test_a_wmrl_policy_is_published_with_its_own_description(tmp_path, no_hub):
    from rla.wmrl import WMRLPolicy

    root, data = tmp_path / "PullCube", tmp_path / "data"
    _write_recording(data)
    base = _save_policy(root / "bc_nostate" / "seed0", "bc", 0, 0.0, data, state_dim=0)  # train.json says "bc": the folder's arm wins
    wmrl = WMRLPolicy.from_policy(base)
    with torch.no_grad():
        wmrl.residual_head.weight.normal_()
    wmrl.save_pretrained(root / "wmrl" / "seed0")
    (root / "wmrl" / "seed0" / "wmrl.json").write_text(json.dumps({
        "task": "PullCube", "seed": 0, "envs": 8, "iterations": 20, "cpu_seconds": 40.0, "minutes": 1.5, "threads": 1,
        "pack_autoencoder_sha256": AE_SHA, "policy_sha256": "12" * 32, "recordings": [f"{RECORDING}/traj_{i}" for i in range(5)],
        "ppo": {"batch_size": 32}, "command": "python -m training.train_wmrl --seed 0"}))
    files = {f.as_posix() for f in _publish_policies(root, tmp_path / "repo", "--dry-run")}
    assert {"PullCube/wmrl/seed0/wmrl.json", "PullCube/wmrl/seed0/model.safetensors", "PullCube/bc_nostate/seed0/train.json"} <= files
    card = (tmp_path / "repo" / "README.md").read_text()
    assert "reinforcement-learning" in ModelCard(card).data.to_dict()["tags"]
    assert "**wmrl** (1 training seed: 0): WMRL: a frozen behaviour-cloning policy (sha256 `121212121212`)" in card
    assert "| `PullCube/wmrl/seed0/` | `WMRLPolicy` |" in card and "| `PullCube/wmrl/seed0` | 20 iterations | 32 | 40 |" in card
    assert "- **bc_nostate** (1 training seed: 0): behaviour cloning without an RLA head" in card
    assert "no qpos input (the learned state token alone)" in card and "`wmrl/`" in card
    assert "**Not evaluated.**" in card  # no evaluation files: no success claimed


def test_the_shipped_seed0_policies_publish(tmp_path):
    """The committed seed-0 policies load bit-exactly; their card carries the autoencoder hash of their train.json."""
    shipped = Path(__file__).resolve().parents[2] / "assets" / "policies" / "PullCube"
    root = tmp_path / "PullCube"
    for arm in ("wam", "bc"):
        src = shipped / arm / "seed0"
        if not (src / "model.safetensors").is_file():
            pytest.skip(f"{src} has no weights")
        (root / arm / "seed0").mkdir(parents=True)
        for name in ("config.json", "model.safetensors", "train.json", "eval_test.json"):
            shutil.copy2(src / name, root / arm / "seed0" / name)
    files = _publish_policies(root, tmp_path / "repo", "--dry-run")
    assert len(files) == 9
    card = (tmp_path / "repo" / "README.md").read_text()
    sha = json.loads((shipped / "wam" / "seed0" / "train.json").read_text())["pack_autoencoder_sha256"]
    assert f"`{sha}`" in card and "| PullCube | test | wam | 0 | 100 |" in card


def test_empty_buffers_older_stateless_files_kept_do_not_block_but_extra_values_do(tmp_path):
    """Policies trained without qpos before the fix stored empty state_mean/state_std: they load (the hook
    drops them) and publish; a stored tensor with values the model lacks is still refused."""
    from safetensors.torch import load_file, save_file

    data = tmp_path / "data"
    _write_recording(data)
    folder = tmp_path / "PullCube" / "bc_nostate" / "seed0"
    _save_policy(folder, "bc", 0, 0.0, data, state_dim=0)
    weights = folder / "model.safetensors"
    stored = load_file(str(weights))
    save_file({**stored, "state_mean": torch.zeros(0), "state_std": torch.ones(0)}, str(weights), metadata={"format": "pt"})
    model = Policy.load(folder)
    assert publish.bit_exact_problems(model, weights, "x") == []
    save_file({**stored, "state_mean": torch.zeros(2)}, str(weights), metadata={"format": "pt"})
    assert any("state_mean is in model.safetensors but not in the loaded model" in p
               for p in publish.bit_exact_problems(model, weights, "x"))
