"""rla.wmrl and training.train_wmrl: the residual policy, the SB3 VecEnv adapter, PPO iterations, resuming, the CLI."""
# ruff: noqa: F811  (pytest fixtures imported from tests.rla.imagined are test arguments of the same name)
from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest
import torch

from rla.imagined_env import ImaginedCore, ImaginedEnvConfig
from rla.policy import Policy, policy_config
from rla.wmrl import PPOSettings, WMRLPolicy, load_any_policy, sb3_classes
from tests.app.tiny import synthetic_episodes
from tests.rla.imagined import E, pack, pack_dir, recs  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny_policy(pack, recs, state_dim=0, seed=0) -> Policy:
    cfg = policy_config("tiny", num_tokens=pack.encoder.num_tokens, token_dim=pack.encoder.dim, state_dim=state_dim,
                        action_dim=pack.info.action_dim, chunk=pack.info.chunk, execute=E, rla_weight=0,
                        encoder=pack.info.encoder.to_dict())
    torch.manual_seed(seed)
    policy = Policy(cfg)
    policy.set_normalizer(torch.cat([r.actions for r in recs]))
    return policy.eval()


def env_config(**kw):
    return ImaginedEnvConfig(**{"actions_per_step": E, "euler_steps": 2, **kw})


def test_wmrl_policy_starts_as_its_base_and_round_trips(pack, recs, tmp_path):
    base = tiny_policy(pack, recs)
    wmrl = WMRLPolicy.from_policy(base).eval()
    obs = {"tokens": recs[0].tokens[:3]}
    torch.testing.assert_close(wmrl.predict_chunk(obs), base.predict_chunk(obs), rtol=0, atol=0)  # zero-initialised residual
    assert [n for n, p in wmrl.named_parameters() if p.requires_grad and n.startswith("base.")] == []
    with torch.no_grad():
        wmrl.residual_head.bias.fill_(10.0)  # tanh saturates: the residual is bounded by residual_scale
    h = wmrl.features(obs)
    assert torch.allclose(wmrl.residual(h), torch.full((3, E, 4), 0.1))
    wmrl.save_pretrained(tmp_path / "w")
    back = load_any_policy(tmp_path / "w")
    assert isinstance(back, WMRLPolicy)
    for (n, a), (_, b) in zip(wmrl.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), n
    base.save_pretrained(tmp_path / "b")
    assert isinstance(load_any_policy(tmp_path / "b"), Policy)
    with pytest.raises(ValueError, match="no-state"):
        WMRLPolicy.from_policy(tiny_policy(pack, recs, state_dim=2))


def test_vec_env_autoresets_and_marks_time_limits(pack, recs):
    venv = sb3_classes()["vec_env"](ImaginedCore.from_pack(pack, recs, 3, env_config(max_chunk_steps=2)))
    seeds = venv.seed(4)
    obs = venv.reset()
    assert obs.shape == (3, *venv.observation_space.shape) and list(venv.core.seeds) == seeds
    finished = []
    for _ in range(4):
        obs, reward, done, infos = venv.step(np.zeros((3, E, 4), np.float32))
        assert reward.shape == done.shape == (3,)
        np.testing.assert_array_equal(obs, venv.core.z.numpy())  # ended envs already show their next episode's start
        for i in np.flatnonzero(done):
            info = infos[i]
            assert "terminal_observation" in info and venv.core.steps[i] == 0
            assert 1 <= info["episode"]["l"] <= 2
            if info["TimeLimit.truncated"]:  # truncated only by the limit of 2 chunk-steps, never earlier
                assert info["episode"]["l"] == 2
            else:  # terminated: the recording had no room for another step
                assert info["t"] + E > 20
            finished.append(info)
    assert len(finished) >= 3 and any(f["TimeLimit.truncated"] for f in finished)
    assert venv.pop_finished()["episodes"] == len(finished) and venv.pop_finished()["episodes"] == 0


