"""Planning benchmark: which world model of a pack is the better planner, scored in the simulator.

    python -m training.evaluate_planning --pack assets/pack --task PushCube --episodes 30 --out runs/planning/PushCube.json
    python -m training.evaluate_planning --table runs/planning/PushCube.json runs/planning/PullCube.json --doc docs/planning.md

Each episode is a fresh scripted-expert run from a reserved planning seed
(``rla.data.splits.SEED_RANGES["planning"]``). The start is the env reset at that seed, the goal
image is the expert's final frame. Every world model (same seed, same CEM settings, same noise
seed) then plans towards the goal tokens with :class:`rla.planning.CEMPlanner` (MPC by default:
replan after each executed chunk) and its actions are executed in ManiSkill for as many chunks as
cover the expert's episode length. A random plan (uniform actions, one held per chunk) is the
floor and the expert itself the ceiling.

Scores, from the simulator state after the last action: the xy distance of the task object to the
task's goal marker (primary; the expert's own distance is the ceiling), its distance to where the
expert left it (the state the goal image shows), success at the end and at any step, the token
distance of the last observed frame to the goal, and CPU-seconds per plan. Means come with 95 %
bootstrap CIs over episodes and world models are compared pairwise on the same episodes
(:func:`rla.stats.paired_difference`).

Resumable: one JSON line per finished episode goes to ``<out stem>.jsonl`` (its first line holds
the settings, which a resumed run must match); seeds already there are skipped; the summary
``--out`` is rewritten after every episode.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from rla.data.splits import SEED_RANGES, check_seeds
from rla.hub import file_sha256
from rla.labels import method_label
from rla.planning import OBJECT_GOAL, CEMPlanner, PlannerConfig, TaskSimulator, random_actions, token_cost

MARK_START, MARK_END = "<!-- planning-table:start -->", "<!-- planning-table:end -->"
EXPERT, RANDOM = "expert", "random"


@dataclass
class BenchmarkConfig:
    """Arguments of one benchmark run (the CLI flags)."""

    pack: str  # pack folder or Hub repo id
    task: str  # short task name with an object-to-goal distance (rla.planning.OBJECT_GOAL)
    episodes: int  # planning episodes (seeds first_seed … first_seed + episodes − 1)
    out: Path  # summary JSON; per-episode records go to the .jsonl beside it
    models: list | None = None  # world models to plan with (default: every one of the pack)
    mode: str = "mpc"  # "mpc" or "open_loop"
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    first_seed: int = SEED_RANGES["planning"][0]
    threads: int = 1  # torch CPU threads
    progress: bool = True
    n_boot: int = 2000  # bootstrap replicates for the CIs

    def __post_init__(self):
        from rla.data.tasks import get_task

        self.out = Path(self.out)
        if self.out.suffix != ".json":
            raise ValueError(f"--out names the summary, a .json file (the records go to the .jsonl beside it), got {self.out}")
        self.task = get_task(self.task).name
        if self.task not in OBJECT_GOAL:
            raise ValueError(f"task {self.task} has no object-to-goal distance; choose one of {', '.join(OBJECT_GOAL)}")
        if self.episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {self.episodes}")
        if self.mode not in ("mpc", "open_loop"):
            raise ValueError(f"mode must be 'mpc' or 'open_loop', got {self.mode!r}")
        check_seeds("planning", self.first_seed, self.episodes)

    @property
    def records_path(self) -> Path:
        return self.out.with_suffix(".jsonl")


def pack_hashes(pack_path) -> dict:
    """sha256 of ``pack.json`` and every checkpoint of the pack folder, keyed by relative path."""
    from rla.pack import resolve_pack

    root = resolve_pack(pack_path)
    files = [root / "pack.json", *sorted(root.glob("*/model.safetensors"))]
    return {str(f.relative_to(root)): file_sha256(f) for f in files if f.is_file()}


def settings(cfg: BenchmarkConfig, pack, hashes: dict) -> dict:
    """Everything a resumed run must share with the records it continues."""
    return {
        "task": cfg.task, "mode": cfg.mode, "models": cfg.models, "planner": asdict(cfg.planner), "pack_hashes": hashes,
        "chunk": pack.info.chunk, "image_size": pack.encoder.image_size,
    }


def read_records(path: Path, expected: dict) -> list[dict]:
    """The episode records already in ``path`` (none if it does not exist); raises if its settings differ."""
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not lines or "settings" not in lines[0]:
        raise ValueError(f"{path} does not start with a settings line; delete it or choose another --out")
    if lines[0]["settings"] != expected:
        differ = sorted(k for k in set(expected) | set(lines[0]["settings"]) if lines[0]["settings"].get(k) != expected.get(k))
        raise ValueError(f"{path} was written with other settings ({', '.join(differ)} differ); "
                         "resume with the same flags and pack, or choose another --out")
    return lines[1:]


def append_record(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def record_expert(sim: TaskSimulator, seed: int, rng_seed: int | None = None) -> dict:
    """Run the task's scripted expert from ``seed``: start and goal frames and where it left the object."""
    from rla.experts import make_expert

    start = sim.reset(seed)
    expert = make_expert(sim.task, sim.env, control_mode="pd_ee_delta_pos", rng=np.random.default_rng(seed if rng_seed is None else rng_seed))
    expert.reset()
    frame = start
    for _ in range(sim.spec.steps):
        frame = sim.step(expert.act())
    return {"start": start, "goal": frame, "object": sim.object_position(), "distance": sim.object_goal_distance(),
            "success": sim.success, "success_once": sim.success_once}


