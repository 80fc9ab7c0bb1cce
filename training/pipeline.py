"""Build a model pack from nothing: collect → splits → train (every seed) → assemble → evaluate.

    python -m training.pipeline --preset cpu --out assets/pack
    python -m training.pipeline --preset cpu --out packs/dinov2 --encoder vit_small_patch14_dinov2.lvd142m --image-size 224

Stages hand over named artefacts through ``WORK/manifest.json`` (:class:`Manifest`): each entry
names one file (or pack folder), its sha256, the settings that made it (``config``), what it was
made from (``inputs``: other artefacts by name and sha256), the episodes it saw and its budget.
A stage takes its inputs' paths from the manifest and records its outputs there. A collection or
training job whose entry is current (the file is there with the recorded sha256, made with the
same config from the same inputs) is not run again, so an interrupted run resumes where it
stopped, and an artefact whose input changed is made again with everything downstream of it.

1. **collect** scripted-expert episodes for the Panda tasks (clean and action-noise) and play for
   training, plus fresh validation and test episodes from their own reserved seed ranges
   (:data:`rla.data.splits.SEED_RANGES`): artefacts ``recording/<task>/<name>``. A file already in
   the data folder is taken only if it holds the planned episodes (task, seeds, frame size). The
   split of every episode is artefact ``splits`` (``WORK/splits.json``);
2. **train**, two one-thread processes at a time, for each training seed: the RLA autoencoder
   (``autoencoder<seed>``, gated on validation: it must clearly beat copying the start frame; the
   gate is recorded in its entry), the RLA flow dynamics on it (``rla<seed>``) and the
   direct-regression baseline (``regression<seed>``); for the first seed also token-space flow,
   an autoencoder without one task (``ae_holdout``, the "generalizes" property) and regression
   with RLA-WM's total CPU budget (``regression_matched``); with an encoder that is not invertible
   (any timm ViT: DINOv2, DINOv3, …) also the feature → RGB decoder (``rgb_decoder``);
3. **assemble** the first seed's models into the pack (with the latent-action map, the split, the
   preset and the manifest of its models: steps, CPU-seconds, episodes, config, sha256) and one
   pack per extra seed under ``WORK/packs``: artefacts ``pack/seed<k>``;
4. **evaluate** every seed on the test split (``docs/results.md``, artefact ``evaluation``) and
   measure the RLA properties (``docs/properties.md``, artefact ``properties``).

A pack whose entry is current (same folder, preset, encoder and models) is kept as it is.
Evaluate and properties run every time (their own caches make a rerun cheap), so a changed
evaluation is always applied. Every stage's wall time and
CPU-seconds go into ``WORK/timing.json`` and, with every job's CPU-seconds, into
``docs/timing.md`` (:mod:`training.timing`).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from rla.data import load_episodes
from rla.data.splits import Splits, check_seeds, seed_range
from rla.hub import file_sha256


@dataclass
class PipelinePreset:
    """Data, encoder, model size, training budgets and the dynamics recipe of a pack (saved in ``pack.json``)."""

    model: str = "cpu"  # rla.presets model size
    tasks: list = field(default_factory=lambda: ["PushCube", "PullCube", "PullCubeTool", "PokeCube"])
    clean_episodes: int = 30  # expert episodes per task (training)
    noisy_episodes: int = 15  # expert + action-noise episodes per task (mostly failures; training)
    noise: float = 0.5
    play_episodes: int = 40  # task-agnostic play episodes (training)
    val_episodes: int = 10  # fresh expert episodes per task for every choice (gate, ablations)
    test_episodes: int = 20  # fresh expert episodes per task for the reported evaluation
    encoder: str = "pixel_patch"  # "pixel_patch" or a full timm ViT name with its tag, e.g. vit_small_patch14_dinov2.lvd142m
    image_size: int = 128  # frames are recorded and encoded at this size (timm: a multiple of its patch size)
    patch_size: int = 16  # pixel_patch only (a timm ViT has its own)
    seeds: list = field(default_factory=lambda: [0, 1, 2])  # training seeds of RLA-WM and regression (token flow: the first)
    ae_steps: int = 2000  # autoencoder optimizer steps
    dynamics_steps: int = 1200  # RLA flow dynamics steps
    regression_steps: int = 1200  # direct regression steps
    token_flow_steps: int = 1200  # token-space flow steps
    rgb_decoder_steps: int = 2000  # feature → RGB decoder steps (encoders that are not invertible only)
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
                           token_flow_steps=20, rgb_decoder_steps=20, batch_size=8, minutes_cap=2, latent_map_points=60,
                           holdout_task=None),
}


# ---------------------------------------------------------------- the manifest

MANIFEST = "manifest.json"
PACK_FILES = ("pack.json", "latent_map.npz", "*/model.safetensors", "*/config.json")  # what identifies a pack folder


@lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def sha256_of(path: str | Path) -> str:
    """sha256 of a file; of a pack folder, over the names and sha256 of its :data:`PACK_FILES`
    (the results and probes later stages add to it do not change it)."""
    path = Path(path)
    if path.is_dir():
        files = sorted({f for pattern in PACK_FILES for f in path.glob(pattern) if f.is_file()})
        listing = "\n".join(f"{f.relative_to(path).as_posix()} {sha256_of(f)}" for f in files)
        return hashlib.sha256(listing.encode()).hexdigest()
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _plain(value):
    """``value`` as it reads back from JSON (tuples → lists, paths → strings), for comparisons."""
    return json.loads(json.dumps(value, default=str))


class Manifest:
    """The artefacts of one pipeline run, by name, in ``WORK/manifest.json``.

    An entry: ``stage``, ``path`` (a file or a pack folder), ``sha256``, ``config`` (the settings
    that made it), ``inputs`` (artefact name → the sha256 it had when this one was made), and what
    the stage adds: ``episodes`` (split, count, seeds), ``budget`` (steps, CPU-seconds), ``gate``…
    ``pending`` lists recordings a collection process was writing when the run stopped.
    """

    def __init__(self, file: str | Path):
        self.file = Path(file)
        data = json.loads(self.file.read_text()) if self.file.exists() else {}
        self.entries: dict = data.get("artefacts", {})
        self.pending: list = data.get("pending", [])

    @classmethod
    def of(cls, work: str | Path) -> Manifest:
        return cls(Path(work) / MANIFEST)

    def save(self) -> None:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"format": 1, "artefacts": self.entries, "pending": self.pending}, indent=1, default=str))
        tmp.replace(self.file)  # atomic: a run stopped mid-write keeps the previous manifest

    def record(self, name: str, path: str | Path, stage: str, *, config: dict | None = None, inputs: dict | None = None, **fields) -> dict:
        """Record the artefact ``name`` at ``path`` (its sha256 computed now) and save the manifest."""
        entry = {"stage": stage, "path": str(path), "sha256": sha256_of(path), "config": _plain(config or {}),
                 "inputs": dict(inputs or {}), **_plain(fields)}
        self.entries[name] = entry
        self.pending = [p for p in self.pending if p != name]
        self.save()
        return entry

    def stale(self, name: str, config: dict | None = None, inputs: dict | None = None, path: str | Path | None = None) -> str:
        """Why the entry of ``name`` cannot be used as it is ('' when it can): never recorded, recorded
        at another ``path`` (when given), its file gone or changed, made with another config (when
        given) or from other inputs (when given)."""
        entry = self.entries.get(name)
        if entry is None:
            return "not recorded"
        if path is not None and str(path) != entry["path"]:
            return f"it was recorded at {entry['path']}, not {path}"
        path = Path(entry["path"])
        if not path.exists():
            return f"{path} is gone"
        if sha256_of(path) != entry["sha256"]:
            return f"{path} changed since it was recorded"
        if config is not None and _plain(config) != entry["config"]:
            changed = sorted(k for k in set(entry["config"]) | set(_plain(config)) if entry["config"].get(k) != _plain(config).get(k))
            return f"its config changed ({', '.join(changed)})"
        if inputs is not None and inputs != entry["inputs"]:
            changed = sorted(k for k in set(entry["inputs"]) | set(inputs) if entry["inputs"].get(k) != inputs.get(k))
            return f"its inputs changed ({', '.join(changed)})"
        return ""

    def current(self, name: str, config: dict | None = None, inputs: dict | None = None, path: str | Path | None = None) -> bool:
        """Whether ``name`` is recorded and :meth:`stale` finds nothing; says why it is not when it was recorded."""
        why = self.stale(name, config, inputs, path)
        if why and why != "not recorded":
            print(f"[pipeline] {name} is made again: {why}", flush=True)
        return not why

    def require(self, name: str) -> Path:
        """The path of ``name``, after checking that the file is the one recorded."""
        why = self.stale(name)
        if why:
            raise SystemExit(f"{self.file}: artefact {name!r} cannot be used ({why}); run the stage that makes it "
                             "(python -m training.pipeline with the same --work)")
        return Path(self.entries[name]["path"])

    def sha(self, *names: str) -> dict:
        """``{name: recorded sha256}`` of recorded artefacts (an input list for :meth:`record`)."""
        return {n: self.entries[n]["sha256"] for n in names}


# ---------------------------------------------------------------- collect


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

    @property
    def artefact(self) -> str:
        return f"recording/{self.task}/{self.name}"

    def config(self, size: int) -> dict:
        """What the recorded file must hold."""
        return {"task": self.task, "episodes": self.episodes, "noise": self.noise, "seeds": [self.seed, self.seed + self.episodes - 1],
                "size": size}


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


def recording_mismatch(path: Path, r: Recording, size: int) -> str:
    """Why the recording at ``path`` is not the planned ``r`` at ``size`` px ('' when it is)."""
    import h5py

    from rla.data.tasks import CAMERA_NAME

    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        listed = meta.get("episodes", [])
        with h5py.File(path, "r") as f:
            shape = f[f"traj_{listed[0]['episode_id']}/obs/sensor_data/{CAMERA_NAME}/rgb"].shape if listed else None
    except Exception as err:  # missing json, truncated h5, another layout
        return f"unreadable: {type(err).__name__}: {err}"
    problems = []
    task = meta.get("rla", {}).get("task")
    if task != r.task:
        problems.append(f"task {task!r}, not {r.task!r}")
    seeds = [e.get("episode_seed") for e in listed]
    if seeds != list(range(r.seed, r.seed + r.episodes)):
        held = f"{len(seeds)} episodes of seeds {seeds[0]}–{seeds[-1]}" if seeds else "no episodes"
        problems.append(f"{held}, not {r.episodes} of seeds {r.seed}–{r.seed + r.episodes - 1}")
    noise = meta.get("rla", {}).get("collect_config", {}).get("noise")
    if noise is not None and float(noise) != r.noise:
        problems.append(f"action noise {noise}, not {r.noise}")
    if shape is not None and tuple(shape[1:3]) != (size, size):
        problems.append(f"{shape[1]}x{shape[2]} px frames, not {size}x{size}")
    return "; ".join(problems)


def run(cmd: list[str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    print("$", " ".join(cmd), f"> {log}", flush=True)
    return subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT)


def wait(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"stage failed ({' '.join(map(str, p.args[2:4]))}), exit {p.returncode}: see its log")


def collect(preset: PipelinePreset, data: Path, work: Path, manifest: Manifest | None = None) -> Splits:
    """Record every planned recording that is not current in the manifest, then the split."""
    manifest = manifest or Manifest.of(work)
    for r in recordings(preset):
        check_seeds(r.purpose, r.seed, r.episodes)
        path, config = data / r.task / f"{r.name}.h5", r.config(preset.image_size)
        if manifest.current(r.artefact, config, path=path):
            continue
        why = recording_mismatch(path, r, preset.image_size) if path.exists() else "missing"
        if why and path.exists() and r.artefact not in manifest.pending:
            raise SystemExit(f"{path} is not the recording this run plans ({why}): move it away or pass another --data")
        if why:  # missing, or left unfinished by a collection of this pipeline
            manifest.pending = sorted({*manifest.pending, r.artefact})
            manifest.save()
            cmd = [sys.executable, "-m", "training.collect", "--task", r.task, "--episodes", str(r.episodes), "--out", str(data / r.task),
                   "--name", r.name, "--noise", str(r.noise), "--seed", str(r.seed), "--size", str(preset.image_size), "--no-progress",
                   *(["--overwrite"] if path.exists() else [])]
            wait(run(cmd, work / "logs" / f"collect_{r.task}_{r.name}.log"))
            if why := recording_mismatch(path, r, preset.image_size):
                raise SystemExit(f"training.collect wrote {path}, which is not the planned recording: {why}")
        else:
            print(f"[pipeline] {path} holds the planned episodes: recorded as {r.artefact}", flush=True)
        manifest.record(r.artefact, path, "collect", config=config,
                        episodes={"split": r.split, "count": r.episodes, "seeds": config["seeds"], "purpose": r.purpose})
    return write_splits(preset, work, manifest)


def write_splits(preset: PipelinePreset, work: Path, manifest: Manifest) -> Splits:
    """The split of every recorded episode (artefact ``splits``), from the recordings in the manifest."""
    inputs = manifest.sha(*(r.artefact for r in recordings(preset)))
    config = {"recordings": [dict(asdict(r), file=f"{r.task}/{r.name}.h5") for r in recordings(preset)]}
    if manifest.current("splits", config, inputs):
        return Splits.load(manifest.require("splits"))
    splits = recorded_splits(preset, manifest)
    work.mkdir(parents=True, exist_ok=True)
    splits.save(work / "splits.json")
    manifest.record("splits", work / "splits.json", "splits", config=config, inputs=inputs,
                    episodes={role: len(getattr(splits, role)) for role in ("train", "val", "test")})
    return splits


def recorded_splits(preset: PipelinePreset, manifest: Manifest) -> Splits:
    """The split of every recorded episode, and the recordings it came from."""
    groups: dict[str, list] = {"train": [], "val": [], "test": []}
    for r in recordings(preset):
        groups[r.split] += load_episodes(manifest.require(r.artefact))
    table = [dict(asdict(r), file=f"{r.task}/{r.name}.h5", seeds=[r.seed, r.seed + r.episodes - 1]) for r in recordings(preset)]
    return Splits.from_roles(groups, recordings=table)


# ---------------------------------------------------------------- training jobs


@lru_cache(maxsize=8)
def encoder_weights_sha256(name: str, weights: str | None) -> str | None:
    """sha256 of the local weight file of timm model ``name`` (``None`` without ``--encoder-weights``)."""
    if weights is None:
        return None
    from rla.encoders import resolve_timm_weights

    return file_sha256(resolve_timm_weights(name, weights))


def encoder_is_invertible(preset: PipelinePreset) -> bool:
    """Whether the preset's encoder decodes its own tokens (else the pack needs an RGB decoder)."""
    from rla.encoders import PixelPatchEncoder, TimmEncoder

    return (PixelPatchEncoder if preset.encoder == "pixel_patch" else TimmEncoder).invertible


