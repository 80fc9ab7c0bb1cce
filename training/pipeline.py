"""Build a model pack from nothing: collect → splits → train (every seed) → evaluate → save.

    python -m training.pipeline --preset cpu --out assets/pack

Stages (each skipped when its output exists, so an interrupted run resumes where it stopped):

1. **collect** scripted-expert episodes for the Panda tasks (clean and action-noise) and play for
   training, plus fresh validation and test episodes from their own reserved seed ranges
   (:data:`rla.data.splits.SEED_RANGES`); the split is written to ``WORK/splits.json``;
2. **train**, two one-thread processes at a time, for each training seed: the RLA autoencoder
   (gated on validation: it must clearly beat copying the start frame), the RLA flow dynamics on
   it, and the direct-regression baseline; for the first seed also token-space flow, an
   autoencoder without one task (the "generalizes" property) and regression with RLA-WM's total
   CPU budget (autoencoder included);
3. **assemble** the first seed's models into the pack (with the latent-action map, the split, the
   preset and a manifest of every model: steps, CPU-seconds, sha256) and one pack per extra seed
   under ``WORK/packs``;
4. **evaluate** every seed on the test split (``docs/results.md``) and measure the RLA properties
   (``docs/properties.md``).

Every stage's wall time and CPU-seconds go into ``WORK/timing.json`` and, with every job's
CPU-seconds, into ``docs/timing.md`` (:mod:`training.timing`).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from rla.data import load_episodes
from rla.data.splits import Splits, check_seeds, seed_range
from rla.hub import file_sha256


@dataclass
class PipelinePreset:
    """Data, model size, training budgets and the dynamics recipe of a pack (saved in ``pack.json``)."""

    model: str = "cpu"  # rla.presets model size
    tasks: list = field(default_factory=lambda: ["PushCube", "PullCube", "PullCubeTool", "PokeCube"])
    clean_episodes: int = 30  # expert episodes per task (training)
    noisy_episodes: int = 15  # expert + action-noise episodes per task (mostly failures; training)
    noise: float = 0.5
    play_episodes: int = 40  # task-agnostic play episodes (training)
    val_episodes: int = 10  # fresh expert episodes per task for every choice (gate, ablations)
    test_episodes: int = 20  # fresh expert episodes per task for the reported evaluation
    image_size: int = 128
    patch_size: int = 16
    seeds: list = field(default_factory=lambda: [0, 1, 2])  # training seeds of RLA-WM and regression (token flow: the first)
    ae_steps: int = 2000  # autoencoder optimizer steps
    dynamics_steps: int = 1200  # RLA flow dynamics steps
    regression_steps: int = 1200  # direct regression steps
    token_flow_steps: int = 1200  # token-space flow steps
    batch_size: int = 64  # every model
    whiten: bool = False  # RLA dynamics: ZCA-whitened latents
    time_mean: float = 0.5  # RLA dynamics: logit-normal time mean (> 0: toward noise); 0.5 chosen on validation (docs/ablations.md)
    ema: float = 0.0  # EMA decay of the weights, every model (0 = off)
    interaction: float = 0.0  # fraction of pairs drawn near robot-object interaction, every model
    # the RLA-WM row named as *the* method before the test run (lowest validation moving-token L1 of the three modes in every ablation)
    reported: str = "rla@10 mean8"
    minutes_cap: float = 120.0  # safety cap per training job (steps end training first)
    latent_map_points: int = 1500
    gate_ratio: float = 0.5  # the autoencoder must reach this x the copy floor's MSE on moving tokens (validation)
    holdout_task: str | None = "PokeCube"  # an extra autoencoder trained without it (the "generalizes" property)
    eval_stride: int = 10  # a test window starts every this many frames
    sweep_all_seeds: bool = False  # Euler-step sweep (1/3/10/30) on every seed; False: first seed, the reported steps on all (CPU time)


PRESETS = {
    "cpu": PipelinePreset(),
    # seconds-scale, for tests and smoke runs
    "tiny": PipelinePreset(model="tiny", tasks=["PushCube"], clean_episodes=2, noisy_episodes=1, play_episodes=1, val_episodes=1,
                           test_episodes=1, seeds=[0], image_size=64, ae_steps=20, dynamics_steps=20, regression_steps=20,
                           token_flow_steps=20, batch_size=8, minutes_cap=2, latent_map_points=60, holdout_task=None),
}


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


def run(cmd: list[str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    print("$", " ".join(cmd), f"> {log}", flush=True)
    return subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def wait(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"stage failed ({' '.join(map(str, p.args[2:4]))}), exit {p.returncode}: see its log")


def collect(preset: PipelinePreset, data: Path, work: Path) -> Splits:
    for r in recordings(preset):
        check_seeds(r.purpose, r.seed, r.episodes)
        if (data / r.task / f"{r.name}.h5").exists():
            continue
        cmd = [sys.executable, "-m", "training.collect", "--task", r.task, "--episodes", str(r.episodes), "--out", str(data / r.task),
               "--name", r.name, "--noise", str(r.noise), "--seed", str(r.seed), "--size", str(preset.image_size), "--no-progress"]
        wait(run(cmd, work / "logs" / f"collect_{r.task}_{r.name}.log"))
    splits = recorded_splits(preset, data)
    work.mkdir(parents=True, exist_ok=True)
    splits.save(work / "splits.json")
    return splits


def recorded_splits(preset: PipelinePreset, data: Path) -> Splits:
    """The split of every recorded episode, and the recordings it came from."""
    groups: dict[str, list] = {"train": [], "val": [], "test": []}
    for r in recordings(preset):
        groups[r.split] += load_episodes(data / r.task / f"{r.name}.h5")
    table = [dict(asdict(r), file=f"{r.task}/{r.name}.h5", seeds=[r.seed, r.seed + r.episodes - 1]) for r in recordings(preset)]
    return Splits.from_roles(groups, recordings=table)


# ---------------------------------------------------------------- training jobs


@dataclass
class Job:
    """One training process: its command, the jobs it waits for and the file that marks it done."""

    name: str
    module: str
    out: Path  # run folder
    done: Path  # the saved model; the job is skipped when it exists
    steps: int
    deps: list = field(default_factory=list)
    extra: list = field(default_factory=list)
    report: str = ""  # the training report json inside ``out``

    def command(self, preset: PipelinePreset, data: Path, work: Path, seed: int) -> list[str]:
        return [sys.executable, "-m", self.module, "--data", str(data), "--out", str(self.out), "--preset", preset.model,
                "--splits", str(work / "splits.json"), "--image-size", str(preset.image_size), "--patch-size", str(preset.patch_size),
                "--steps", str(self.steps), "--minutes", str(preset.minutes_cap), "--batch-size", str(preset.batch_size),
                "--threads", "1", "--seed", str(seed), "--ema", str(preset.ema), "--interaction", str(preset.interaction), *self.extra]


def seed_dir(work: Path, seed: int) -> Path:
    return work / f"seed{seed}"


def jobs_for(preset: PipelinePreset, work: Path) -> list[Job]:
    """Every training job, in the order they should start: the long ones (autoencoders, then the
    budget-matched regression as soon as the first seed's RLA-WM is timed) first, so that two
    processes stay busy to the end."""
    dyn_extra = (["--whiten"] if preset.whiten else []) + ["--time-mean", str(preset.time_mean)]
    first = preset.seeds[0]
    autoencoders, first_seed, rest = [], [], []
    for seed in preset.seeds:
        d = seed_dir(work, seed)
        ae = d / "autoencoder" / "autoencoder"
        autoencoders.append(Job(f"autoencoder{seed}", "training.train_autoencoder", d / "autoencoder", ae / "model.safetensors",
                                preset.ae_steps, report="autoencoder_eval.json"))
        seed_jobs = [Job(f"regression{seed}", "training.train_world_model", d / "regression", d / "regression" / "regression" / "model.safetensors",
                         preset.regression_steps, extra=["--method", "regression"], report="regression_train.json"),
                     Job(f"rla{seed}", "training.train_world_model", d / "rla", d / "rla" / "rla" / "model.safetensors", preset.dynamics_steps,
                         deps=[f"autoencoder{seed}"], extra=["--method", "rla", "--autoencoder", str(ae), *dyn_extra], report="rla_train.json")]
        (first_seed if seed == first else rest).extend(seed_jobs)
    if preset.holdout_task:
        out = work / f"ae_without_{preset.holdout_task}"
        autoencoders.append(Job("ae_holdout", "training.train_autoencoder", out, out / "autoencoder" / "model.safetensors", preset.ae_steps,
                                extra=["--exclude-task", preset.holdout_task], report="autoencoder_eval.json"))
    d = seed_dir(work, first)
    first_seed.append(Job(f"token_flow{first}", "training.train_world_model", d / "token_flow", d / "token_flow" / "token_flow" / "model.safetensors",
                          preset.token_flow_steps, extra=["--method", "token_flow", "--time-mean", str(preset.time_mean)],
                          report="token_flow_train.json"))
    out = d / "regression_matched"
    first_seed.append(Job("regression_matched", "training.train_world_model", out, out / "regression" / "model.safetensors", 0,
                          deps=[f"autoencoder{first}", f"rla{first}", f"regression{first}"], extra=["--method", "regression"],
                          report="regression_train.json"))
    return autoencoders + first_seed + rest


def matched_steps(work: Path, seeds: Sequence[int]) -> int:
    """Regression steps that cost as many CPU-seconds as RLA-WM's autoencoder + dynamics.

    Both sides are medians over the training seeds whose runs are done, so one run timed under
    other load (or with more threads) does not set the budget alone.
    """
    cpu = lambda p: json.loads(p.read_text())["train"]  # noqa: E731
    rla_cpu, reg_per_step = [], []
    for seed in seeds:
        d = seed_dir(work, seed)
        files = d / "autoencoder" / "autoencoder_eval.json", d / "rla" / "rla_train.json", d / "regression" / "regression_train.json"
        if not all(f.exists() for f in files):
            continue
        ae, dyn, reg = (cpu(f) for f in files)
        rla_cpu.append(ae["cpu_seconds"] + dyn["cpu_seconds"])
        reg_per_step.append(reg["cpu_seconds"] / max(1, reg["steps"]))
    if not rla_cpu:
        raise SystemExit(f"matched_steps: no seed of {list(seeds)} has its autoencoder, dynamics and regression trained in {work}")
    return int(round(float(np.median(rla_cpu)) / float(np.median(reg_per_step))))


def train_all(preset: PipelinePreset, data: Path, work: Path, timing: dict, parallel: int = 2, only: set | None = None) -> None:
    """Run the jobs (``only`` these, when given), ``parallel`` at a time, each when its dependencies are done."""
    jobs = {j.name: j for j in jobs_for(preset, work) if only is None or j.name in only}
    seed_of = {j.name: int("".join(c for c in j.name if c.isdigit()) or preset.seeds[0]) for j in jobs.values()}
    finished = {name for name, j in jobs.items() if j.done.exists()}
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    while len(finished) < len(jobs):
        for name, j in jobs.items():
            if len(running) >= parallel:
                break
            if name in finished or name in running or not all(d in finished for d in j.deps):
                continue
            if name == "regression_matched":
                j.steps = matched_steps(work, preset.seeds)
            if name.startswith("rla"):
                gate_autoencoder(preset, data, work, seed_of[name])
            running[name] = (run(j.command(preset, data, work, seed_of[name]), work / "logs" / f"{name}.log"), time.time())
        if not running:
            raise SystemExit(f"pipeline stuck: jobs {sorted(set(jobs) - finished)} wait for jobs that cannot run")
        time.sleep(2)
        for name, (proc, started) in list(running.items()):
            if proc.poll() is None:
                continue
            wait(proc)
            del running[name]
            finished.add(name)
            report = json.loads((jobs[name].out / jobs[name].report).read_text())["train"]
            timing[name] = {"wall_minutes": round((time.time() - started) / 60, 2), "cpu_seconds": report.get("cpu_seconds"),
                            "steps": report["steps"]}
            print(f"[pipeline] {name}: {report['steps']} steps, {report.get('cpu_seconds')} CPU-s, "
                  f"{timing[name]['wall_minutes']} min", flush=True)
            (work / "timing.json").write_text(json.dumps(timing, indent=2))


def gate_autoencoder(preset: PipelinePreset, data: Path, work: Path, seed: int) -> dict:
    """Train the world model only on an autoencoder that clearly beats copying the start frame.

    If validation MSE on moving tokens is not below ``gate_ratio`` x the copy floor, training
    resumes once for as many steps again; the outcome is recorded either way.
    """
    ae_out = seed_dir(work, seed) / "autoencoder"
    gate_file = ae_out / "gate.json"
    if gate_file.exists():
        return json.loads(gate_file.read_text())
    report = json.loads((ae_out / "autoencoder_eval.json").read_text())["heldout"]
    extended = False
    if report["mse_vs_copy_moving"] > preset.gate_ratio:
        print(f"[pipeline] autoencoder {seed} gate not passed ({report['mse_vs_copy_moving']:.2f}x > {preset.gate_ratio}x): training on", flush=True)
        job = next(j for j in jobs_for(preset, work) if j.name == f"autoencoder{seed}")
        job.steps *= 2
        wait(run(job.command(preset, data, work, seed), work / "logs" / f"autoencoder{seed}_extended.log"))
        report, extended = json.loads((ae_out / "autoencoder_eval.json").read_text())["heldout"], True
    passed = report["mse_vs_copy_moving"] <= preset.gate_ratio
    print(f"[pipeline] autoencoder {seed} gate {'passed' if passed else 'NOT passed'}: validation moving-token MSE "
          f"{report['mse_vs_copy_moving']:.2f}x, L1 {report['l1_vs_copy_moving']:.2f}x the copy floor", flush=True)
    gate = {"passed": passed, "extended": extended, "ratio_required": preset.gate_ratio, "split": "val",
            "mse_vs_copy_moving": report["mse_vs_copy_moving"], "l1_vs_copy_moving": report["l1_vs_copy_moving"]}
    gate_file.write_text(json.dumps(gate, indent=2))
    return gate


# ---------------------------------------------------------------- packs


@torch.no_grad()
def latent_map(ae, dynamics, encoder, train_episodes: list, chunk: int, points: int, seed: int = 0):
    """Latent actions of training pairs (k = chunk), standardised, mapped to 2-D with UMAP."""
    from rla.data import FeatureCache, PairDataset
    from rla.latent_map import fit_latent_map, map_features
    from training.common import DEFAULT_CACHE

    cache = FeatureCache(DEFAULT_CACHE)
    tokens = [cache.episode_tokens(ep, encoder) for ep in train_episodes]
    pairs = PairDataset(train_episodes, k_range=(chunk, chunk), seed=seed, tokens=tokens)
    gen, us, meta = torch.Generator().manual_seed(seed), [], {k: [] for k in ("task", "episode_id", "t", "k", "success")}
    while sum(len(u) for u in us) < points:
        b = pairs.sample_batch(min(256, points), k=chunk, generator=gen)
        us.append(map_features(dynamics, ae.encode(b["z_t"], b["z_k"])))
        for key in meta:
            values = b[key]
            if key == "k":
                values = [values] * len(b["task"])  # one horizon per batch
            meta[key] += values.tolist() if torch.is_tensor(values) else list(values)
    u = np.concatenate(us)[:points]
    meta = {k: np.asarray(v[:points]) for k, v in meta.items()}
    meta["success"] = meta["success"].astype(bool)
    return fit_latent_map(u, meta, seed=seed)


def manifest(preset: PipelinePreset, work: Path, seed: int, splits: Splits) -> dict:
    """What each model of the pack of ``seed`` was trained on: steps, CPU-seconds, seed, sha256."""
    d = seed_dir(work, seed)
    entries = {"autoencoder": (d / "autoencoder" / "autoencoder_eval.json", d / "autoencoder" / "autoencoder"),
               "dynamics": (d / "rla" / "rla_train.json", d / "rla" / "rla"),
               "regression": (d / "regression" / "regression_train.json", d / "regression" / "regression"),
               "token_flow": (d / "token_flow" / "token_flow_train.json", d / "token_flow" / "token_flow"),
               "regression_matched": (d / "regression_matched" / "regression_train.json", d / "regression_matched" / "regression")}
    out = {"seed": seed, "train_episodes": len(splits.train), "val_episodes": len(splits.val), "test_episodes": len(splits.test), "models": {}}
    for name, (report_file, folder) in entries.items():
        if not report_file.exists():
            continue
        train = json.loads(report_file.read_text())["train"]
        out["models"][name] = {"steps": train["steps"], "cpu_seconds": train.get("cpu_seconds"), "batch_size": train["config"]["batch_size"],
                               "ema": train["config"].get("ema_decay", 0.0), "sha256": file_sha256(folder / "model.safetensors")}
    gate = d / "autoencoder" / "gate.json"
    if gate.exists():
        out["autoencoder_gate"] = json.loads(gate.read_text())
    return out


def assemble(preset: PipelinePreset, data: Path, work: Path, out: Path, seed: int, splits: Splits, with_map: bool = True) -> None:
    from rla import EncoderSpec, LatentFlow, ModelPack, PackInfo, RegressionWorldModel, RLAAutoencoder, TokenFlowWorldModel, build_encoder

    d = seed_dir(work, seed)
    spec = EncoderSpec(kind="pixel_patch", image_size=preset.image_size, patch_size=preset.patch_size)
    encoder = build_encoder(spec)
    ae = RLAAutoencoder.load(d / "autoencoder" / "autoencoder")
    dyn = LatentFlow.load(d / "rla" / "rla")
    baselines = {"regression": RegressionWorldModel.load(d / "regression" / "regression")}
    if (d / "token_flow" / "token_flow").exists():
        baselines["token_flow"] = TokenFlowWorldModel.load(d / "token_flow" / "token_flow")
    episodes = load_episodes(data)
    first = next(e for e in episodes if e.task == preset.tasks[0])
    action_dim = first.actions.shape[1]
    names = ["dx", "dy", "dz", "gripper"][:action_dim]
    info = PackInfo(encoder=spec, action_dim=action_dim, action_names=names, control_mode=first.control_mode, chunk=10,
                    tasks=list(preset.tasks) + ["play"],
                    description=f"RLA-WM '{preset.model}' preset on ManiSkill Panda tasks, pixel-patch tokens "
                                f"({preset.image_size} px, patch {preset.patch_size}), training seed {seed}; built by training.pipeline",
                    splits=splits.to_dict(), preset=asdict(preset), manifest=manifest(preset, work, seed, splits))
    lm = latent_map(ae, dyn, encoder, splits.select(episodes, "train"), info.chunk, preset.latent_map_points) if with_map else None
    for stale in STALE_FILES:  # made from an earlier pack in this folder: the later stages write them anew
        (out / stale).unlink(missing_ok=True)
    ModelPack(info, encoder, ae, dyn, baselines, latent_map=lm).save(out)


STALE_FILES = ("results.json", "evaluation.json", "probes.npz", "latent_map.npz")


def seed_packs(preset: PipelinePreset, work: Path, out: Path) -> list[Path]:
    """The pack of every training seed: ``out`` for the first, ``WORK/packs/seed<k>`` for the rest."""
    return [out] + [work / "packs" / f"seed{s}" for s in preset.seeds[1:]]


def later_seed_steps(preset: PipelinePreset) -> list[str]:
    """``training.evaluate`` arguments scoring the seeds after the first at the reported row's Euler steps only."""
    if preset.sweep_all_seeds:
        return []
    steps = preset.reported.split(" ")[0].removeprefix("rla@")
    if not steps.isdigit():
        raise ValueError(f"reported row must start with rla@<steps>: {preset.reported!r}")
    return ["--later-seed-steps", steps]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--out", type=Path, required=True, help="pack folder to write")
    parser.add_argument("--data", type=Path, default=Path("data/pipeline"), help="where episodes are recorded")
    parser.add_argument("--work", type=Path, default=Path("runs/pipeline"), help="training runs and logs")
    parser.add_argument("--results", type=Path, default=Path("docs/results.md"), help="markdown results table")
    parser.add_argument("--holdout-task", default=None, help="task left out of the extra autoencoder ('none' skips it)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (default: the preset's)")
    parser.add_argument("--until", choices=("collect", "train", "all"), default="all", help="stop after this stage")
    args = parser.parse_args(argv)
    preset, start = PRESETS[args.preset], time.time()
    if args.holdout_task is not None:
        preset = replace(preset, holdout_task=None if args.holdout_task.lower() == "none" else args.holdout_task)
    if args.seeds:
        preset = replace(preset, seeds=list(args.seeds))
    torch.set_num_threads(2)
    timing_file = args.work / "timing.json"
    timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}

    def stage(name: str, t0: float, c0: float) -> None:
        timing[name] = {"wall_minutes": round((time.time() - t0) / 60, 2), "cpu_seconds": round(time.process_time() - c0, 1)}
        args.work.mkdir(parents=True, exist_ok=True)
        timing_file.write_text(json.dumps(timing, indent=2))
        print(f"[pipeline] {name} done after {(time.time() - start) / 60:.1f} min", flush=True)

    t0, c0 = time.time(), time.process_time()
    splits = collect(preset, args.data, args.work)
    stage("collect", t0, c0)
    if args.until == "collect":
        return
    t0, c0 = time.time(), time.process_time()
    train_all(preset, args.data, args.work, timing)
    stage("train", t0, c0)
    if args.until == "train":
        return
    t0, c0 = time.time(), time.process_time()
    packs = seed_packs(preset, args.work, args.out)
    for seed, pack in zip(preset.seeds, packs):
        assemble(preset, args.data, args.work, pack, seed, splits, with_map=pack == args.out)
    stage("assemble", t0, c0)
    from training import evaluate

    t0, c0 = time.time(), time.process_time()
    matched = seed_dir(args.work, preset.seeds[0]) / "regression_matched" / "regression"
    results = evaluate.main(["--pack", *map(str, packs), "--data", str(args.data), "--out", str(args.work / "evaluation.json"),
                             "--markdown", str(args.results), "--stride", str(preset.eval_stride), "--reported", preset.reported,
                             "--extra", f"regression_matched={matched}", "--cache", str(args.work / "eval_cache"),
                             *later_seed_steps(preset)])
    stage("evaluate", t0, c0)
    summary = {k: v for k, v in results.items() if k != "methods"}
    summary["methods"] = {name: {k: v for k, v in entry.items() if k != "per_window"} for name, entry in results["methods"].items()}
    (args.out / "results.json").write_text(json.dumps({"evaluation": summary, "timing": timing}, indent=1))
    from training import properties

    t0, c0 = time.time(), time.process_time()
    holdout = args.work / f"ae_without_{preset.holdout_task}" / "autoencoder"
    extra = ["--holdout-ae", str(holdout), "--holdout-task", preset.holdout_task] if preset.holdout_task else []
    properties.main(["--pack", str(args.out), "--data", str(args.data), "--out", str(args.results.parent / "properties.md"), *extra])
    stage("properties", t0, c0)
    from training import timing as timing_report

    timing_report.main(["--work", str(args.work), "--preset", args.preset, "--out", str(args.results.parent / "timing.md")])
    print(f"[pipeline] done in {(time.time() - start) / 60:.1f} min -> {args.out}", flush=True)


if __name__ == "__main__":
    from training.common import cli

    cli(main)
