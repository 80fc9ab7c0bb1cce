"""rla.imagined_env: gymnasium's checker, batched = single envs, determinism, rewards, ends, bad actions, reward validity."""
# ruff: noqa: F811  (pytest fixtures imported from tests.rla.imagined are test arguments of the same name)
from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from rla.imagined_env import (
    ImaginedCore,
    ImaginedEnv,
    ImaginedEnvConfig,
    Recording,
    noise_seed,
    recordings_from_episodes,
    reward_validity,
    shuffled_partner,
)
from tests.app.tiny import synthetic_episodes
from tests.rla.imagined import E, pack, pack_dir, recs  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def config(**kw) -> ImaginedEnvConfig:
    return ImaginedEnvConfig(**{"actions_per_step": E, "euler_steps": 3, **kw})


class ReplayModel:
    """A world model that reproduces the recordings exactly for their own actions, and drifts otherwise."""

    stochastic = False

    def __init__(self, recs: list[Recording], e: int = E):
        self.table = {}
        for r in recs:
            for t in range(r.num_steps - e + 1):
                self.table[(r.tokens[t].numpy().tobytes(), r.actions[t:t + e].numpy().tobytes())] = r.tokens[t + e]

    def predict(self, z, a, *, steps=None, generator=None):
        return torch.stack([self.table.get((zi.numpy().tobytes(), ai.numpy().tobytes()), zi + 0.3) for zi, ai in zip(z, a)])


def test_only_successful_recordings_and_config_checks(pack, recs):
    assert len(recs) == 3 and recs[0].tokens.shape == (21, pack.encoder.num_tokens, pack.encoder.dim)
    with pytest.raises(ValueError, match="reward"):
        ImaginedEnvConfig(reward="dense")
    with pytest.raises(ValueError, match="actions_per_step"):
        ImaginedEnvConfig(actions_per_step=0)
    with pytest.raises(ValueError, match="fewer than actions_per_step"):
        ImaginedCore.from_pack(pack, recs, 2, config(actions_per_step=21))
    with pytest.raises(ValueError, match="succeeded"):
        recordings_from_episodes([e for e in synthetic_episodes(n=2, steps=10, seed=1) if not e.succeeded], pack)


def test_single_env_passes_gymnasium_checker(pack, recs):
    env = ImaginedEnv.from_pack(pack, recs, config())
    with pytest.warns(UserWarning, match="infinity"):  # token observations are unbounded: the checker only warns
        check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert obs.shape == env.observation_space.shape and obs.dtype == np.float32 and "recording" in info


def test_batched_env_equals_single_envs_under_the_same_seeds(pack, recs):
    seeds = [11, 12, 13]
    core = ImaginedCore.from_pack(pack, recs, 3, config(max_chunk_steps=3), seeds=seeds)
    singles = [ImaginedEnv.from_pack(pack, recs, config(max_chunk_steps=3)) for _ in seeds]
    obs = core.reset().numpy()
    for i, (env, s) in enumerate(zip(singles, seeds)):
        np.testing.assert_array_equal(env.reset(seed=s)[0], obs[i])
    rng = np.random.default_rng(0)
    for _ in range(8):  # several episodes: ended envs restart like a single env's reset()
        a = rng.uniform(-1, 1, (3, E, 4)).astype(np.float32)
        obs, reward, term, trunc, _ = core.step(a)
        for i, env in enumerate(singles):
            o, r, te, tr, _ = env.step(a[i])
            np.testing.assert_allclose(o, obs[i].numpy(), atol=1e-5)
            assert abs(r - reward[i]) < 1e-5 and (te, tr) == (term[i], trunc[i])
            if te or tr:
                np.testing.assert_array_equal(env.reset()[0], core.reset([i])[0].numpy())


def test_deterministic_under_a_seed_and_noise_matters(pack, recs):
    def run(seeds):
        core = ImaginedCore.from_pack(pack, recs, 4, config(), seeds=seeds)
        core.reset()
        return core.step(torch.zeros(4, E, 4))

    a, b, c = run([0, 1, 2, 3]), run([0, 1, 2, 3]), run([7, 8, 9, 10])
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert noise_seed(0, 1, 0) != noise_seed(0, 1, 1) != noise_seed(0, 2, 0)


def test_same_start_and_actions_with_other_noise_differ(pack, recs):
    core = ImaginedCore.from_pack(pack, recs, 2, config(), seeds=[0, 1])
    core.start(0, 0, 2), core.start(1, 0, 2)
    z = core.step(torch.zeros(2, E, 4))[0]
    assert not torch.allclose(z[0], z[1])  # the flow's noise is per env
    det = ImaginedCore.from_pack(pack, recs, 2, config(temperature=0.0), seeds=[0, 1])
    det.start(0, 0, 2), det.start(1, 0, 2)
    z = det.step(torch.zeros(2, E, 4))[0]
    torch.testing.assert_close(z[0], z[1])


def test_resets_start_at_zero_half_the_time(pack, recs):
    core = ImaginedCore.from_pack(pack, recs, 1, config(), seeds=[5])
    starts = []
    for _ in range(400):
        core.reset()
        starts.append((int(core.rec[0]), int(core.t[0])))
    t0 = np.array([t for _, t in starts])
    assert 0.42 < np.mean(t0 == 0) < 0.58
    assert t0.max() <= 20 - E and len({r for r, _ in starts}) == 3 and len(set(t0[t0 > 0])) > 5