@dataclass
class Job:
    """One training process and the artefact it records: ``name``, the model file ``model``."""

    name: str  # the artefact it records in the manifest
    module: str
    out: Path  # run folder (the process's --out; its resumable checkpoint is inside)
    model: Path  # the saved model file inside ``out``
    steps: int  # optimizer steps (regression_matched: 0 until it starts, then RLA-WM's CPU-seconds in regression steps)
    deps: list = field(default_factory=list)  # artefacts it is made from besides the split and recordings
    extra: list = field(default_factory=list)
    report: str = ""  # the training report json inside ``out``
    seed: int = 0
    flags: dict = field(default_factory=dict)  # CLI flag → artefact in ``deps`` whose folder it gets, e.g. {"--autoencoder": "autoencoder0"}

    def config(self, preset: PipelinePreset, encoder_weights: str | None = None) -> dict:
        """What decides the trained model besides its inputs; recorded, and a change trains it again."""
        return {"module": self.module, "model": preset.model, "seed": self.seed, "steps": self.steps or "matched",
                "batch_size": preset.batch_size, "ema": preset.ema, "interaction": preset.interaction, "encoder": preset.encoder,
                "encoder_weights_sha256": encoder_weights_sha256(preset.encoder, encoder_weights), "image_size": preset.image_size,
                "patch_size": preset.patch_size, "extra": list(self.extra)}

    def command(self, preset: PipelinePreset, data: Path, work: Path, seed: int | None = None, *, manifest: Manifest | None = None,
                encoder_weights: str | None = None) -> list[str]:
        """The training command; the split and the input artefacts' paths come from the manifest."""
        manifest = manifest or Manifest.of(work)
        inputs = [arg for flag, dep in self.flags.items() for arg in (flag, str(manifest.require(dep).parent))]
        weights = ["--encoder-weights", str(encoder_weights)] if encoder_weights else []
        return [sys.executable, "-m", self.module, "--data", str(data), "--out", str(self.out), "--preset", preset.model,
                "--splits", str(manifest.require("splits")), "--encoder", preset.encoder, *weights,
                "--image-size", str(preset.image_size), "--patch-size", str(preset.patch_size), "--steps", str(self.steps),
                "--minutes", str(preset.minutes_cap), "--batch-size", str(preset.batch_size), "--threads", "1",
                "--seed", str(self.seed if seed is None else seed), "--ema", str(preset.ema), "--interaction", str(preset.interaction),
                *self.extra, *inputs]