def outcome(sim: TaskSimulator, goal_object: np.ndarray, z_last: torch.Tensor | None = None, z_goal: torch.Tensor | None = None) -> dict:
    """Scores from the simulator state after the last executed action."""
    out = {"distance": sim.object_goal_distance(),
           "goal_frame_distance": float(np.linalg.norm(sim.object_position()[:2] - goal_object[:2])),
           "success": sim.success, "success_once": sim.success_once}
    if z_last is not None:
        out["token_distance"] = float(token_cost(z_last, z_goal)[0])
    return out


def run_episode(cfg: BenchmarkConfig, pack, sim: TaskSimulator, seed: int, num_chunks: int) -> dict:
    """Expert, random floor and every world model's plan on one seed."""
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    expert = record_expert(sim, seed)
    expert_s = time.perf_counter() - t0
    enc = pack.encoder
    z_start, z_goal = enc.encode(expert["start"]), enc.encode(expert["goal"])
    record = {"seed": seed, "task": cfg.task, "num_chunks": num_chunks,
              EXPERT: {"distance": expert["distance"], "goal_frame_distance": 0.0, "success": expert["success"],
                       "success_once": expert["success_once"], "token_distance": 0.0, "seconds": expert_s}}
    info, K = pack.info, pack.info.chunk

    def execute(actions):
        return enc.encode(sim.step(actions))

    sim.reset(seed)
    g = torch.Generator().manual_seed(seed)
    z = z_start
    for a in random_actions(num_chunks, K, info.action_dim, low=info.action_low, high=info.action_high, hold=cfg.planner.hold, generator=g):
        z = execute(a)
    record[RANDOM] = outcome(sim, expert["object"], z, z_goal)
    for name in cfg.models:
        planner = CEMPlanner.for_pack(pack, name, cfg.planner)
        sim.reset(seed)
        t0 = time.perf_counter()
        run = planner.control(z_start, z_goal, execute, num_chunks, mode=cfg.mode, generator=torch.Generator().manual_seed(seed))
        record[name] = {**outcome(sim, expert["object"], run.tokens[-1:], z_goal), "plans": len(run.plans),
                        "cpu_seconds_per_plan": run.cpu_seconds_per_plan, "plan_seconds": run.seconds,
                        "episode_seconds": time.perf_counter() - t0, "plan_cost": run.plans[-1].cost}
    return record


# ---------------------------------------------------------------------- summary and tables
METRICS = [  # key, label, scale, digits, lower is better
    ("distance", "object–goal distance (cm) ↓", 100.0, 1, True),
    ("goal_frame_distance", "object–goal-image distance (cm) ↓", 100.0, 1, True),
    ("success", "success at end ↑", 100.0, 0, False),
    ("token_distance", "token distance to goal ↓", 1.0, 4, True),
]


def summarise(records: list[dict], methods: list[str], n_boot: int = 2000) -> dict:
    """Mean and 95 % CI per method and metric, and paired differences between methods (same episodes)."""
    from rla.stats import hierarchical_bootstrap, paired_difference, verdict

    def column(method, key):
        return np.array([float(r[method][key]) if r[method].get(key) is not None else math.nan for r in records])

    out = {"episodes": len(records), "seeds": [r["seed"] for r in records], "methods": {}, "paired": {}}
    for m in methods:
        entry = {key: hierarchical_bootstrap(column(m, key), n_boot=n_boot) for key, *_ in METRICS}
        entry["success_once"] = hierarchical_bootstrap(column(m, "success_once"), n_boot=n_boot)
        if m not in (EXPERT, RANDOM):
            entry["cpu_seconds_per_plan"] = float(np.mean(column(m, "cpu_seconds_per_plan")))
            entry["plans_per_episode"] = float(np.mean(column(m, "plans")))
        out["methods"][m] = entry
    models = [m for m in methods if m not in (EXPERT, RANDOM)]
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]] + [(m, RANDOM) for m in models] + [(m, EXPERT) for m in models]
    for a, b in pairs:
        diff = paired_difference(column(a, "distance"), column(b, "distance"), n_boot=n_boot)
        diff["verdict"] = verdict(diff["low"], diff["high"], lower_is_better=True, names=(a, b))
        out["paired"][f"{a} - {b}"] = {"distance": diff}
    return out


