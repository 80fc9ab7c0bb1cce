"""The Policies tab: stored results as bars with CIs and seed dots, policy discovery, live runs or the reason there are none."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from app.tabs import policies as tab
from rla.policy.results import KIND


def write_result(root: Path, arm: str, seed, successes, task: str = "PullCube", split: str = "test") -> Path:
    folder = root / task / arm / (f"seed{seed}" if seed is not None else "")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"eval_{split}.json"
    path.write_text(json.dumps({
        "kind": KIND, "task": task, "split": split, "arm": arm, "train_seed": seed, "max_steps": 50,
        "episodes": [{"reset_seed": 41_000 + i, "success": bool(s), "steps": 20} for i, s in enumerate(successes)]}))
    return path


def save_policy(folder: Path, task: str = "PullCube", arm: str = "wam", seed: int = 0) -> Path:
    from rla.policy import Policy, policy_config

    enc = {"kind": "pixel_patch", "image_size": 64, "patch_size": 16}
    torch.manual_seed(seed)
    policy = Policy(policy_config("tiny", num_tokens=16, token_dim=768, state_dim=9, chunk=5, execute=4, rla_queries=4,
                                  rla_dim=8, encoder=enc))
    policy.save_pretrained(folder)
    (folder / "train.json").write_text(json.dumps({"task": task, "arm": arm, "seed": seed}))
    return folder


@pytest.fixture
def stored(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    for seed in range(3):
        write_result(tmp_path, "wam", seed, rng.random(20) < 0.6)
        write_result(tmp_path, "bc", seed, rng.random(20) < 0.3)
    write_result(tmp_path, "expert", None, np.ones(20))
    write_result(tmp_path, "wam", 0, rng.random(5) < 0.5, split="val")  # pilots never mix with the test bars
    (tmp_path / "PullCube" / "eval_broken.json").write_text("{")
    return tmp_path


def test_stored_results_are_bars_with_error_bars_and_one_dot_per_seed(stored):
    summary = tab.stored_summary(stored)
    assert len(summary["skipped"]) == 1  # the broken file is reported, not fatal
    fig = tab.results_figure(summary, "test")
    bars, dots = fig.data
    assert list(bars.x) == ["PullCube<br>bc", "PullCube<br>expert", "PullCube<br>wam"]
    wam = next(r for r in summary["arms"] if r["arm"] == "wam" and r["split"] == "test")
    assert bars.y[2] == pytest.approx(100 * wam["mean"])
    assert bars.error_y.array[2] == pytest.approx(100 * (wam["high"] - wam["mean"]))
    assert bars.error_y.arrayminus[2] == pytest.approx(100 * (wam["mean"] - wam["low"]))
    assert len(dots.x) == 3 + 3 + 1  # one dot per training seed (and one for the expert reference)
    text = tab.results_table(summary)
    assert "| PullCube | test | wam | 0, 1, 2 | 20 |" in text and "wam − bc" in text and "unreadable" in text


def test_no_stored_results_says_how_to_get_them(tmp_path):
    summary = tab.stored_summary(tmp_path / "nothing")
    assert "docs/wam.md" in tab.results_table(summary)
    assert not tab.results_figure(summary).data  # an empty figure with a message


def test_policy_choices_list_saved_policies_then_the_references(tmp_path):
    save_policy(tmp_path / "PullCube" / "wam" / "seed1", seed=1)
    (tmp_path / "PullCube" / "wam" / "seed1" / "checkpoint").mkdir()
    choices = tab.policy_choices(tmp_path)
    assert choices[0] == ("PullCube · wam · seed 1", "PullCube/wam/seed1")  # relative: no server path in the page
    assert [v for _, v in choices[1:]] == ["expert", "zero"]


def test_simulator_unavailable_gives_a_reason(monkeypatch):
    assert "public" in tab.simulator_unavailable(live=False)
    monkeypatch.setenv("SPACE_ID", "user/space")
    assert "Space" in tab.simulator_unavailable()
    monkeypatch.delenv("SPACE_ID")
    monkeypatch.setitem(__import__("sys").modules, "mani_skill", None)  # import fails
    assert "not installed" in tab.simulator_unavailable()


def test_a_simulator_that_does_not_start_is_reported_not_raised_twice(monkeypatch):
    import rla.policy.rollout as rollout

    def broken(task, size=128):
        raise OSError("no Vulkan driver")

    monkeypatch.setattr(rollout, "make_policy_env", broken)
    pool = tab.EnvPool()
    with pytest.raises(RuntimeError, match="Vulkan"):
        tab.run_live("zero", "PullCube", 1, pool=pool)
    assert "did not start" in pool.broken and "Vulkan" in pool.broken


def test_run_endpoint_refuses_with_the_reason_where_there_is_no_simulator(client, monkeypatch):
    fig, table = client.predict(api_name="/policy_results")
    assert isinstance(table, str)
    monkeypatch.setenv("SPACE_ID", "user/space")  # the app runs in this process
    with pytest.raises(Exception, match="Hugging Face Space"):
        client.predict("zero", "PullCube", 1, api_name="/run_policy")
    monkeypatch.delenv("SPACE_ID")
    with pytest.raises(Exception, match="not in the list of choices"):  # Gradio checks dropdown values itself
        client.predict("../../etc", "PullCube", 1, api_name="/run_policy")


@pytest.mark.slow
def test_live_run_executes_real_episodes_and_animates_them(tmp_path):
    folder = save_policy(tmp_path / "PullCube" / "wam" / "seed0")
    pool = tab.EnvPool()
    outcomes, frames = tab.run_live(str(folder), "PullCube", 1, pool=pool)
    (o,) = outcomes
    assert o.reset_seed == 40_000 + tab.LIVE_SEED_OFFSET and 1 <= o.steps <= 50
    assert len(frames[0]) == o.steps + 1 and frames[0][0].shape == (128, 128, 3)
    gif = Path(tab.episode_animation(outcomes))
    assert gif.is_file() and gif.read_bytes()[:3] == b"GIF"
    assert "1 episodes say little" in tab.live_summary("tiny", "PullCube", outcomes, 50)
    env = pool.env("PullCube")
    assert pool.env("PullCube") is env  # one env per task, kept for the process
    with pytest.raises(tab.TooSlow, match="too slow"):
        tab.run_live("zero", "PullCube", 1, pool=pool, max_seconds_per_step=0.0)
