"""The Policies tab: stored results as bars with CIs and seed dots, policy discovery, live runs or the reason there are none."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from app.tabs import policies as tab
from rla.policy.results import KIND


def write_result(root: Path, arm: str, seed, successes, task: str = "PullCube", split: str = "test", **header) -> Path:
    folder = root / task / arm / (f"seed{seed}" if seed is not None else "")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"eval_{split}.json"
    path.write_text(json.dumps({
        "kind": KIND, "task": task, "split": split, "arm": arm, "train_seed": seed, "max_steps": 50, **header,
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
    assert "1 episode says little" in tab.live_summary("tiny", "PullCube", outcomes, 50)
    env = pool.env("PullCube")
    assert pool.env("PullCube") is env  # one env per task, kept for the process
    with pytest.raises(tab.TooSlow, match="too slow"):
        tab.run_live("zero", "PullCube", 1, pool=pool, max_seconds_per_step=0.0)



def test_wmrl_results_get_their_own_colours_and_the_paired_difference(tmp_path):
    rng = np.random.default_rng(2)
    write_result(tmp_path, "bc_nostate", 0, rng.random(30) < 0.3, sha256="initial")
    for k in range(3):
        write_result(tmp_path, "wmrl", k, rng.random(30) < 0.4, base={"sha256": "initial", "arm": "bc_nostate", "train_seed": 0})
    summary = tab.stored_summary(tmp_path)
    bars, dots = tab.results_figure(summary).data
    assert list(bars.x) == ["PullCube<br>bc_nostate", "PullCube<br>wmrl"]
    assert list(bars.marker.color) == [tab.ARM_COLOURS["bc_nostate"], tab.ARM_COLOURS["wmrl"]] and len(dots.x) == 1 + 3
    assert "wmrl − bc_nostate" in tab.results_table(summary) and "each RL seed with bc_nostate seed 0" in tab.results_table(summary)


# ---- WMRL in imagination ------------------------------------------------------------------------------

E = 4  # actions the tiny policies execute per chunk (the tiny pack's chunk is 5)


@pytest.fixture(scope="module")
def pack(tiny_pack):
    from rla import ModelPack

    return ModelPack.load(tiny_pack)


def save_wmrl(root: Path, pack, episodes, seed: int = 0, residual: float = 0.0, task: str = "PullCube", num_tokens=None) -> Path:
    """A tiny initial policy (tokens, no qpos) in <task>/bc_nostate/seed0 and a WMRL policy on it in <task>/wmrl/seed<seed>."""
    from dataclasses import asdict

    from rla.hub import file_sha256
    from rla.imagined_env import ImaginedEnvConfig
    from rla.policy import Policy, policy_config
    from rla.wmrl import WMRLPolicy

    cfg = policy_config("tiny", num_tokens=num_tokens or pack.encoder.num_tokens, token_dim=pack.encoder.dim, state_dim=0, action_dim=4, chunk=5,
                        execute=E, rla_weight=0, encoder=pack.info.encoder.to_dict())
    torch.manual_seed(0)
    base = Policy(cfg)
    base.set_normalizer(torch.cat([torch.as_tensor(e.actions) for e in episodes]))
    base_dir = root / task / "bc_nostate" / "seed0"
    base.save_pretrained(base_dir)
    wmrl = WMRLPolicy.from_policy(base)
    with torch.no_grad():
        wmrl.residual_head.bias.fill_(residual)
    out = root / task / "wmrl" / f"seed{seed}"
    wmrl.save_pretrained(out)
    (out / "run.json").write_text(json.dumps({  # what training.train_wmrl writes (tests/training/test_wmrl.py runs it for real)
        "task": task, "seed": seed, "policy": str(base_dir), "policy_sha256": file_sha256(base_dir / "model.safetensors"),
        "env_config": asdict(ImaginedEnvConfig(actions_per_step=E, euler_steps=2))}))
    return out


def recording(pack, episode):
    from rla.imagined_env import Recording

    return Recording(episode.episode_id, pack.encoder.encode(episode.frames).float(), torch.as_tensor(episode.actions))


def test_no_wmrl_policy_is_said_plainly(tmp_path, pack, episodes):
    assert tab.wmrl_choices(tmp_path) == [] and "docs/wmrl.md" in tab.NO_WMRL
    save_policy(tmp_path / "PullCube" / "wam" / "seed0")  # a WAM policy is not a WMRL one
    assert tab.wmrl_choices(tmp_path) == []
    save_wmrl(tmp_path, pack, episodes, seed=2)
    assert tab.wmrl_choices(tmp_path) == [("PullCube · wmrl · RL seed 2", "PullCube/wmrl/seed2")]


def test_the_wmrl_start_slider_ends_where_one_step_still_fits(tmp_path):
    from types import SimpleNamespace

    episode = SimpleNamespace(actions=np.zeros((50, 4), np.float32))
    run = tmp_path / "wmrl" / "seed0"
    run.mkdir(parents=True)
    assert tab.latest_start(run, episode) == 42  # no run.json: the default env's 8 actions per step
    (run / "run.json").write_text(json.dumps({"env_config": {"actions_per_step": 5}}))
    assert tab.latest_start(run, episode) == 45
    assert tab.latest_start(run, SimpleNamespace(actions=np.zeros((3, 4), np.float32))) == 0  # too short: frame 0 only


def test_imagined_rollouts_share_the_noise_and_only_the_residual_tells_them_apart(tmp_path, pack, episodes):
    from rla.wmrl import imagined_comparison, load_any_policy

    rec = recording(pack, episodes[0])  # 30 actions
    same = load_any_policy(save_wmrl(tmp_path / "a", pack, episodes))  # residual 0: WMRL acts as its initial policy
    config = tab.wmrl_env_config(tmp_path / "a" / "PullCube" / "wmrl" / "seed0", E)
    assert config.euler_steps == 2 and config.max_chunk_steps == tab.MAX_IMAGINED_CHUNKS  # the env it trained in, 6 chunks
    r = imagined_comparison(pack.world_model, same, rec, 0, config, seed=3, to_images=pack.to_images)
    assert r["t"] == [4, 8, 12, 16, 20, 24]  # truncated after 6 chunks
    for a, b in zip(r["tokens"]["initial"], r["tokens"]["wmrl"]):
        assert torch.equal(a, b)  # same actions, same noise: the same imagined frames
    assert r["reward"]["initial"] == r["reward"]["wmrl"] and max(r["residual"]) == 0
    z1 = r["tokens"]["initial"][0]
    assert r["reward"]["initial"][0] == pytest.approx(-5 * float((z1 - rec.tokens[4]).abs().mean()), rel=1e-5)
    assert r["frames"]["wmrl"][0].shape == (64, 64, 3) and r["frames"]["wmrl"][0].dtype == np.uint8

    moved = load_any_policy(save_wmrl(tmp_path / "b", pack, episodes, residual=10.0))  # tanh saturates: residual = +0.1
    r2 = imagined_comparison(pack.world_model, moved, rec, 18, config, seed=3, to_images=pack.to_images)
    assert r2["t"] == [22, 26, 30]  # the recording ends: terminated after 3 chunks
    assert r2["residual"] == pytest.approx([0.1] * 3)
    diff = r2["actions"]["wmrl"][0] - r2["actions"]["initial"][0]  # the first chunk: same state, so the residual alone
    torch.testing.assert_close(diff, (0.1 * moved.base.action_std).expand(E, -1).clamp(max=1 - r2["actions"]["initial"][0]),
                               rtol=1e-4, atol=1e-5)
    assert r2["reward"]["wmrl"] != r2["reward"]["initial"]
    with pytest.raises(ValueError, match="no room"):
        imagined_comparison(pack.world_model, moved, rec, 27, config, to_images=pack.to_images)


def test_run_imagined_draws_the_rollouts_the_rewards_and_a_summary_fast(tmp_path, pack, episodes):
    import time

    from app.features import FeatureCache

    folder = save_wmrl(tmp_path, pack, episodes, residual=1.0)
    cache = FeatureCache(tmp_path / "cache")
    tab.run_imagined(pack, cache, episodes[1], folder, 0)  # warm: loads the policy, encodes the episode
    started = time.perf_counter()
    picture, fig, text, r = tab.run_imagined(pack, cache, episodes[1], folder, 2, seed=1)
    seconds = time.perf_counter() - started
    assert seconds < 1.0, seconds  # the budget (the tiny pack; docs measure the default pack)
    assert picture.ndim == 3 and picture.shape[0] > 3 * 96  # three rows of 96 px tiles under column labels
    assert [t.name.split(" (")[0] for t in fig.data] == ["initial policy", "WMRL"] and len(fig.data[1].y) == len(r["t"]) == 6
    assert "PullCube · wmrl · RL seed 0" in text and f"{sum(r['reward']['wmrl']):.3f}" in text and "not success" in text
    assert "PushCube episode" in tab.run_imagined(pack, cache, episodes[0], folder, 0)[2]  # synthetic episode 0 is PushCube
    other = save_wmrl(tmp_path / "other", pack, episodes, num_tokens=64)  # trained with another pack (64 tokens, this one makes 16)
    with pytest.raises(ValueError, match="load the pack it was trained with"):
        tab.run_imagined(pack, cache, episodes[1], other, 0)


def test_imagine_endpoint_is_registered_and_checks_its_input(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert "/imagine_wmrl" in api["named_endpoints"]
    with pytest.raises(Exception, match="not in the list of choices"):  # Gradio checks dropdown values itself
        client.predict("../../etc", None, 0, 0, api_name="/imagine_wmrl")