def seed_dir(work: Path, seed: int) -> Path:
    return work / f"seed{seed}"


def jobs_for(preset: PipelinePreset, work: Path) -> list[Job]:
    """Every training job, in the order they should start: the long ones (autoencoders, then the
    budget-matched regression as soon as the first seed's RLA-WM is timed) first, so that two
    processes stay busy to the end. Dependencies come before their users."""
    dyn_extra = (["--whiten"] if preset.whiten else []) + ["--time-mean", str(preset.time_mean)]
    first = preset.seeds[0]
    autoencoders, first_seed, rest = [], [], []
    for seed in preset.seeds:
        d, ae = seed_dir(work, seed), f"autoencoder{seed}"
        autoencoders.append(Job(ae, "training.train_autoencoder", d / "autoencoder", d / "autoencoder" / "autoencoder" / "model.safetensors",
                                preset.ae_steps, report="autoencoder_eval.json", seed=seed))
        seed_jobs = [Job(f"regression{seed}", "training.train_world_model", d / "regression", d / "regression" / "regression" / "model.safetensors",
                         preset.regression_steps, extra=["--method", "regression"], report="regression_train.json", seed=seed),
                     Job(f"rla{seed}", "training.train_world_model", d / "rla", d / "rla" / "rla" / "model.safetensors", preset.dynamics_steps,
                         deps=[ae], extra=["--method", "rla", *dyn_extra], report="rla_train.json", seed=seed, flags={"--autoencoder": ae})]
        (first_seed if seed == first else rest).extend(seed_jobs)
    if preset.holdout_task:
        out = work / f"ae_without_{preset.holdout_task}"
        autoencoders.append(Job("ae_holdout", "training.train_autoencoder", out, out / "autoencoder" / "model.safetensors", preset.ae_steps,
                                extra=["--exclude-task", preset.holdout_task], report="autoencoder_eval.json", seed=first))
    if not encoder_is_invertible(preset):
        out = work / "rgb_decoder"
        autoencoders.append(Job("rgb_decoder", "training.train_rgb_decoder", out, out / "rgb_decoder" / "model.safetensors",
                                preset.rgb_decoder_steps, report="rgb_decoder_eval.json", seed=first))
    d = seed_dir(work, first)
    first_seed.append(Job(f"token_flow{first}", "training.train_world_model", d / "token_flow", d / "token_flow" / "token_flow" / "model.safetensors",
                          preset.token_flow_steps, extra=["--method", "token_flow", "--time-mean", str(preset.time_mean)],
                          report="token_flow_train.json", seed=first))
    out = d / "regression_matched"
    first_seed.append(Job("regression_matched", "training.train_world_model", out, out / "regression" / "model.safetensors", 0,
                          deps=[f"autoencoder{first}", f"rla{first}", f"regression{first}"], extra=["--method", "regression"],
                          report="regression_train.json", seed=first))
    return autoencoders + first_seed + rest