def _fmt(ci: dict, scale: float, digits: int) -> str:
    if ci is None or not math.isfinite(ci.get("mean", math.nan)):
        return "n/a"
    m, lo, hi = (ci[k] * scale for k in ("mean", "low", "high"))
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def markdown_table(summary: dict) -> str:
    """One task's results: a row per method with 95 % CIs, then the paired differences."""
    s = summary
    planner = s["settings"]["planner"]
    head = (f"**{s['settings']['task']}**, {s['episodes']} episodes (seeds {min(s['seeds'])}–{max(s['seeds'])}), "
            f"{s['settings']['mode'].replace('_', '-')}, {planner['candidates']} candidates × {planner['iterations']} iterations, "
            f"horizon {planner['horizon']} chunks, {planner['steps']} Euler steps, {s['num_chunks']} chunks executed")
    cols = [label for _, label, *_ in METRICS] + ["CPU-s / plan"]
    lines = [head, "", "| method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for m, entry in s["methods"].items():
        cells = [_fmt(entry.get(key), scale, digits) for key, _, scale, digits, _ in METRICS]
        cpu = entry.get("cpu_seconds_per_plan")
        cells.append(f"{cpu:.2f}" if cpu is not None else "—")
        lines.append(f"| {method_label(m)} | " + " | ".join(cells) + " |")
    lines += ["", "| paired difference (same episodes) | object–goal distance (cm), A − B | verdict |", "|---|---|---|"]
    for pair, entry in s["paired"].items():
        a, b = pair.split(" - ")
        d = entry["distance"]
        lines.append(f"| {method_label(a)} − {method_label(b)} | {_fmt(d, 100.0, 1)} | {d['verdict']} |")
    return "\n".join(lines)


def write_doc(doc: Path, summaries: list[dict], commands: list[str]) -> None:
    """Replace the block between the planning-table markers of ``doc`` (appended if absent)."""
    body = "\n\n".join(markdown_table(s) for s in summaries)
    cmds = "\n".join(f"    {c}" for c in commands)
    block = f"{MARK_START}\n<!-- written by python -m training.evaluate_planning --table …; do not edit by hand -->\n\n" \
            f"Made by:\n\n{cmds}\n\n{body}\n\n{MARK_END}"
    text = doc.read_text() if doc.exists() else ""
    if MARK_START in text and MARK_END in text:
        before, rest = text.split(MARK_START, 1)
        after = rest.split(MARK_END, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + ("\n\n" if text else "") + block + "\n"
    doc.write_text(text)


# ---------------------------------------------------------------------- the run
def run(cfg: BenchmarkConfig, *, simulator_factory=TaskSimulator) -> dict:
    """Run (or resume) the benchmark; returns the summary that is also written to ``cfg.out``."""
    from tqdm import tqdm

    from rla.pack import ModelPack

    torch.set_num_threads(cfg.threads)
    pack = ModelPack.load(cfg.pack)
    available = list(pack.world_models())
    cfg.models = list(cfg.models or available)
    unknown = [m for m in cfg.models if m not in available]
    if unknown:
        raise ValueError(f"the pack has no world model {unknown}; it has {', '.join(available)}")
    cfg.planner = CEMPlanner.for_pack(pack, cfg.models[0], cfg.planner).config  # the pack's action bounds
    hashes = pack_hashes(cfg.pack)
    expected = settings(cfg, pack, hashes)
    records = read_records(cfg.records_path, expected)
    if not cfg.records_path.exists():
        append_record(cfg.records_path, {"settings": expected})
    done = {r["seed"] for r in records}
    seeds = [s for s in range(cfg.first_seed, cfg.first_seed + cfg.episodes) if s not in done]
    from rla.data.tasks import get_task

    num_chunks = math.ceil(get_task(cfg.task).steps / pack.info.chunk)
    methods = [EXPERT, *cfg.models, RANDOM]
    wanted = set(range(cfg.first_seed, cfg.first_seed + cfg.episodes))
    summary = None
    start = time.perf_counter()
    sim = simulator_factory(cfg.task, size=pack.encoder.image_size, control_mode=pack.info.control_mode) if seeds else None
    bar = tqdm(total=cfg.episodes, initial=cfg.episodes - len(seeds), desc=f"planning {cfg.task}", unit="ep", disable=not cfg.progress)
    try:
        for seed in [None, *seeds]:  # None: summarise what is already there
            if seed is not None:
                record = run_episode(cfg, pack, sim, seed, num_chunks)
                append_record(cfg.records_path, record)
                records.append(record)
                bar.update(1)
                bar.set_postfix({m: f"{record[m]['distance'] * 100:.1f}cm" for m in methods})
            mine = [r for r in records if r["seed"] in wanted]
            if mine:
                summary = {"command": command(cfg), "settings": expected, "num_chunks": num_chunks,
                           "pack": {"path": str(cfg.pack), "manifest": pack.info.manifest}, "elapsed_s": time.perf_counter() - start,
                           **summarise(mine, methods, cfg.n_boot)}
                cfg.out.parent.mkdir(parents=True, exist_ok=True)
                cfg.out.write_text(json.dumps(summary, indent=2))
    finally:
        bar.close()
        if sim is not None:
            sim.close()
    return summary


def command(cfg: BenchmarkConfig) -> str:
    p, d = cfg.planner, PlannerConfig()
    args = ["--pack", cfg.pack, "--task", cfg.task, "--episodes", cfg.episodes, "--out", cfg.out]
    args += ["--mode", cfg.mode] if cfg.mode != "mpc" else []
    args += ["--models", *cfg.models] if cfg.models else []
    for flag, name in FLAGS:
        if getattr(p, name) != getattr(d, name):
            args += [flag, getattr(p, name)]
    args += ["--first-seed", cfg.first_seed] if cfg.first_seed != SEED_RANGES["planning"][0] else []
    return "python -m training.evaluate_planning " + " ".join(shlex.quote(str(a)) for a in args)


FLAGS = [("--candidates", "candidates"), ("--iterations", "iterations"), ("--horizon", "horizon"), ("--elites", "elites"),
         ("--euler-steps", "steps"), ("--foreground-weight", "foreground_weight"), ("--select", "select")]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.evaluate_planning", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pack", default="assets/pack", help="pack folder or Hub repo id")
    p.add_argument("--task", help=f"one of {', '.join(OBJECT_GOAL)}")
    p.add_argument("--episodes", type=int, default=30)
    p.add_argument("--out", type=Path, help="summary JSON (records go to the .jsonl beside it)")
    p.add_argument("--models", nargs="+", default=None, help="world models to plan with (default: all of the pack)")
    p.add_argument("--mode", default="mpc", choices=("mpc", "open_loop"))
    d = PlannerConfig()
    for flag, name in FLAGS:
        p.add_argument(flag, dest=name, type=type(getattr(d, name)), default=getattr(d, name))
    p.add_argument("--first-seed", type=int, default=SEED_RANGES["planning"][0], help="first reset seed (planning range)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--table", nargs="+", type=Path, default=None, help="summary JSONs to turn into markdown (no evaluation)")
    p.add_argument("--doc", type=Path, default=None, help="with --table: write the tables into this file between markers")
    a = p.parse_args(argv)
    if a.table is None and (a.task is None or a.out is None):
        p.error("--task and --out are required (or --table to write tables from finished runs)")
    return a


def main(argv=None):
    a = parse_args(argv)
    if a.table is not None:
        summaries = [json.loads(path.read_text()) for path in a.table]
        if a.doc:
            write_doc(a.doc, summaries, [s["command"] for s in summaries])
            print(f"wrote {len(summaries)} table(s) into {a.doc}")
        else:
            print("\n\n".join(markdown_table(s) for s in summaries))
        return summaries
    planner = PlannerConfig(**{name: getattr(a, name) for _, name in FLAGS})  # a bad setting: a ValueError, a message (cli)
    cfg = BenchmarkConfig(pack=a.pack, task=a.task, episodes=a.episodes, out=a.out, models=a.models, mode=a.mode,
                          planner=planner, first_seed=a.first_seed, threads=a.threads, progress=a.progress)
    sys.stdin = open(os.devnull)  # never block on a ManiSkill asset-download prompt
    summary = run(cfg)
    print(markdown_table(summary))
    print(f"\nsummary: {cfg.out}  records: {cfg.records_path}  ({summary['elapsed_s']:.0f} s)")
    return summary


if __name__ == "__main__":
    from training.common import cli

    cli(main)