def test_rewards_and_episode_ends(recs):
    exact = ImaginedCore(ReplayModel(recs), recs, 1, config(max_chunk_steps=10), seeds=[0])
    exact.start(0, 1, 4)
    total_steps = 0
    while True:  # replaying the recording earns reward 0 until the recording has no room for another step
        t = int(exact.t[0])
        _, r, term, trunc, info = exact.step(recs[1].actions[t:t + E][None])
        total_steps += 1
        assert r[0] == 0.0 and not trunc[0]
        if term[0]:
            break
    assert total_steps == 4 and int(exact.t[0]) == 20 and info["goal_l1"][0] == 0.0  # 4 + 4·4 = 20: the last frame
    with pytest.raises(RuntimeError, match="reset"):
        exact.step(torch.zeros(1, E, 4))
    goal = ImaginedCore(ReplayModel(recs), recs, 1, config(reward="goal", max_chunk_steps=2), seeds=[0])
    goal.start(0, 1, 0)
    _, r, term, trunc, _ = goal.step(recs[1].actions[0:E][None])
    expected = -5 * (recs[1].tokens[E] - recs[1].tokens[-1]).abs().mean()
    assert abs(r[0] - float(expected)) < 1e-6 and r[0] < 0
    _, _, term, trunc, _ = goal.step(torch.zeros(1, E, 4))
    assert trunc[0] and not term[0]  # max_chunk_steps = 2


def test_the_shuffled_control_rewards_another_recording_from_the_same_starts_and_noise(pack, recs):
    """reward="shuffled": replaying a recording exactly is rewarded against the partner recording's
    frame at the same time (never the recording itself); starts, states and noise are those of
    "corresponding" under the same seeds, so only the reward differs."""
    assert [shuffled_partner(r, 3) for r in range(3)] == [1, 2, 0] and [shuffled_partner(r, 4) for r in range(4)] == [2, 3, 0, 1]
    shuffled = ImaginedCore(ReplayModel(recs), recs, 1, config(max_chunk_steps=10, reward="shuffled"), seeds=[0])
    shuffled.start(0, 1, 4)
    _, r, _, _, _ = shuffled.step(recs[1].actions[4:4 + E][None])
    partner = recs[shuffled_partner(1, len(recs))]
    assert partner is not recs[1] and float(r[0]) == pytest.approx(float(-5 * (recs[1].tokens[4 + E] - partner.tokens[4 + E]).abs().mean()))
    assert r[0] < 0  # the exact replay that "corresponding" rewards with 0
    runs = {}
    for reward in ("corresponding", "shuffled"):
        core = ImaginedCore.from_pack(pack, recs, 3, config(reward=reward), seeds=[5, 6, 7])
        z0 = core.reset()
        z1, r, *_ = core.step(torch.full((3, E, 4), 0.3))
        runs[reward] = (core.rec.copy(), core.t.copy(), z0, z1, r)
    (rec_c, t_c, z0_c, z1_c, r_c), (rec_s, t_s, z0_s, z1_s, r_s) = runs["corresponding"], runs["shuffled"]
    assert (rec_c == rec_s).all() and (t_c == t_s).all() and torch.equal(z0_c, z0_s) and torch.equal(z1_c, z1_s)
    assert not np.allclose(r_c, r_s)
    with pytest.raises(ValueError, match="at least 2 recordings"):
        ImaginedCore(ReplayModel(recs), recs[:1], 1, config(reward="shuffled"))


def test_malformed_actions_raise_clear_errors(pack, recs):
    env = ImaginedEnv.from_pack(pack, recs, config())
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(4, 4\)"):
        env.step(np.zeros((5, 4), np.float32))
    with pytest.raises(ValueError, match="NaN or infinite"):
        env.step(np.full((E, 4), np.nan, np.float32))
    core = ImaginedCore.from_pack(pack, recs, 2, config())
    core.reset()
    with pytest.raises(ValueError, match=r"shape \(2, 4, 4\)"):
        core.step(torch.zeros(2, E, 3))
    with pytest.raises(ValueError, match="NaN or infinite"):
        core.step(torch.full((2, E, 4), float("inf")))
    with pytest.raises(ValueError, match="numbers"):
        core.step([["a"] * 4] * E)
    out = core.step(torch.full((2, E, 4), 7.0))  # out of bounds: clipped, as the simulator does
    assert np.isfinite(out[1]).all()


def test_reward_validity_is_one_for_a_model_that_replays_the_recordings(recs):
    result = reward_validity(ReplayModel(recs), recs, starts_per_recording=5, config=config(), seed=0)
    assert result["fraction"] == 1.0 and result["n"] == 15
    assert all(r == 0.0 for r in result["recorded_return"]) and all(r < 0 for r in result["noisy_return"])
    two = reward_validity(ReplayModel(recs), recs, starts_per_recording=2, chunk_steps=2, config=config(), seed=1)
    assert two["fraction"] == 1.0 and all(t0 <= 20 - 2 * E for _, t0 in two["starts"])


def test_reward_validity_on_a_pack_compares_under_shared_noise(pack, recs):
    # with sigma = 0 both arms take the same actions under the same world-model noise: equal returns, no wins
    same = reward_validity(pack, recs, starts_per_recording=2, sigma=0.0, config=config(), seed=0)
    assert same["fraction"] == 0.0 and np.allclose(same["recorded_return"], same["noisy_return"])
    noisy = reward_validity(pack, recs, starts_per_recording=2, sigma=0.5, config=config(), seed=0)
    # (on the tiny pack actions barely move the prediction, so the fraction itself means nothing here)
    assert 0.0 <= noisy["fraction"] <= 1.0 and not np.array_equal(noisy["recorded_return"], noisy["noisy_return"])
