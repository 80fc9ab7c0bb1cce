"""Build a model pack from nothing: collect → cache features → train → evaluate → save.

    python -m training.pipeline --preset cpu --out assets/pack

Stages (each skipped when its output exists, so an interrupted run resumes):

1. collect scripted-expert episodes (clean and action-noise) for the Panda tasks, plus play;
2. train the RLA autoencoder and, in parallel, the direct-regression baseline;
3. train the RLA flow dynamics (on the frozen autoencoder) and, in parallel, token-space flow
   and an autoencoder without one task (for the "generalizes" property);
4. fit the latent-action map, save the pack, evaluate every method on held-out episodes and
   write ``docs/results.md``; measure the three RLA properties into ``docs/properties.md``.

Two processes with one thread each use a 2-core machine best. The ``cpu`` preset finishes in
about two hours there.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from rla.data import load_episodes
from rla.data.splits import Splits, check_seeds, seed_range


@dataclass
class PipelinePreset:
    model: str = "cpu"  # rla.presets model size
    tasks: list = field(default_factory=lambda: ["PushCube", "PullCube", "PullCubeTool", "PokeCube"])
    clean_episodes: int = 30  # expert episodes per task
    noisy_episodes: int = 15  # expert + action-noise episodes per task (mostly failures)
    noise: float = 0.5
    play_episodes: int = 40  # task-agnostic play episodes
    val_episodes: int = 10  # fresh expert episodes per task for every choice (gate, ablations)
    test_episodes: int = 20  # fresh expert episodes per task for the reported evaluation
    image_size: int = 128
    patch_size: int = 16
    ae_steps: int = 2000  # autoencoder optimizer steps
    wm_steps: int = 1200  # steps for each world model (RLA dynamics and both baselines alike)
    batch_size: int = 64
    minutes_cap: float = 60.0  # safety cap per training stage
    latent_map_points: int = 1500
    gate_ratio: float = 0.5  # the autoencoder must reach this x the copy floor's MSE on moving tokens
    holdout_task: str | None = "PokeCube"  # an extra autoencoder trained without it (the "generalizes" property)


PRESETS = {
    "cpu": PipelinePreset(),
    # seconds-scale, for tests and smoke runs
    "tiny": PipelinePreset(model="tiny", tasks=["PushCube"], clean_episodes=2, noisy_episodes=1, play_episodes=1, val_episodes=1, test_episodes=1,
                           image_size=64, ae_steps=20, wm_steps=20, batch_size=8, minutes_cap=2, latent_map_points=60, holdout_task=None),
}


def run(cmd: list[str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    print("$", " ".join(cmd), f"> {log}", flush=True)
    return subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def wait(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"stage failed ({p.args[2]}), exit {p.returncode}: see its log")


@dataclass
class Recording:
    """One ``training.collect`` call of the pipeline and the split its episodes belong to."""

    split: str  # train, val or test
    task: str
    name: str  # file stem under DATA/<task>/
    episodes: int
    noise: float
    purpose: str  # key of rla.data.splits.SEED_RANGES the seeds come from

    @property
    def seed(self) -> int:
        return seed_range(self.purpose)[0]


def recordings(preset: PipelinePreset) -> list[Recording]:
    """Every recording of the pipeline; validation and test are fresh expert episodes from their
    own reserved seed ranges (never a fraction of the training recordings)."""
    out = []
    for task in preset.tasks:
        out += [Recording("train", task, "clean", preset.clean_episodes, 0.0, "wm_train_clean"),
                Recording("train", task, "noisy", preset.noisy_episodes, preset.noise, "wm_train_noisy"),
                Recording("val", task, "val", preset.val_episodes, 0.0, "wm_val"),
                Recording("test", task, "test", preset.test_episodes, 0.0, "wm_test")]
    out.append(Recording("train", "play", "play", preset.play_episodes, 0.0, "wm_train_play"))
    return [r for r in out if r.episodes > 0]


def collect(preset: PipelinePreset, data: Path, work: Path) -> None:
    for r in recordings(preset):
        check_seeds(r.purpose, r.seed, r.episodes)
        if (data / r.task / f"{r.name}.h5").exists():
            continue
        cmd = [sys.executable, "-m", "training.collect", "--task", r.task, "--episodes", str(r.episodes), "--out", str(data / r.task),
               "--name", r.name, "--noise", str(r.noise), "--seed", str(r.seed), "--size", str(preset.image_size), "--no-progress"]
        wait(run(cmd, work / "logs" / f"collect_{r.task}_{r.name}.log"))


def load_splits(preset: PipelinePreset, data: Path) -> Splits:
    """The recorded splits: episode ids of each split, and the recordings they came from."""
    groups: dict[str, list] = {"train": [], "val": [], "test": []}
    for r in recordings(preset):
        groups[r.split] += load_episodes(data / r.task / f"{r.name}.h5")
    table = [dict(asdict(r), file=f"{r.task}/{r.name}.h5", seeds=[r.seed, r.seed + r.episodes - 1]) for r in recordings(preset)]
    return Splits.from_roles(groups, recordings=table)


def train_cmd(module: str, preset: PipelinePreset, data: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", module, "--data", str(data), "--out", str(out), "--preset", preset.model,
            "--image-size", str(preset.image_size), "--patch-size", str(preset.patch_size), "--steps", str(steps),
            "--minutes", str(preset.minutes_cap), "--batch-size", str(preset.batch_size), "--threads", "1", *extra]


def train_all(preset: PipelinePreset, data: Path, work: Path) -> None:
    ae_out, logs = work / "autoencoder", work / "logs"
    procs = []
    if not (ae_out / "autoencoder" / "model.safetensors").exists():
        procs.append(run(train_cmd("training.train_autoencoder", preset, data, ae_out, preset.ae_steps), logs / "autoencoder.log"))
    if not (work / "regression" / "regression" / "model.safetensors").exists():
        procs.append(run(train_cmd("training.train_world_model", preset, data, work / "regression", preset.wm_steps, "--method", "regression"), logs / "regression.log"))
    wait(*procs)
    gate_autoencoder(preset, data, work)
    procs = []
    if not (work / "rla" / "rla" / "model.safetensors").exists():
        procs.append(run(train_cmd("training.train_world_model", preset, data, work / "rla", preset.wm_steps, "--method", "rla",
                                   "--autoencoder", str(ae_out / "autoencoder")), logs / "rla.log"))
    if not (work / "token_flow" / "token_flow" / "model.safetensors").exists():
        procs.append(run(train_cmd("training.train_world_model", preset, data, work / "token_flow", preset.wm_steps, "--method", "token_flow"), logs / "token_flow.log"))
    holdout = work / f"ae_without_{preset.holdout_task}"
    if preset.holdout_task and not (holdout / "autoencoder" / "model.safetensors").exists():
        procs.append(run(train_cmd("training.train_autoencoder", preset, data, holdout, preset.ae_steps, "--exclude-task", preset.holdout_task),
                         logs / f"ae_without_{preset.holdout_task}.log"))
    wait(*procs)


def gate_autoencoder(preset: PipelinePreset, data: Path, work: Path) -> dict:
    """Train the world model only on an autoencoder that clearly beats copying the start frame.

    If held-out MSE on moving tokens is not below ``gate_ratio`` x the copy floor, training
    resumes once for as many steps again; the outcome is recorded either way.
    """
    ae_out = work / "autoencoder"
    report = json.loads((ae_out / "autoencoder_eval.json").read_text())["heldout"]
    if report["mse_vs_copy_moving"] > preset.gate_ratio and not (ae_out / "extended").exists():
        print(f"[pipeline] autoencoder gate not passed ({report['mse_vs_copy_moving']:.2f}x > {preset.gate_ratio}x): training on", flush=True)
        (ae_out / "extended").touch()
        wait(run(train_cmd("training.train_autoencoder", preset, data, ae_out, 2 * preset.ae_steps), work / "logs" / "autoencoder_extended.log"))
        report = json.loads((ae_out / "autoencoder_eval.json").read_text())["heldout"]
    passed = report["mse_vs_copy_moving"] <= preset.gate_ratio
    print(f"[pipeline] autoencoder gate {'passed' if passed else 'NOT passed'}: held-out moving-token MSE "
          f"{report['mse_vs_copy_moving']:.2f}x, L1 {report['l1_vs_copy_moving']:.2f}x the copy floor", flush=True)
    gate = {"passed": passed, "ratio_required": preset.gate_ratio, "mse_vs_copy_moving": report["mse_vs_copy_moving"],
            "l1_vs_copy_moving": report["l1_vs_copy_moving"]}
    (work / "gate.json").write_text(json.dumps(gate, indent=2))
    return gate


@torch.no_grad()
def latent_map(ae, dynamics, encoder, data: Path, chunk: int, points: int, seed: int = 0):
    """Latent actions of training pairs (k = chunk), standardised, mapped to 2-D with UMAP."""
    from rla.data import FeatureCache, PairDataset, load_episodes, split_episodes
    from rla.latent_map import fit_latent_map
    from training.common import DEFAULT_CACHE

    train, _ = split_episodes(load_episodes(data), val_fraction=0.1, seed=0)
    cache = FeatureCache(DEFAULT_CACHE)
    tokens = [cache.episode_tokens(ep, encoder) for ep in train]
    pairs = PairDataset(train, k_range=(chunk, chunk), seed=seed, tokens=tokens)
    gen, us, meta = torch.Generator().manual_seed(seed), [], {k: [] for k in ("task", "episode_id", "t", "k", "success")}
    while sum(len(u) for u in us) < points:
        b = pairs.sample_batch(min(256, points), k=chunk, generator=gen)
        us.append((ae.encode(b["z_t"], b["z_k"]) - dynamics.u_mean) / dynamics.u_std)
        for key in meta:
            values = b[key]
            if key == "k":
                values = [values] * len(b["task"])  # one horizon per batch
            meta[key] += values.tolist() if torch.is_tensor(values) else list(values)
    u = torch.cat(us)[:points].flatten(1).numpy()
    meta = {k: np.asarray(v[:points]) for k, v in meta.items()}
    meta["success"] = meta["success"].astype(bool)
    return fit_latent_map(u, meta, seed=seed)


def assemble(preset: PipelinePreset, data: Path, work: Path, out: Path) -> None:
    from rla import EncoderSpec, LatentFlow, ModelPack, PackInfo, RegressionWorldModel, RLAAutoencoder, TokenFlowWorldModel, build_encoder
    from rla.data import load_episodes

    spec = EncoderSpec(kind="pixel_patch", image_size=preset.image_size, patch_size=preset.patch_size)
    encoder = build_encoder(spec)
    ae = RLAAutoencoder.load(work / "autoencoder" / "autoencoder")
    dyn = LatentFlow.load(work / "rla" / "rla")
    baselines = {"regression": RegressionWorldModel.load(work / "regression" / "regression"),
                 "token_flow": TokenFlowWorldModel.load(work / "token_flow" / "token_flow")}
    first = load_episodes(data / preset.tasks[0])[0]
    action_dim = first.actions.shape[1]
    names = ["dx", "dy", "dz", "gripper"][:action_dim]
    info = PackInfo(encoder=spec, action_dim=action_dim, action_names=names, control_mode=first.control_mode, chunk=10,
                    tasks=list(preset.tasks) + ["play"],
                    description=f"RLA-WM '{preset.model}' preset on ManiSkill Panda tasks, pixel-patch tokens "
                                f"({preset.image_size} px, patch {preset.patch_size}); built by training.pipeline")
    lm = latent_map(ae, dyn, encoder, data, info.chunk, preset.latent_map_points)
    reports = {name: json.loads(p.read_text()) for name, p in [
        ("autoencoder", work / "autoencoder" / "autoencoder_eval.json"), ("rla", work / "rla" / "rla_train.json"),
        ("regression", work / "regression" / "regression_train.json"), ("token_flow", work / "token_flow" / "token_flow_train.json"),
        ("autoencoder_gate", work / "gate.json")] if p.exists()}
    ModelPack(info, encoder, ae, dyn, baselines, latent_map=lm, results={"training": reports, "preset": asdict(preset)}).save(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--out", type=Path, required=True, help="pack folder to write")
    parser.add_argument("--data", type=Path, default=Path("data/pipeline"), help="where episodes are recorded")
    parser.add_argument("--work", type=Path, default=Path("runs/pipeline"), help="training runs and logs")
    parser.add_argument("--results", type=Path, default=Path("docs/results.md"), help="markdown results table")
    parser.add_argument("--holdout-task", default=None, help="task left out of the extra autoencoder ('none' skips it)")
    parser.add_argument("--until", choices=("collect", "train", "all"), default="all", help="stop after this stage")
    args = parser.parse_args(argv)
    preset, start = PRESETS[args.preset], time.time()
    if args.holdout_task is not None:
        preset = replace(preset, holdout_task=None if args.holdout_task.lower() == "none" else args.holdout_task)
    torch.set_num_threads(2)
    collect(preset, args.data, args.work)
    print(f"[pipeline] data ready after {(time.time() - start) / 60:.1f} min", flush=True)
    if args.until == "collect":
        return
    train_all(preset, args.data, args.work)
    print(f"[pipeline] models trained after {(time.time() - start) / 60:.1f} min", flush=True)
    assemble(preset, args.data, args.work, args.out)
    from training import evaluate

    results = evaluate.main(["--pack", str(args.out), "--data", str(args.data), "--out", str(args.out / "evaluation.json"),
                             "--markdown", str(args.results)])
    pack_results = json.loads((args.out / "results.json").read_text())
    pack_results["evaluation"] = results
    (args.out / "results.json").write_text(json.dumps(pack_results, indent=2))
    from training import properties

    extra = ["--holdout-ae", str(args.work / f"ae_without_{preset.holdout_task}" / "autoencoder"), "--holdout-task", preset.holdout_task] if preset.holdout_task else []
    properties.main(["--pack", str(args.out), "--data", str(args.data), "--out", str(args.results.parent / "properties.md"), *extra])
    print(f"[pipeline] done in {(time.time() - start) / 60:.1f} min -> {args.out}", flush=True)


if __name__ == "__main__":
    main()
