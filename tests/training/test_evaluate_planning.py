"""The planning benchmark: records, resume, summary with paired CIs, tables; end to end in ManiSkill (slow)."""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch

from rla.data.tasks import get_task
from rla.planning import PlannerConfig
from tests.app.tiny import build_tiny_pack, render, synthetic_episodes
from training import evaluate_planning as ep

TINY_CEM = PlannerConfig(candidates=8, iterations=1, elites=2, horizon=1, steps=1)


@pytest.fixture(scope="module")
def tiny_pack(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield build_tiny_pack(tmp_path_factory.mktemp("pack") / "tiny", synthetic_episodes(), train_steps=20)
    finally:
        torch.set_num_threads(before)


class SquareSim:
    """A stand-in for ManiSkill: the tiny pack's square world; the square is the object, the goal a fixed point."""

    GOAL = np.array([40.0, 40.0, 0.0])

    def __init__(self, task, *, size=64, control_mode="pd_ee_delta_pos"):
        self.spec, self.task, self.size = get_task(task), get_task(task).name, size
        self.resets, self.steps = [], 0
        self.env = None

    def reset(self, seed):
        self.resets.append(seed)
        self.pos = np.random.default_rng(seed).uniform(5, 45, 2)
        self.success = self.success_once = False
        return render(self.pos, -1.0, self.size)[0]

    def step(self, actions):
        for a in np.asarray(actions, dtype=np.float32).reshape(-1, 4).clip(-1, 1):
            self.pos = np.clip(self.pos + 1.5 * a[:2], 0, self.size - 12)
            self.steps += 1
        self.success = self.object_goal_distance() < 0.03
        self.success_once |= self.success
        return render(self.pos, -1.0, self.size)[0]

    def object_position(self):
        return np.array([self.pos[0], self.pos[1], 0.0]) / 100  # "metres"

    def object_goal_distance(self):
        return float(np.linalg.norm(self.object_position()[:2] - self.GOAL[:2] / 100))

    def close(self):
        pass


def square_expert(sim, seed, rng_seed=None):
    """Walk the square straight to the goal (the stand-in's scripted expert)."""
    start = sim.reset(seed)
    frame = start
    for _ in range(sim.spec.steps):
        d = SquareSim.GOAL[:2] - sim.pos
        frame = sim.step(np.r_[np.clip(d / 1.5, -1, 1), 0.0, -1.0])
    return {"start": start, "goal": frame, "object": sim.object_position(), "distance": sim.object_goal_distance(),
            "success": sim.success, "success_once": sim.success_once}


def config(pack, out, episodes=2, **kw):
    return ep.BenchmarkConfig(pack=str(pack), task="PushCube", episodes=episodes, out=out, planner=TINY_CEM, progress=False,
                              n_boot=200, **kw)


@pytest.fixture
def fake_sim(monkeypatch):
    sims = []

    def factory(task, **kw):
        sims.append(SquareSim(task, **kw))
        return sims[-1]

    monkeypatch.setattr(ep, "record_expert", square_expert)
    return factory, sims


def test_run_writes_records_and_a_summary_with_paired_cis(tiny_pack, tmp_path, fake_sim):
    factory, sims = fake_sim
    summary = ep.run(config(tiny_pack, tmp_path / "bench.json"), simulator_factory=factory)
    lines = (tmp_path / "bench.jsonl").read_text().splitlines()
    assert "settings" in json.loads(lines[0]) and len(lines) == 3
    records = [json.loads(x) for x in lines[1:]]
    assert [r["seed"] for r in records] == [50_000, 50_001]
    # every method starts from the same reset: expert, random floor and each world model
    assert sims[0].resets == [50_000] * 5 + [50_001] * 5
    assert sims[0].steps == 2 * 5 * 50  # 50 expert steps, then 10 chunks of 5 per method
    assert set(summary["methods"]) == {"expert", "rla", "regression", "token_flow", "random"}
    for entry in summary["methods"].values():
        d = entry["distance"]
        assert d["low"] <= d["mean"] <= d["high"] and math.isfinite(d["mean"])
    assert summary["methods"]["expert"]["distance"]["mean"] < 0.01  # the stand-in expert reaches the goal
    assert summary["methods"]["rla"]["cpu_seconds_per_plan"] > 0 and summary["methods"]["rla"]["plans_per_episode"] == 10
    assert {"rla - regression", "rla - token_flow", "regression - token_flow", "rla - random", "rla - expert"} <= set(summary["paired"])
    diff = summary["paired"]["rla - random"]["distance"]
    rla = np.mean([r["rla"]["distance"] for r in records])
    rnd = np.mean([r["random"]["distance"] for r in records])
    assert diff["mean"] == pytest.approx(rla - rnd)
    hashes = summary["settings"]["pack_hashes"]
    for name in ("pack.json", "autoencoder/model.safetensors", "dynamics/model.safetensors"):
        assert hashes[name] == hashlib.sha256((tiny_pack / name).read_bytes()).hexdigest(), name
    assert json.loads((tmp_path / "bench.json").read_text())["episodes"] == 2
    assert "python -m training.evaluate_planning" in summary["command"] and "--candidates 8" in summary["command"]


def test_resume_skips_done_episodes_and_plans_are_reproducible(tiny_pack, tmp_path, fake_sim):
    factory, sims = fake_sim
    ep.run(config(tiny_pack, tmp_path / "a.json", episodes=1, models=["rla"]), simulator_factory=factory)
    summary = ep.run(config(tiny_pack, tmp_path / "a.json", episodes=2, models=["rla"]), simulator_factory=factory)
    assert sims[1].resets == [50_001] * 3  # only the new seed ran: expert, random, rla
    assert summary["episodes"] == 2 and len((tmp_path / "a.jsonl").read_text().splitlines()) == 3
    done = ep.run(config(tiny_pack, tmp_path / "a.json", episodes=2, models=["rla"]), simulator_factory=factory)
    assert len(sims) == 2 and done["episodes"] == 2  # nothing left to do: no simulator was even built
    # the same seed in a fresh run gives the same plan and outcome
    again = ep.run(config(tiny_pack, tmp_path / "b.json", episodes=1, models=["rla"]), simulator_factory=factory)
    first = json.loads((tmp_path / "a.jsonl").read_text().splitlines()[1])
    assert again["methods"]["rla"]["distance"]["mean"] == first["rla"]["distance"]
    with pytest.raises(ValueError, match="other settings.*planner"):
        ep.run(ep.BenchmarkConfig(pack=str(tiny_pack), task="PushCube", episodes=1, out=tmp_path / "a.json", models=["rla"],
                                  planner=PlannerConfig(candidates=16, elites=2), progress=False), simulator_factory=factory)


def test_config_checks_seeds_and_tasks(tmp_path):
    with pytest.raises(ValueError, match="reserved for planning"):
        ep.BenchmarkConfig(pack="x", task="PushCube", episodes=2, out=tmp_path / "o.json", first_seed=0)
    with pytest.raises(ValueError, match="object-to-goal"):
        ep.BenchmarkConfig(pack="x", task="PushT", episodes=2, out=tmp_path / "o.json")
    with pytest.raises(ValueError, match="a .json file"):
        ep.BenchmarkConfig(pack="x", task="PushCube", episodes=2, out=tmp_path / "o.jsonl")
    with pytest.raises(SystemExit):
        ep.parse_args(["--pack", "x"])  # neither a run nor --table


def test_tables_are_written_between_markers(tiny_pack, tmp_path, fake_sim):
    factory, _ = fake_sim
    ep.run(config(tiny_pack, tmp_path / "s.json", episodes=1, models=["rla", "regression"]), simulator_factory=factory)
    doc = tmp_path / "planning.md"
    doc.write_text(f"# Planning\n\nintro\n\n{ep.MARK_START}\nold table\n{ep.MARK_END}\n\nafter\n")
    ep.main(["--table", str(tmp_path / "s.json"), "--doc", str(doc)])
    text = doc.read_text()
    assert text.startswith("# Planning\n\nintro") and text.rstrip().endswith("after") and "old table" not in text
    assert "| RLA-WM |" in text and "| Random plan (floor) |" in text and "| Scripted expert (ceiling) |" in text
    assert "| RLA-WM − Direct regression (DINO-WM style) |" in text and "python -m training.evaluate_planning" in text
    ep.main(["--table", str(tmp_path / "s.json"), "--doc", str(doc)])  # idempotent
    assert doc.read_text() == text


@pytest.mark.slow
def test_end_to_end_in_maniskill(tiny_pack, tmp_path):
    """The real simulator and expert, the tiny pack, one episode and a tiny CEM."""
    pytest.importorskip("mani_skill")
    summary = ep.run(config(tiny_pack, tmp_path / "ms.json", episodes=1, models=["rla"]))  # one model: rendering dominates
    record = json.loads((tmp_path / "ms.jsonl").read_text().splitlines()[1])
    for method in ("expert", "random", "rla"):
        assert math.isfinite(record[method]["distance"]) and isinstance(record[method]["success"], bool)
    assert record["expert"]["distance"] < record["random"]["distance"]  # the ceiling is above the floor
    assert record["rla"]["plans"] == math.ceil(50 / 5)
    assert summary["methods"]["rla"]["cpu_seconds_per_plan"] > 0
