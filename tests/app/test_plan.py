"""The Plan tab through gradio_client: ``/plan`` and ``/execute_plan`` against the tiny pack."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.app.conftest import serve
from tests.app.tiny import render

EP, UP = "Example episode", "Upload"


def plan(client, *, start=("synthetic-0", 0), goal=("synthetic-0", 30), model="rla", candidates=16, iterations=2, horizon=2, elites=4,
         steps=2, foreground=0.0, seed=0, start_image=None, goal_image=None):
    s_src, g_src = (UP if start_image else EP), (UP if goal_image else EP)
    return client.predict(s_src, start[0], start[1], start_image, g_src, goal[0], goal[1], goal_image, model, candidates, iterations,
                          horizon, elites, steps, foreground, seed, api_name="/plan")


def plan_json(out) -> dict:
    files = [Path(f) for f in out[-1]]
    assert sorted(f.suffix for f in files) == [".gif", ".json", ".mp4"]
    return json.loads(next(f for f in files if f.suffix == ".json").read_text())


def test_plan_shows_imagined_frames_costs_elites_and_downloads(client):
    out = plan(client, horizon=3, iterations=3)
    picture, costs, elites, status, sim_picture, sim_status, downloads = out
    with Image.open(picture) as im:
        w, h = im.size
    assert w > 4 * h  # one row: start, 3 imagined chunks, goal
    cost_traces = json.loads(costs["plot"])["data"]
    assert {t["name"] for t in cost_traces} >= {"best candidate", "elites (mean)", "the plan"}
    assert all(len(t["x"]) == 3 for t in cost_traces if t["name"] != "the plan")  # one point per CEM iteration
    elite_traces = json.loads(elites["plot"])["data"]
    assert len(elite_traces) == 2 * 4  # elites and plan, per action dimension
    assert len(elite_traces[0]["y"]) == 4 * 3  # 4 elites × 3 chunks
    assert "Planned **3 chunks** (15 steps)" in status and "RLA-WM" in status
    assert sim_picture is None and "reset seed" in sim_status  # synthetic episodes have no simulator behind them
    record = plan_json(out)
    actions = np.array(record["actions"])
    assert actions.shape == (3, 5, 4) and np.abs(actions).max() <= 1.0
    assert (actions == actions[:, :1]).all()  # one action held per chunk
    assert record["model"] == "rla" and record["start"] == {"episode": "synthetic-0", "t": 0, "task": "PushCube"}


def test_plans_are_reproducible_and_depend_on_seed_model_and_goal(client):
    a = plan_json(plan(client, seed=3))
    assert plan_json(plan(client, seed=3))["actions"] == a["actions"]
    assert plan_json(plan(client, seed=4))["actions"] != a["actions"]
    reg = plan(client, model="regression", seed=3)
    assert "Direct regression" in reg[3] and plan_json(reg)["actions"] != a["actions"]
    # another goal, another plan (the tiny RLA-WM barely reacts to actions, so ask the regression model)
    assert plan_json(plan(client, model="regression", seed=3, goal=("synthetic-0", 10)))["actions"] != plan_json(reg)["actions"]


def test_the_plan_beats_the_first_guesses(client):
    # the tiny pack's regression model reacts to actions (its RLA-WM barely does: trained for seconds)
    out = plan(client, model="regression", candidates=64, iterations=4, start=("synthetic-0", 0), goal=("synthetic-0", 10), horizon=2)
    status = out[3]
    cost = float(status.split("to the goal: **")[1].split("**")[0])
    first = float(status.split("the first iteration's candidates: ")[1].split(" ")[0])
    assert cost < first, status
    traces = {t["name"]: t["y"] for t in json.loads(out[1]["plot"])["data"]}
    assert traces["the plan"][0] == pytest.approx(cost, abs=1e-4) and traces["all candidates (mean)"][0] == pytest.approx(first, abs=1e-4)


def test_plan_from_uploads_cannot_be_executed(client, image_files):
    out = plan(client, start_image=handle_file(str(image_files["rgb"])), goal_image=handle_file(str(image_files["wide"])), iterations=1)
    assert "Planned" in out[3] and "example episode" in out[5]
    picture, text = client.predict(api_name="/execute_plan")
    assert picture is None and "example episode" in text


def test_execute_before_planning_is_refused(client):
    with pytest.raises(AppError, match="Press \\*\\*Plan\\*\\* first"):
        client.predict(api_name="/execute_plan")


@pytest.mark.parametrize("override, message", [
    (dict(candidates=300), "300 is greater than maximum value 256"),  # the caps, enforced by the sliders
    (dict(iterations=11), "11 is greater than maximum value 10"),
    (dict(horizon=5), "5 is greater than maximum value 4"),
    (dict(horizon=0), "0 is less than minimum value 1"),
    (dict(elites=20, candidates=10), "Elites \\(20\\) cannot outnumber"),
    (dict(foreground=-1), "-1 is less than minimum value 0"),
    (dict(model="dreamer"), "'dreamer' .* is not in the list of choices"),
    (dict(goal=("synthetic-0", 99)), "99 is greater than maximum value 30"),
])
def test_bad_settings_get_clear_errors(client, override, message):
    with pytest.raises(AppError, match=message):
        plan(client, **override)


class SquareSimulators:
    """Stands in for ManiSkill: replays the square world of the synthetic episodes."""

    def __init__(self, episode):
        self.episode, self.calls = episode, []

    def unavailable(self):
        return None

    def run(self, task, size, control_mode, fn):
        self.calls.append((task, size, control_mode))
        return fn(_SquareSim(self.episode))


class _SquareSim:
    task = "PushCube"

    def __init__(self, episode):
        self.ep, self.success = episode, False

    def reset(self, seed):
        self.pos = self.ep.qpos[0].astype(np.float64).copy()
        return render(self.pos, -1.0)[0]

    def step(self, actions):
        for a in np.asarray(actions).reshape(-1, 4):
            self.pos = np.clip(self.pos + 1.5 * a[:2], 0, 64 - 12)
        return render(self.pos, -1.0)[0]

    def object_goal_distance(self):
        return float(np.linalg.norm(self.pos - 20.0)) / 100


@pytest.fixture(scope="module")
def seeded_episode(episodes):
    ep = dataclasses.replace(episodes[0], episode_id="seeded-0", actions=episodes[0].actions.copy())
    ep.seed, ep.control_mode = 50_000, "pd_ee_delta_pos"  # as if recorded by training.collect
    return ep


@pytest.fixture(scope="module")
def seeded_url(tiny_pack, seeded_episode, tmp_path_factory):
    demo, url = serve(tiny_pack, [seeded_episode], tmp_path_factory.mktemp("features-plan"))
    yield url
    demo.close()


@pytest.fixture
def seeded_app(seeded_url, seeded_episode, monkeypatch):
    """An app whose example episode has a ManiSkill task and reset seed, with the simulator swapped for the square world."""
    import app.tabs.plan as plan_tab

    sims = SquareSimulators(seeded_episode)
    monkeypatch.setattr(plan_tab, "SIMULATORS", sims)  # the callbacks read it at call time
    return seeded_url, sims


def test_execute_runs_the_plan_in_the_simulator(seeded_app):
    url, sims = seeded_app
    client = Client(url, verbose=False)
    out = plan(client, start=("seeded-0", 4), goal=("seeded-0", 30), horizon=3)
    assert "Execute in the simulator" in out[5]
    picture, text = client.predict(api_name="/execute_plan")
    assert sims.calls == [("PushCube", 64, "pd_ee_delta_pos")]
    assert "Executed **3 chunks**" in text and "first 4 recorded actions replayed" in text
    replay = float(text.split("recorded frame by ")[1].split("/255")[0])
    assert replay < 10, text  # the stand-in replays float32-stored actions: the square may land a pixel off
    assert "Object-to-goal distance" in text
    with Image.open(picture) as im:
        assert im.size[1] > 2 * 160  # two rows: imagined and simulator


@pytest.mark.slow
def test_execute_in_maniskill(tiny_pack, tmp_path_factory):
    """The real simulator: a recorded PushCube example episode replayed from its reset seed, then the plan executed."""
    pytest.importorskip("mani_skill")
    from rla.data import load_episodes

    eps = [e for e in load_episodes(Path(__file__).resolve().parents[2] / "assets" / "examples") if e.task == "PushCube"][:1]
    demo, url = serve(tiny_pack, eps, tmp_path_factory.mktemp("features-ms"))
    try:
        client = Client(url, verbose=False)
        ep_id = str(eps[0].episode_id)
        out = plan(client, start=(ep_id, 10), goal=(ep_id, 50), candidates=8, iterations=1, horizon=2, elites=2, steps=1)
        assert "Execute in the simulator" in out[5]
        picture, text = client.predict(api_name="/execute_plan")
        assert "Executed **2 chunks** in ManiSkill (PushCube, reset seed 100, the episode's first 10 recorded actions replayed" in text
        replay = float(text.split("recorded frame by ")[1].split("/255")[0])
        assert replay < 2.0, text  # the simulator reproduces the recording from its seed and actions
        assert "Object-to-goal distance" in text and picture is not None
    finally:
        demo.close()