def test_run_seeds_give_the_envs_unrelated_streams(pack, recs):
    """SB3's default (seed + i) would hand run seed 1 the streams of run seed 0 shifted by one env."""
    venv = sb3_classes()["vec_env"](ImaginedCore.from_pack(pack, recs, 4, env_config()))
    first, second = venv.seed(0), venv.seed(1)
    assert len(set(first)) == 4 and not set(first) & set(second)
    assert venv.seed(0) == first  # and the same run seed gives the same streams


def run_train(pack, policy, recs, out, iterations, **kw):
    from training.train_wmrl import train

    return train(pack, policy, recs, out, seed=0, iterations=iterations, envs=4, env_config=env_config(),
                 ppo_settings=PPOSettings(n_steps=4, batch_size=8), checkpoint_every=kw.pop("checkpoint_every", 1),
                 progress=False, **kw)


def read_log(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_ppo_iterations_change_the_residual_head_and_log(pack, recs, tmp_path):
    policy = tiny_policy(pack, recs)
    report = run_train(pack, policy, recs, tmp_path / "run", 3)
    rows = read_log(tmp_path / "run" / "log.csv")
    assert [int(float(r["iteration"])) for r in rows] == [1, 2, 3]
    for r in rows:
        for key in ("approx_kl", "value_loss", "mean_abs_residual", "reward_per_step"):
            assert np.isfinite(float(r[key])), key
    assert float(rows[-1]["mean_abs_residual"]) > 0
    wmrl = load_any_policy(tmp_path / "run")
    assert wmrl.residual_head.weight.abs().max() > 0 and wmrl.value_head[0].weight.requires_grad
    for name, p in wmrl.base.state_dict().items():  # the trunk and base heads stay frozen
        assert torch.equal(p, policy.state_dict()[name]), name
    assert report["mean_abs_residual_last"] == pytest.approx(float(rows[-1]["mean_abs_residual"]))
    assert json.loads((tmp_path / "run" / "checkpoint" / "progress.json").read_text())["iteration"] == 3


def test_resuming_continues_at_the_checkpointed_iteration(pack, recs, tmp_path):
    policy = tiny_policy(pack, recs)
    out = tmp_path / "run"
    run_train(pack, policy, recs, out, 3, checkpoint_every=2)  # checkpoints at 2 and at the end (3)
    first = read_log(out / "log.csv")
    report = run_train(pack, policy, recs, out, 5, checkpoint_every=2)
    rows = read_log(out / "log.csv")
    assert report["resumed_at"] == 3
    assert [int(float(r["iteration"])) for r in rows] == [1, 2, 3, 4, 5]
    assert rows[:3] == first  # the earlier rows are kept as they were
    again = run_train(pack, policy, recs, out, 5)  # finished: nothing more to do
    assert again["resumed_at"] == 5 and len(read_log(out / "log.csv")) == 5


def test_cli_refuses_bad_input(pack, recs, tmp_path, monkeypatch, capsys):
    from training.common import cli
    from training.train_wmrl import main

    with pytest.raises(SystemExit) as err:
        main(["--pack", "p", "--policy", "x", "--task", "PullCube", "--out", str(tmp_path), "--iterations", "0"])
    assert err.value.code == 2 and "--iterations" in capsys.readouterr().err
    with_state = tiny_policy(pack, recs, state_dim=2)
    with_state.save_pretrained(tmp_path / "qpos_policy")
    monkeypatch.setattr(sys, "argv", ["train_wmrl", "--pack", "p", "--policy", str(tmp_path / "qpos_policy"), "--task", "PullCube",
                                      "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as err:
        cli(main)
    assert err.value.code == 2 and "--no-state" in capsys.readouterr().err


def test_command_line_run_writes_the_policy_log_and_reward_validity(pack_dir, pack, recs, tmp_path):
    from tests.training.recordings import write_recording
    from training.train_wmrl import main

    data = write_recording(synthetic_episodes(n=6, steps=20, seed=1), tmp_path / "data" / "PullCube.h5", "PullCube")
    tiny_policy(pack, recs).save_pretrained(tmp_path / "bc")
    out = tmp_path / "wmrl"
    report = main(["--pack", str(pack_dir), "--policy", str(tmp_path / "bc"), "--task", "PullCube", "--seed", "0", "--out", str(out),
                   "--data", str(data), "--any-seeds", "--iterations", "2", "--envs", "4", "--batch-size", "8", "--euler-steps", "2",
                   "--validity-starts", "2", "--cache", str(tmp_path / "cache"), "--threads", "1", "--no-progress"])
    for name in ("config.json", "model.safetensors", "run.json", "log.csv", "wmrl.json", "checkpoint"):
        assert (out / name).exists(), name
    saved = json.loads((out / "wmrl.json").read_text())
    assert saved["reward_validity"]["n"] == 6 and 0 <= saved["reward_validity"]["fraction"] <= 1  # 3 successful recordings x 2
    assert len(saved["recordings"]) == 3 and report["iterations"] == 2 and len(read_log(out / "log.csv")) == 2
    from rla.policy import file_sha256
    from training.evaluate_policy import describe_policy

    header = describe_policy(str(out))  # what training.evaluate_policy records about a WMRL folder
    assert header["policy_kind"] == "wmrl" and header["train_seed"] == 0 and header["sha256"] == file_sha256(out / "model.safetensors")
    assert header["base"]["path"] == str(tmp_path / "bc") and header["base"]["sha256"] == file_sha256(tmp_path / "bc" / "model.safetensors")
    assert header["base"]["unchanged"] is True and header["train"]["iterations"] == 2
    assert header["train"]["reward_validity"] == saved["reward_validity"]
    from training import wmrl_report

    rows = wmrl_report.main(["--pack", str(pack_dir), "--runs", str(out), "--data", str(data), "--any-seeds", "--episodes", "3",
                             "--cache", str(tmp_path / "cache"), "--plot", str(tmp_path / "curves.png"), "--out", str(tmp_path / "runs.md")])
    (row,) = rows
    assert row["imagined"]["episodes"] == 3 and np.isfinite(row["imagined"]["mean"]) and row["real"] is None  # not evaluated yet
    assert row["last"] == pytest.approx(saved["imagined_return_last_10pct"], nan_ok=True)
    assert (tmp_path / "curves.png").stat().st_size > 0 and "| seed 0 |" in (tmp_path / "runs.md").read_text()
    assert "(3 episodes, corresponding reward)" in (tmp_path / "runs.md").read_text()
    # the shuffled-reward control: trained on another recording's frames, scored with the reward it did not see
    control = tmp_path / "wmrl_shuffled"
    main(["--pack", str(pack_dir), "--policy", str(tmp_path / "bc"), "--task", "PullCube", "--seed", "0", "--out", str(control),
          "--data", str(data), "--any-seeds", "--iterations", "2", "--envs", "4", "--batch-size", "8", "--euler-steps", "2",
          "--validity-starts", "2", "--cache", str(tmp_path / "cache"), "--threads", "1", "--no-progress", "--reward", "shuffled"])
    assert json.loads((control / "run.json").read_text())["env_config"]["reward"] == "shuffled"
    scored = {}
    for reward in ("corresponding", "shuffled"):
        (row,) = wmrl_report.main(["--pack", str(pack_dir), "--runs", str(control), "--data", str(data), "--any-seeds", "--episodes", "3",
                                   "--cache", str(tmp_path / "cache"), "--reward", reward, "--out", str(tmp_path / f"{reward}.md")])
        assert row["name"] == "seed 0 (shuffled reward)" and row["imagined"]["reward"] == reward
        scored[reward] = row["imagined"]
    assert scored["corresponding"]["initial"] != scored["shuffled"]["initial"]  # the same episodes, scored against other frames
    with pytest.raises(SystemExit, match="other settings"):  # the same folder with other settings is refused
        main(["--pack", str(pack_dir), "--policy", str(tmp_path / "bc"), "--task", "PullCube", "--seed", "1", "--out", str(out),
              "--data", str(data), "--any-seeds", "--iterations", "2", "--envs", "4", "--cache", str(tmp_path / "cache")])
