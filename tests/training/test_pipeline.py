"""The whole chain on the tiny preset: collect (real renderer) → train → pack → evaluate; the same
command on a timm ViT (synthetic recordings); the manifest that hands artefacts from stage to stage."""
import json
import math
import re
from pathlib import Path

import pytest
import torch

from rla import ModelPack
from rla.hub import file_sha256

TIMM_VIT = "test_vit.r160_in1k"  # timm's own tiny ViT (width 64, 6 blocks, patch 16; 0.3 M parameters): a stand-in for DINOv2/v3


def write_planned_recordings(data: Path, preset) -> None:
    """Synthetic 50-step episodes (64 px, tests/app/tiny.py) as every recording the pipeline plans, with its seeds."""
    from tests.app.tiny import synthetic_episodes
    from tests.training.recordings import write_recording
    from training.pipeline import recordings

    for i, r in enumerate(recordings(preset)):
        write_recording(synthetic_episodes(r.episodes, steps=50, seed=i, size=preset.image_size), data / r.task / f"{r.name}.h5",
                        r.task, first_seed=r.seed)


def save_tiny_vit(path: Path) -> Path:
    """Random weights of :data:`TIMM_VIT`, written as a local weight file (no network)."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = timm.create_model(TIMM_VIT, pretrained=False, num_classes=0, img_size=64)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


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
    # every stage's output is a named artefact of the run's manifest, and no marker file says what is done
    artefacts = json.loads((tmp_path / "work" / "manifest.json").read_text())["artefacts"]
    assert {"recording/PushCube/clean", "recording/play/play", "splits", "autoencoder0", "rla0", "regression_matched", "pack/seed0",
            "evaluation", "properties"} <= set(artefacts)
    assert models["dynamics"]["sha256"] == artefacts["rla0"]["sha256"] == file_sha256(tmp_path / "pack" / "dynamics" / "model.safetensors")
    assert pack.info.manifest["autoencoder_gate"] == artefacts["autoencoder0"]["gate"]
    assert not list((tmp_path / "work").rglob("gate.json"))
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


@pytest.mark.slow  # 7 tiny training processes, evaluate and properties, one again, then 2 ablation runs: over a CPU-minute, several wall minutes
def test_a_timm_vit_pack_in_one_command(tmp_path, monkeypatch, capsys):
    """``--encoder NAME --encoder-weights PATH --image-size PX``: the same command builds a pack on a
    timm ViT, with the RGB decoder it needs, and evaluates it (the weights handed on to evaluate and
    properties); the pack loads and predicts. Rerun, it trains nothing; with one model file changed,
    it makes that one again and nothing else."""
    monkeypatch.setenv("RLA_CACHE", str(tmp_path / "cache"))
    import training.common

    monkeypatch.setattr(training.common, "DEFAULT_CACHE", tmp_path / "cache")
    from rla.data import load_episodes
    from training import pipeline

    weights = save_tiny_vit(tmp_path / "vit.safetensors")
    write_planned_recordings(tmp_path / "data", pipeline.PRESETS["tiny"])
    command = ["--preset", "tiny", "--encoder", TIMM_VIT, "--encoder-weights", str(weights), "--image-size", "64",
               "--out", str(tmp_path / "pack"), "--data", str(tmp_path / "data"), "--work", str(tmp_path / "work"),
               "--results", str(tmp_path / "docs" / "results.md"), "--threads", "1"]  # 2 threads on 2 busy cores: 20x the CPU time
    pipeline.main(command)  # every stage
    timing = (tmp_path / "docs" / "timing.md").read_text()  # the later stages ran on the threads the command gave
    assert re.search(r"\| evaluate \| — \| \d+ \(1 thread\) \|", timing) and "threads)" not in timing
    pack = ModelPack.load(tmp_path / "pack", encoder_weights=weights)
    assert (pack.info.encoder.kind, pack.info.encoder.name, pack.info.encoder.image_size) == ("timm", TIMM_VIT, 64)
    assert pack.encoder.fingerprint == f"timm:{TIMM_VIT}@sha256-{file_sha256(weights)[:12]}:64px" and pack.rgb_decoder is not None
    frame = load_episodes(tmp_path / "data" / "PushCube" / "test.h5")[0].frames[0]
    z = pack.encoder.encode(frame)  # (1, 16, 64): a 4 x 4 grid of width-64 tokens
    assert z.shape == (1, 16, 64)
    z_next = pack.world_model.predict(z, torch.zeros(1, pack.info.chunk, pack.info.action_dim), steps=2)
    assert z_next.shape == z.shape and torch.isfinite(z_next).all()
    image = pack.to_images(z_next)
    assert image.shape == (1, 64, 64, 3) and image.dtype == torch.uint8
    # the manifest: what was trained, on which episodes, with which config and budget, from which inputs
    artefacts = json.loads((tmp_path / "work" / "manifest.json").read_text())["artefacts"]
    jobs = {"autoencoder0", "rla0", "regression0", "token_flow0", "regression_matched", "rgb_decoder"}
    assert set(artefacts) == (jobs | {"splits", "pack/seed0", "evaluation", "properties"}
                              | {r.artefact for r in pipeline.recordings(pipeline.PRESETS["tiny"])})
    rgb = artefacts["rgb_decoder"]
    assert rgb["sha256"] == file_sha256(tmp_path / "pack" / "rgb_decoder" / "model.safetensors")
    assert pack.info.manifest["models"]["rgb_decoder"]["sha256"] == rgb["sha256"]
    assert rgb["config"]["encoder"] == TIMM_VIT and rgb["config"]["encoder_weights_sha256"] == file_sha256(weights)
    assert rgb["budget"]["steps"] == 20 and rgb["budget"]["cpu_seconds"] > 0 and rgb["episodes"]["split"] == "train"
    autoencoder = artefacts["autoencoder0"]
    assert autoencoder["episodes"]["count"] == 4 and autoencoder["gate"]["split"] == "val"
    extended = {"autoencoder0_extended"} if autoencoder["gate"]["extended"] else set()  # random ViT features: the gate trains on
    assert autoencoder["budget"]["steps"] == (40 if extended else 20) and autoencoder["config"]["steps"] == 20
    assert artefacts["rla0"]["inputs"]["autoencoder0"] == artefacts["autoencoder0"]["sha256"]
    assert artefacts["regression_matched"]["config"]["steps"] == "matched" and artefacts["regression_matched"]["budget"]["steps"] > 0
    assert artefacts["pack/seed0"]["inputs"]["rgb_decoder"] == rgb["sha256"]
    # evaluate and properties loaded the pack with the same weights: their outputs are in the manifest, and numbers
    for name in ("evaluation", "properties"):
        entry = artefacts[name]
        assert entry["inputs"]["pack/seed0"] == artefacts["pack/seed0"]["sha256"]
        assert entry["config"]["encoder_weights_sha256"] == file_sha256(weights)
    evaluation = json.loads(Path(artefacts["evaluation"]["path"]).read_text())
    assert evaluation["protocol"]["episode_ids"] == pack.splits.test and evaluation["protocol"]["windows"] == 3
    for method in ("rla@10 mean8", "regression", "token_flow", "copy"):
        ci = evaluation["methods"][method]["ci"]  # one test episode, one seed: a mean, no interval
        for metric in ("token_l1_moving", "psnr", "ssim"):  # images: the RGB decoder's, from the ViT's tokens
            assert isinstance(ci[metric]["mean"], float) and math.isfinite(ci[metric]["mean"]), (method, metric, ci[metric])
    properties = json.loads(Path(artefacts["properties"]["path"]).with_suffix(".json").read_text())
    assert properties["episodes"] == 1 and properties["predictive"]["pairs"] > 0
    for name in ("autoencoder", "copy"):
        mean = properties["predictive"]["means"]["l1_moving"][name]["mean"]
        assert isinstance(mean, float) and math.isfinite(mean) and mean > 0, (name, mean)
    assert all(math.isfinite(s["error"]["mean"]) for s in properties["temporal_topology"]["paths"].values())
    # without the weight file they name, both refuse with its path: a message and exit 2, not a traceback
    from training import evaluate, properties
    from training.common import cli

    missing = ["--encoder-weights", str(tmp_path / "no_such_vit.safetensors")]
    common = ["--pack", str(tmp_path / "pack"), "--data", str(tmp_path / "data")]
    for main, args in ((evaluate.main, [*common, "--out", str(tmp_path / "e.json"), *missing]),
                       (properties.main, [*common, "--out", str(tmp_path / "p.md"), *missing])):
        with pytest.raises(SystemExit) as exited:
            cli(lambda main=main, args=args: main(args))
        assert exited.value.code == 2
        assert re.search(r"error: encoder weights not found: .*no_such_vit\.safetensors", capsys.readouterr().err)
    # resume: nothing is trained again; a model file that is not the recorded one is made again, alone
    logs = {p.stem: p.stat().st_mtime_ns for p in (tmp_path / "work" / "logs").iterdir()}
    assert set(logs) == jobs | extended
    pipeline.main([*command, "--until", "assemble"])
    assert {p.stem: p.stat().st_mtime_ns for p in (tmp_path / "work" / "logs").iterdir()} == logs
    token_flow = Path(artefacts["token_flow0"]["path"])
    token_flow.write_bytes(b"not the recorded model")
    pipeline.main([*command, "--until", "train"])
    again = {p.stem for p in (tmp_path / "work" / "logs").iterdir() if p.stat().st_mtime_ns != logs[p.stem]}
    assert again == {"token_flow0"}
    after = json.loads((tmp_path / "work" / "manifest.json").read_text())["artefacts"]
    assert after["token_flow0"]["sha256"] == file_sha256(token_flow)  # resumed from its finished checkpoint
    assert {k: v["sha256"] for k, v in after.items()} == {k: v["sha256"] for k, v in artefacts.items()}
    # ablate on the same run: the ViT pipeline's autoencoder and regression as they are, the new dynamics and the scoring on the ViT
    from training import ablate

    logs = {p.stem: p.stat().st_mtime_ns for p in (tmp_path / "work" / "logs").iterdir()}
    results = ablate.main(["--preset", "tiny", "--encoder", TIMM_VIT, "--encoder-weights", str(weights), "--image-size", "64",
                           "--data", str(tmp_path / "data"), "--work", str(tmp_path / "work"), "--out", str(tmp_path / "ablations.md"),
                           "--variants", "base", "--threads", "1"])
    assert {p.stem: p.stat().st_mtime_ns for p in (tmp_path / "work" / "logs").iterdir()} == logs  # nothing of the pipeline's retrained
    runs = json.loads((tmp_path / "work" / "manifest.json").read_text())["artefacts"]
    for seed in (0, 1):
        config = runs[f"ablate/base/seed{seed}"]["config"]
        assert config["encoder"] == TIMM_VIT and config["encoder_weights_sha256"] == file_sha256(weights)
    assert math.isfinite(results["base"]["methods"]["rla@10 mean8"]["ci"]["token_l1_moving"]["mean"])


def test_planned_recordings_are_taken_and_other_files_refused(tmp_path):
    """A file already in the data folder is recorded only when it holds the planned episodes."""
    from training.pipeline import PRESETS, Manifest, collect

    tiny = PRESETS["tiny"]
    write_planned_recordings(tmp_path / "data", tiny)
    splits = collect(tiny, tmp_path / "data", tmp_path / "work")
    manifest = Manifest.of(tmp_path / "work")
    clean = manifest.entries["recording/PushCube/clean"]
    assert clean["sha256"] == file_sha256(tmp_path / "data" / "PushCube" / "clean.h5") and clean["episodes"]["seeds"] == [0, 1]
    assert splits.train[:2] == ["PushCube/clean/traj_0", "PushCube/clean/traj_1"] and splits.test == ["PushCube/test/traj_0"]
    assert manifest.entries["splits"]["inputs"]["recording/PushCube/clean"] == clean["sha256"]
    assert not (tmp_path / "work" / "logs").exists()  # nothing was collected
    from tests.app.tiny import synthetic_episodes
    from tests.training.recordings import write_recording

    # other seeds in the planned file: refused, not overwritten, before anything runs
    write_recording(synthetic_episodes(2, steps=50, size=64), tmp_path / "other" / "PushCube" / "clean.h5", "PushCube", first_seed=70)
    with pytest.raises(SystemExit, match="clean.h5 is not the recording this run plans \\(2 episodes of seeds 70–71, not 2 of seeds 0–1\\)"):
        collect(tiny, tmp_path / "other", tmp_path / "work2")
    # frames of another size than the run's
    write_planned_recordings(tmp_path / "big", replace_size(tiny, 96))
    with pytest.raises(SystemExit, match="96x96 px frames, not 64x64"):
        collect(tiny, tmp_path / "big", tmp_path / "work3")


def replace_size(preset, size: int):
    from dataclasses import replace

    return replace(preset, image_size=size)


def test_manifest_says_why_an_artefact_is_made_again(tmp_path, capsys):
    from training.pipeline import Manifest

    (tmp_path / "model.bin").write_bytes(b"weights")
    manifest = Manifest.of(tmp_path)
    manifest.record("model", tmp_path / "model.bin", "train", config={"steps": 20}, inputs={"splits": "abc"})
    reread = Manifest.of(tmp_path)  # saved at once
    assert reread.current("model", {"steps": 20}, {"splits": "abc"})
    assert reread.stale("model", {"steps": 40}) == "its config changed (steps)"
    assert reread.stale("model", inputs={"splits": "def"}) == "its inputs changed (splits)"
    assert reread.stale("other") == "not recorded"
    assert reread.stale("model", path=tmp_path / "elsewhere.bin") == f"it was recorded at {tmp_path / 'model.bin'}, not {tmp_path / 'elsewhere.bin'}"
    (tmp_path / "model.bin").write_bytes(b"other weights")
    assert not reread.current("model")
    assert "model is made again: " in capsys.readouterr().out
    with pytest.raises(SystemExit, match="artefact 'model' cannot be used .*changed since it was recorded"):
        reread.require("model")
    (tmp_path / "model.bin").unlink()
    assert reread.stale("model").endswith("is gone")


def test_matched_steps_read_the_recorded_budgets(tmp_path):
    """Regression steps = median RLA-WM CPU-seconds (autoencoder + dynamics) / median regression CPU-seconds per step."""
    from training.pipeline import Manifest, matched_steps

    manifest = Manifest.of(tmp_path)
    cpu = {0: (100, 50, 60), 1: (140, 60, 90), 2: (120, 40, 30)}  # autoencoder, dynamics, regression CPU-s per seed (regression: 30 steps)
    for seed, (ae, dyn, reg) in cpu.items():
        for name, seconds in ((f"autoencoder{seed}", ae), (f"rla{seed}", dyn), (f"regression{seed}", reg)):
            manifest.entries[name] = {"budget": {"steps": 30, "cpu_seconds": seconds}}
    assert matched_steps(manifest, [0, 1, 2]) == round(160 / 2.0)  # medians: 160 CPU-s of RLA-WM, 2 CPU-s per regression step
    assert matched_steps(manifest, [0, 5]) == round(150 / 2.0)  # seeds not recorded are left out
    with pytest.raises(SystemExit, match="no seed of \\[5\\]"):
        matched_steps(manifest, [5])


@pytest.mark.slow  # 4 tiny training processes and one again, then validation scoring: about a CPU-minute
def test_ablate_takes_its_inputs_from_the_manifest_and_records_every_run(tmp_path, monkeypatch):
    """training.ablate trains its variants on the autoencoder and split the manifest names, records
    each run there, scores them on validation, and on a rerun trains only a run whose file changed."""
    monkeypatch.setenv("RLA_CACHE", str(tmp_path / "cache"))
    import training.common

    monkeypatch.setattr(training.common, "DEFAULT_CACHE", tmp_path / "cache")
    from training import ablate, pipeline

    data, work = tmp_path / "data", tmp_path / "work"
    write_planned_recordings(data, pipeline.PRESETS["tiny"])
    pipeline.main(["--preset", "tiny", "--out", str(tmp_path / "pack"), "--data", str(data), "--work", str(work), "--until", "collect"])
    results = ablate.main(["--preset", "tiny", "--data", str(data), "--work", str(work), "--out", str(tmp_path / "ablations.md"),
                           "--variants", "base"])
    manifest = pipeline.Manifest.of(work)
    artefacts = manifest.entries
    runs = ["ablate/base/seed0", "ablate/base/seed1"]
    assert {"autoencoder0", "regression0", *runs} <= set(artefacts) and "rla0" not in artefacts
    for seed, name in enumerate(runs):
        entry = artefacts[name]
        assert entry["inputs"]["autoencoder0"] == artefacts["autoencoder0"]["sha256"] and entry["inputs"]["splits"] == artefacts["splits"]["sha256"]
        assert entry["config"]["seed"] == seed and entry["budget"]["steps"] == 20 and entry["sha256"] == file_sha256(entry["path"])
    preset, base = pipeline.PRESETS["tiny"], {"base": ablate.VARIANTS["base"]}
    command = ablate.variant_jobs(preset, work, base)[0].command(preset, data, work, manifest=manifest)
    assert command[command.index("--autoencoder") + 1] == str(Path(artefacts["autoencoder0"]["path"]).parent)
    assert command[command.index("--splits") + 1] == artefacts["splits"]["path"]
    assert results["base"]["models"] == manifest.sha("autoencoder0", *runs, "regression0")  # what was scored
    assert results["_protocol"]["split"] == "val" and results["_protocol"]["windows"] == 3  # one 50-step validation episode
    mean = results["base"]["methods"]["rla@10 mean8"]["ci"]["token_l1_moving"]["mean"]
    assert math.isfinite(mean) and "| base | 20 |" in (tmp_path / "ablations.md").read_text()
    # rerun: every run is current; one whose model file changed is trained again, alone
    assert ablate.train_variants(preset, data, work, base, manifest) == []
    Path(artefacts[runs[1]]["path"]).write_bytes(b"not the recorded model")
    assert ablate.train_variants(preset, data, work, base, manifest) == [runs[1]]
    assert pipeline.Manifest.of(work).current(runs[1])