def job_inputs(preset: PipelinePreset, manifest: Manifest, job: Job) -> dict:
    """What ``job`` trains on, by recorded sha256: the split, the training and validation recordings, its ``deps``."""
    seen = [r.artefact for r in recordings(preset) if r.split in ("train", "val")]
    return manifest.sha("splits", *seen, *job.deps)


def matched_steps(manifest: Manifest, seeds: Sequence[int]) -> int:
    """Regression steps that cost as many CPU-seconds as RLA-WM's autoencoder + dynamics.

    Both sides are medians over the training seeds whose three jobs are recorded in ``manifest``
    (their budgets), so one run timed under other load (or with more threads) does not set the
    budget alone.
    """
    rla_cpu, reg_per_step = [], []
    for seed in seeds:
        names = f"autoencoder{seed}", f"rla{seed}", f"regression{seed}"
        if not all(n in manifest.entries for n in names):
            continue
        ae, dyn, reg = (manifest.entries[n]["budget"] for n in names)
        rla_cpu.append(ae["cpu_seconds"] + dyn["cpu_seconds"])
        reg_per_step.append(reg["cpu_seconds"] / max(1, reg["steps"]))
    if not rla_cpu:
        raise SystemExit(f"matched_steps: no seed of {list(seeds)} has its autoencoder, dynamics and regression recorded in {manifest.file}")
    return int(round(float(np.median(rla_cpu)) / float(np.median(reg_per_step))))


def record_job(manifest: Manifest, job: Job, preset: PipelinePreset, config: dict, inputs: dict, wall_minutes: float, **fields) -> dict:
    """Record a finished job's model with the episodes and budget its training report states."""
    report = json.loads((job.out / job.report).read_text())
    train = report["train"]
    excluded = [v for flag, v in zip(job.extra, job.extra[1:]) if flag == "--exclude-task"]
    episodes = {"split": "train", "count": report.get("train_episodes"), "excluded_tasks": excluded,
                "recordings": [r.artefact for r in recordings(preset) if r.split == "train"]}
    budget = {"steps": train["steps"], "steps_planned": job.steps, "cpu_seconds": train.get("cpu_seconds"), "wall_minutes": wall_minutes,
              "batch_size": train["config"]["batch_size"], "ema": train["config"].get("ema_decay", 0.0), "minutes_cap": preset.minutes_cap}
    return manifest.record(job.name, job.model, "train", config=config, inputs=inputs, episodes=episodes, budget=budget,
                           report=str(job.out / job.report), encoder=report.get("encoder"), **fields)


def train_all(preset: PipelinePreset, data: Path, work: Path, timing: dict, parallel: int = 2, only: set | None = None, *,
              manifest: Manifest | None = None, encoder_weights: str | None = None) -> None:
    """Run the jobs (``only`` these, when given) that are not current in the manifest, ``parallel``
    at a time, each once its dependencies are recorded; record each as it finishes."""
    manifest = manifest or Manifest.of(work)
    jobs = {j.name: j for j in jobs_for(preset, work) if only is None or j.name in only}
    configs = {name: j.config(preset, encoder_weights) for name, j in jobs.items()}
    finished: set[str] = set()
    manifest.require("splits")
    ready = lambda j: all(d in finished if d in jobs else manifest.current(d) for d in j.deps)  # noqa: E731
    for name, j in jobs.items():  # dependencies first: a job is current only if what it was made from is
        if ready(j) and manifest.current(name, configs[name], job_inputs(preset, manifest, j)):
            finished.add(name)
    running: dict[str, tuple[subprocess.Popen, float, dict]] = {}
    while len(finished) < len(jobs):
        for name, j in jobs.items():
            if len(running) >= parallel:
                break
            if name in finished or name in running or not ready(j):
                continue
            if name == "regression_matched":
                j.steps = matched_steps(manifest, preset.seeds)
            if name.startswith("rla"):
                gate_autoencoder(preset, data, work, j.seed, manifest=manifest, encoder_weights=encoder_weights)
            inputs = job_inputs(preset, manifest, j)
            cmd = j.command(preset, data, work, manifest=manifest, encoder_weights=encoder_weights)
            running[name] = (run(cmd, work / "logs" / f"{name}.log"), time.time(), inputs)
        if not running:
            raise SystemExit(f"pipeline stuck: jobs {sorted(set(jobs) - finished)} wait for jobs that cannot run")
        time.sleep(2)
        for name, (proc, started, inputs) in list(running.items()):
            if proc.poll() is None:
                continue
            wait(proc)
            del running[name]
            finished.add(name)
            minutes = round((time.time() - started) / 60, 2)
            budget = record_job(manifest, jobs[name], preset, configs[name], inputs, minutes)["budget"]
            timing[name] = {"wall_minutes": minutes, "cpu_seconds": budget["cpu_seconds"], "steps": budget["steps"]}
            print(f"[pipeline] {name}: {budget['steps']} steps, {budget['cpu_seconds']} CPU-s, {minutes} min", flush=True)
            work.mkdir(parents=True, exist_ok=True)
            (work / "timing.json").write_text(json.dumps(timing, indent=2))


def gate_autoencoder(preset: PipelinePreset, data: Path, work: Path, seed: int, *, manifest: Manifest | None = None,
                     encoder_weights: str | None = None) -> dict:
    """Train the world model only on an autoencoder that clearly beats copying the start frame.

    If validation MSE on moving tokens is not below ``gate_ratio`` x the copy floor, training
    resumes once for as many steps again; the outcome goes into the autoencoder's manifest entry
    either way (and the entry is not gated again).
    """
    manifest = manifest or Manifest.of(work)
    name = f"autoencoder{seed}"
    entry = manifest.entries[name]
    if "gate" in entry:
        return entry["gate"]
    report = json.loads(Path(entry["report"]).read_text())["heldout"]
    extended = False
    if report["mse_vs_copy_moving"] > preset.gate_ratio:
        print(f"[pipeline] autoencoder {seed} gate not passed ({report['mse_vs_copy_moving']:.2f}x > {preset.gate_ratio}x): training on", flush=True)
        job = next(j for j in jobs_for(preset, work) if j.name == name)
        config = job.config(preset, encoder_weights)
        job.steps *= 2
        started = time.time()
        wait(run(job.command(preset, data, work, manifest=manifest, encoder_weights=encoder_weights), work / "logs" / f"{name}_extended.log"))
        minutes = entry["budget"]["wall_minutes"] + round((time.time() - started) / 60, 2)
        entry = record_job(manifest, job, preset, config, entry["inputs"], minutes)
        report, extended = json.loads(Path(entry["report"]).read_text())["heldout"], True
    passed = report["mse_vs_copy_moving"] <= preset.gate_ratio
    print(f"[pipeline] autoencoder {seed} gate {'passed' if passed else 'NOT passed'}: validation moving-token MSE "
          f"{report['mse_vs_copy_moving']:.2f}x, L1 {report['l1_vs_copy_moving']:.2f}x the copy floor", flush=True)
    gate = {"passed": passed, "extended": extended, "ratio_required": preset.gate_ratio, "split": "val",
            "mse_vs_copy_moving": report["mse_vs_copy_moving"], "l1_vs_copy_moving": report["l1_vs_copy_moving"]}
    entry["gate"] = gate
    manifest.save()
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


PACK_MODELS = {"autoencoder": "autoencoder{seed}", "dynamics": "rla{seed}", "regression": "regression{seed}", "token_flow": "token_flow{seed}",
               "regression_matched": "regression_matched", "rgb_decoder": "rgb_decoder"}  # pack model → artefact
FIRST_SEED_ONLY = ("regression_matched",)  # trained on the first seed; its pack alone names it


def pack_artefacts(manifest: Manifest, seed: int, first: bool) -> dict:
    """The recorded artefact of each model of the pack of ``seed``: ``{pack model: artefact}``."""
    out = {}
    for model, pattern in PACK_MODELS.items():
        name = pattern.format(seed=seed)
        if name in manifest.entries and (first or model not in FIRST_SEED_ONLY):
            out[model] = name
    return out


def pack_manifest(m: Manifest, seed: int, splits: Splits, first: bool) -> dict:
    """``PackInfo.manifest`` of the pack of ``seed``: what each of its models was made from, as the
    run's manifest records it (steps, CPU-seconds, batch, EMA, sha256; artefact, episodes, config, inputs)."""
    out = {"seed": seed, "train_episodes": len(splits.train), "val_episodes": len(splits.val), "test_episodes": len(splits.test),
           "splits_sha256": m.entries["splits"]["sha256"], "models": {}}
    for model, name in pack_artefacts(m, seed, first).items():
        e = m.entries[name]
        b = e["budget"]
        out["models"][model] = {"steps": b["steps"], "cpu_seconds": b["cpu_seconds"], "batch_size": b["batch_size"], "ema": b["ema"],
                                "sha256": e["sha256"], "artefact": name, "encoder": e.get("encoder"), "episodes": e["episodes"],
                                "config": e["config"], "inputs": e["inputs"]}
    gate = m.entries[f"autoencoder{seed}"].get("gate")
    if gate:
        out["autoencoder_gate"] = gate
    return out


def assemble(preset: PipelinePreset, data: Path, work: Path, out: Path, seed: int, splits: Splits, with_map: bool = True, *,
             encoder=None, manifest: Manifest | None = None) -> dict:
    """Write the pack of ``seed`` to ``out`` from the recorded models and record it as ``pack/seed<seed>``
    (kept as it is when that entry is current: same folder, preset, encoder and models)."""
    from rla import EncoderSpec, LatentFlow, ModelPack, PackInfo, RegressionWorldModel, RLAAutoencoder, TokenFlowWorldModel, build_encoder
    from rla.rgb_decoder import RGBDecoder
    from training.common import encoder_spec

    m = manifest or Manifest.of(work)
    encoder = encoder or build_encoder(encoder_spec(preset))
    spec, first = EncoderSpec.of(encoder), seed == preset.seeds[0]
    names = pack_artefacts(m, seed, first)
    config = {"preset": asdict(preset), "encoder": spec.to_dict(), "fingerprint": encoder.fingerprint,
              "latent_map_points": preset.latent_map_points if with_map else 0}
    inputs = m.sha("splits", *names.values(), *(r.artefact for r in recordings(preset)))
    if m.current(f"pack/seed{seed}", config, inputs, path=out):
        print(f"[pipeline] pack/seed{seed} in {out} is current: kept", flush=True)
        return m.entries[f"pack/seed{seed}"]
    folder = lambda model: m.require(names[model]).parent  # noqa: E731  (checked against its recorded sha256)
    ae, dyn = RLAAutoencoder.load(folder("autoencoder")), LatentFlow.load(folder("dynamics"))
    baselines = {"regression": RegressionWorldModel.load(folder("regression"))}
    if "token_flow" in names:
        baselines["token_flow"] = TokenFlowWorldModel.load(folder("token_flow"))
    rgb_decoder = None if encoder.invertible else RGBDecoder.load(folder("rgb_decoder"))
    episodes = load_episodes([m.require(r.artefact) for r in recordings(preset)])
    first_ep = next(e for e in episodes if e.task == preset.tasks[0])
    action_dim = first_ep.actions.shape[1]
    tokens = (f"pixel-patch tokens ({spec.image_size} px, patch {spec.patch_size})" if spec.kind == "pixel_patch"
              else f"{spec.name} tokens ({spec.image_size} px, patch {spec.patch_size})")
    description = f"RLA-WM '{preset.model}' preset on ManiSkill Panda tasks, {tokens}, training seed {seed}; built by training.pipeline"
    info = PackInfo(encoder=spec, action_dim=action_dim, action_names=["dx", "dy", "dz", "gripper"][:action_dim], control_mode=first_ep.control_mode,
                    chunk=10, tasks=list(preset.tasks) + ["play"], description=description, splits=splits.to_dict(), preset=asdict(preset),
                    manifest=pack_manifest(m, seed, splits, first))
    lm = latent_map(ae, dyn, encoder, splits.select(episodes, "train"), info.chunk, preset.latent_map_points) if with_map else None
    for stale in STALE_FILES:  # made from an earlier pack in this folder: the later stages write them anew
        (out / stale).unlink(missing_ok=True)
    ModelPack(info, encoder, ae, dyn, baselines, rgb_decoder=rgb_decoder, latent_map=lm).save(out)
    return m.record(f"pack/seed{seed}", out, "assemble", config=config, inputs=inputs)


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


def configured_preset(args) -> PipelinePreset:
    """The named preset with the command line's overrides (a command without some of them, e.g.
    ``training.ablate``, keeps the preset's)."""
    preset = PRESETS[args.preset]
    if getattr(args, "holdout_task", None) is not None:
        preset = replace(preset, holdout_task=None if args.holdout_task.lower() == "none" else args.holdout_task)
    if getattr(args, "seeds", None):
        preset = replace(preset, seeds=list(args.seeds))
    if args.encoder:
        preset = replace(preset, encoder=args.encoder)
    if args.image_size:
        preset = replace(preset, image_size=args.image_size)
    return preset


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--out", type=Path, required=True, help="pack folder to write")
    parser.add_argument("--data", type=Path, default=Path("data/pipeline"), help="where episodes are recorded")
    parser.add_argument("--work", type=Path, default=Path("runs/pipeline"), help="training runs, logs and the manifest")
    parser.add_argument("--results", type=Path, default=Path("docs/results.md"), help="markdown results table")
    parser.add_argument("--encoder", default=None,
                        help="'pixel_patch' or a full timm ViT name with its tag, e.g. vit_small_patch14_dinov2.lvd142m (default: the preset's)")
    parser.add_argument("--encoder-weights", default=None, help="a local weight file or folder for a timm encoder (default: HF cache, then Hub)")
    parser.add_argument("--image-size", type=int, default=None, help="frame and encoder input size in pixels (default: the preset's)")
    parser.add_argument("--holdout-task", default=None, help="task left out of the extra autoencoder ('none' skips it)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (default: the preset's)")
    parser.add_argument("--until", choices=("collect", "train", "assemble", "all"), default="all", help="stop after this stage")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads of assemble, evaluate and properties (training jobs: one each); 1 on a busy machine")
    args = parser.parse_args(argv)
    preset, start = configured_preset(args), time.time()
    torch.set_num_threads(args.threads)
    from rla import build_encoder
    from training.common import encoder_spec

    encoder = build_encoder(encoder_spec(preset), weights=args.encoder_weights)  # wrong name, size or weights fail here, before any work
    weights = ["--encoder-weights", str(args.encoder_weights)] if args.encoder_weights else []  # evaluate and properties load the packs with them
    manifest = Manifest.of(args.work)
    timing_file = args.work / "timing.json"
    timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}

    def stage(name: str, t0: float, c0: float) -> None:
        timing[name] = {"wall_minutes": round((time.time() - t0) / 60, 2), "cpu_seconds": round(time.process_time() - c0, 1),
                        "threads": args.threads}
        args.work.mkdir(parents=True, exist_ok=True)
        timing_file.write_text(json.dumps(timing, indent=2))
        print(f"[pipeline] {name} done after {(time.time() - start) / 60:.1f} min", flush=True)

    t0, c0 = time.time(), time.process_time()
    splits = collect(preset, args.data, args.work, manifest)
    stage("collect", t0, c0)
    if args.until == "collect":
        return
    t0, c0 = time.time(), time.process_time()
    train_all(preset, args.data, args.work, timing, manifest=manifest, encoder_weights=args.encoder_weights)
    stage("train", t0, c0)
    if args.until == "train":
        return
    t0, c0 = time.time(), time.process_time()
    packs = seed_packs(preset, args.work, args.out)
    for seed, pack in zip(preset.seeds, packs):
        assemble(preset, args.data, args.work, pack, seed, splits, with_map=pack == args.out, encoder=encoder, manifest=manifest)
    stage("assemble", t0, c0)
    if args.until == "assemble":
        print(f"[pipeline] pack written (not evaluated: --until assemble) in {(time.time() - start) / 60:.1f} min -> {args.out}", flush=True)
        return
    from training import evaluate

    t0, c0 = time.time(), time.process_time()
    pack_paths = [str(manifest.require(f"pack/seed{s}")) for s in preset.seeds]
    matched = manifest.require("regression_matched").parent
    evaluation = args.work / "evaluation.json"
    eval_args = ["--stride", str(preset.eval_stride), "--reported", preset.reported, *later_seed_steps(preset)]
    results = evaluate.main(["--pack", *pack_paths, "--data", str(args.data), "--out", str(evaluation), "--markdown", str(args.results),
                             *eval_args, "--extra", f"regression_matched={matched}", "--cache", str(args.work / "eval_cache"), *weights,
                             "--threads", str(args.threads)])
    weights_sha = encoder_weights_sha256(preset.encoder, args.encoder_weights)
    manifest.record("evaluation", evaluation, "evaluate", config={"split": "test", "args": eval_args, "markdown": str(args.results),
                                                                  "encoder_weights_sha256": weights_sha},
                     inputs=manifest.sha(*(f"pack/seed{s}" for s in preset.seeds), "regression_matched"))
    stage("evaluate", t0, c0)
    summary = {k: v for k, v in results.items() if k != "methods"}
    summary["methods"] = {name: {k: v for k, v in entry.items() if k != "per_window"} for name, entry in results["methods"].items()}
    (args.out / "results.json").write_text(json.dumps({"evaluation": summary, "timing": timing}, indent=1))
    from training import properties

    t0, c0 = time.time(), time.process_time()
    holdout = ["ae_holdout"] if preset.holdout_task else []
    extra = ["--holdout-ae", str(manifest.require("ae_holdout").parent), "--holdout-task", preset.holdout_task] if holdout else []
    report = args.results.parent / "properties.md"
    properties.main(["--pack", pack_paths[0], "--data", str(args.data), "--out", str(report), *extra, *weights, "--threads", str(args.threads)])
    manifest.record("properties", report, "properties", config={"holdout_task": preset.holdout_task, "encoder_weights_sha256": weights_sha},
                     inputs=manifest.sha(f"pack/seed{preset.seeds[0]}", *holdout))
    stage("properties", t0, c0)
    from training import timing as timing_report

    timing_report.main(["--work", str(args.work), "--preset", args.preset, "--out", str(args.results.parent / "timing.md")])
    print(f"[pipeline] done in {(time.time() - start) / 60:.1f} min -> {args.out}", flush=True)


if __name__ == "__main__":
    from training.common import cli

    cli(main)
