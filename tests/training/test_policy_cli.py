"""training.train_policy and training.evaluate_policy end to end: real recordings, a tiny pack, the simulator."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rla.data import SEED_RANGES
from rla.policy import Policy, file_sha256
from rla.policy.results import KIND, load_result, markdown, summarize
from tests.app.tiny import build_tiny_pack

STEPS = 40  # actions per recorded episode (the expert solves PullCube in ~35)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """4 short PullCube expert episodes at 64 px from the policy_data seeds (the real CPU simulator)."""
    from training.collect import CollectConfig, collect

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("wam_data")
    collect(CollectConfig(task="PullCube", episodes=4, out=out, steps=STEPS, size=64, seed=SEED_RANGES["policy_data"][1] - 10,
                          progress=False))
    return out


@pytest.fixture(scope="module")
def tiny_pack(tmp_path_factory):
    return build_tiny_pack(tmp_path_factory.mktemp("pack") / "tiny", train_steps=10)


def train(pack, data, out, tmp_path, *extra):
    from training.train_policy import main

    return main(["--pack", str(pack), "--data", str(data), "--task", "PullCube", "--out", str(out), "--preset", "tiny",
                 "--labelled-fraction", "0.5", "--heldout", "1", "--batch-size", "8", "--warmup", "2", "--threads", "1",
                 "--any-seeds", "--cache", str(tmp_path / "cache"), *extra])


@pytest.mark.slow
def test_train_writes_a_resumable_run_with_the_autoencoder_hash(recorded, tiny_pack, tmp_path):
    out = tmp_path / "PullCube" / "wam" / "seed0"
    report = train(tiny_pack, recorded, out, tmp_path, "--steps", "4", "--rla-weight", "0.05", "--seed", "0")
    for name in ("config.json", "model.safetensors", "train.json", "loss.csv", "checkpoint"):
        assert (out / name).exists(), name
    saved = json.loads((out / "train.json").read_text())
    assert saved["arm"] == "wam" and saved["train"]["steps"] == 4
    assert saved["pack_autoencoder_sha256"] == file_sha256(tiny_pack / "autoencoder" / "model.safetensors")
    split = saved["data_split"]
    assert len(split["labelled_episodes"]) == 2 and split["action_less_episodes"] == 1 and len(split["heldout_episodes"]) == 1
    assert "heldout_rla_r2" in saved["heldout_scores"]
    policy = Policy.load(out)
    assert policy.rla_head is not None and policy.config.state_dim == 9 and policy.config.encoder["image_size"] == 64
    # rerunning with more steps resumes from the checkpoint instead of starting over
    resumed = train(tiny_pack, recorded, out, tmp_path, "--steps", "6", "--rla-weight", "0.05", "--seed", "0")
    assert resumed["train"]["steps"] == 6
    # ... and other settings in the same folder are refused
    with pytest.raises(SystemExit, match="rla_weight"):
        train(tiny_pack, recorded, out, tmp_path, "--steps", "6", "--rla-weight", "0.1", "--seed", "0")
    assert report["seconds_per_step"] > 0


@pytest.mark.slow
def test_an_interrupted_no_state_run_resumes_bit_identical(recorded, tiny_pack, tmp_path, monkeypatch):
    """A --no-state policy (state_dim 0) must survive its resumable checkpoint: nothing dropped, strict reload."""
    from functools import partial

    from safetensors.torch import load_file

    import training.train_policy
    from rla.policy import PolicyData
    from training.loop import TrainConfig

    monkeypatch.setattr(training.train_policy, "TrainConfig", partial(TrainConfig, checkpoint_every=2))
    args = ("--steps", "4", "--rla-weight", "0", "--no-state", "--seed", "0")
    train(tiny_pack, recorded, tmp_path / "whole", tmp_path, *args)

    sample, calls = PolicyData.sample_batch, []

    def killed_after_the_step_2_checkpoint(self, *a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return sample(self, *a, **kw)

    out = tmp_path / "resumed"
    with monkeypatch.context() as m:
        m.setattr(PolicyData, "sample_batch", killed_after_the_step_2_checkpoint)
        with pytest.raises(KeyboardInterrupt):
            train(tiny_pack, recorded, out, tmp_path, *args)
    assert json.loads((out / "checkpoint" / "progress.json").read_text())["step"] == 2
    report = train(tiny_pack, recorded, out, tmp_path, *args)  # the same command continues from step 2
    assert report["train"]["steps"] == 4 and Policy.load(out).config.state_dim == 0
    assert report["arm"] == "bc_nostate"  # not "bc": the two arms must not be pooled
    for name in ("model.safetensors", "checkpoint/model.safetensors"):
        whole, resumed = load_file(str(tmp_path / "whole" / name)), load_file(str(out / name))
        assert whole.keys() == resumed.keys(), name
        for key, value in whole.items():
            assert torch.equal(value, resumed[key]), f"{name}: {key}"


@pytest.mark.slow
def test_bc_arm_has_no_rla_head_and_shares_the_initialisation(recorded, tiny_pack, tmp_path):
    bc = train(tiny_pack, recorded, tmp_path / "bc", tmp_path, "--steps", "1", "--rla-weight", "0", "--seed", "2", "--warmup", "100")
    wam = train(tiny_pack, recorded, tmp_path / "wam", tmp_path, "--steps", "1", "--rla-weight", "0.05", "--seed", "2", "--warmup", "100")
    assert bc["arm"] == "bc" and wam["arm"] == "wam"
    assert bc["data_split"]["labelled_episodes"] == wam["data_split"]["labelled_episodes"]
    assert bc["data_split"]["action_less_episodes"] == 0  # BC never sees the action-less episodes
    p_bc, p_wam = Policy.load(tmp_path / "bc"), Policy.load(tmp_path / "wam")
    assert p_bc.rla_head is None
    # one step at a warm-up learning rate of lr/100 keeps both close to the shared initial weights
    w_bc, w_wam = p_bc.action_head.weight, p_wam.action_head.weight
    assert (w_bc - w_wam).abs().max() < 1e-3 * w_bc.abs().max()


@pytest.mark.slow  # builds its recordings and pack: ~14 CPU-s
def test_training_refuses_recordings_outside_the_policy_seeds(recorded, tiny_pack, tmp_path):
    from training.train_policy import load_task_episodes

    assert len(load_task_episodes([recorded], "PullCube")) == 4  # recorded from the policy_data range
    with pytest.raises(SystemExit, match="no PokeCube episodes"):
        load_task_episodes([recorded], "PokeCube")


@pytest.mark.slow
def test_evaluation_runs_in_the_simulator_and_resumes(recorded, tiny_pack, tmp_path):
    from training.evaluate_policy import main

    policy_dir = tmp_path / "policy"
    train(tiny_pack, recorded, policy_dir, tmp_path, "--steps", "2", "--rla-weight", "0.05", "--seed", "0")
    out = tmp_path / "eval_test.json"
    first = main(["--policy", str(policy_dir), "--task", "PullCube", "--episodes", "2", "--out", str(out), "--no-progress"])
    start = SEED_RANGES["policy_test"][0]
    assert [e["reset_seed"] for e in first["episodes"]] == [start, start + 1]
    assert first["max_steps"] == 50 and first["arm"] == "wam" and first["train_seed"] == 0  # make_env's PullCube length
    assert all(1 <= e["steps"] <= 50 for e in first["episodes"])
    assert first["train"]["autoencoder_sha256"] == file_sha256(tiny_pack / "autoencoder" / "model.safetensors")
    more = main(["--policy", str(policy_dir), "--task", "PullCube", "--episodes", "3", "--out", str(out), "--no-progress"])
    assert more["n"] == 3 and more["episodes"][:2] == first["episodes"]  # the first two were kept, not rerun
    load_result(out)
    with pytest.raises(SystemExit, match="split"):
        main(["--policy", str(policy_dir), "--task", "PullCube", "--episodes", "1", "--split", "val", "--out", str(out)])
    expert = main(["--policy", "expert", "--task", "PullCube", "--episodes", "1", "--out", str(tmp_path / "e.json"), "--no-progress"])
    assert expert["successes"] == 1 and expert["episodes"][0]["steps"] < 50  # the expert solves it and stops early
    zero = main(["--policy", "zero", "--task", "PullCube", "--episodes", "1", "--out", str(tmp_path / "z.json"), "--no-progress"])
    assert zero["successes"] == 0 and zero["episodes"][0]["steps"] == 50



@pytest.mark.slow
def test_wmrl_policies_evaluate_in_the_simulator_and_pair_with_their_initial_policy(recorded, tiny_pack, tmp_path):
    from rla.wmrl import WMRLPolicy
    from training.evaluate_policy import main, make_actor
    from training.train_wmrl import main as train_wmrl

    root = tmp_path / "PullCube"
    initial = root / "bc_nostate" / "seed0"  # train.json says arm 'bc': the folder layout names the arm
    train(tiny_pack, recorded, initial, tmp_path, "--steps", "2", "--rla-weight", "0", "--no-state", "--labelled-fraction", "1.0",
          "--seed", "0")
    for k in (0, 1):
        train_wmrl(["--pack", str(tiny_pack), "--policy", str(initial), "--task", "PullCube", "--seed", str(k),
                    "--out", str(root / "wmrl" / f"seed{k}"), "--iterations", "1", "--envs", "2", "--batch-size", "4",
                    "--euler-steps", "2", "--validity-starts", "1", "--cache", str(tmp_path / "cache"), "--threads", "1", "--no-progress"])
    env_actor = make_actor(str(root / "wmrl" / "seed1"), "PullCube", None, 4)
    assert isinstance(env_actor.policy, WMRLPolicy)  # acts with base chunk + residual (the mean action)
    files = []
    for folder in (initial, root / "wmrl" / "seed0", root / "wmrl" / "seed1"):
        files.append(folder / "eval_test.json")
        main(["--policy", str(folder), "--task", "PullCube", "--episodes", "2", "--out", str(files[-1]), "--no-progress"])
    base, w0, w1 = (load_result(f) for f in files)
    assert base["policy_kind"] == "policy" and base["arm"] == "bc_nostate" and base["train_seed"] == 0
    assert w1["policy_kind"] == "wmrl" and w1["arm"] == "wmrl" and w1["train_seed"] == 1
    assert w1["base"]["sha256"] == file_sha256(initial / "model.safetensors") == base["sha256"]
    assert w1["base"]["arm"] == "bc_nostate" and w1["base"]["train_seed"] == 0 and w1["base"]["unchanged"] is True
    assert w1["train"]["autoencoder_sha256"] == file_sha256(tiny_pack / "autoencoder" / "model.safetensors")
    assert w1["train"]["iterations"] == 1 and w1["train"]["mean_abs_residual_last"] >= 0
    start = SEED_RANGES["policy_test"][0]
    assert [e["reset_seed"] for e in w0["episodes"]] == [start, start + 1] and all(1 <= e["steps"] <= 50 for e in w0["episodes"])
    (diff,) = summarize([base, w0, w1])["differences"]
    assert diff["arms"] == ("wmrl", "bc_nostate") and diff["seed_pairs"] == [(0, 0), (1, 0)]
    rate = lambda rs: np.mean([e["success"] for r in rs for e in r["episodes"]])  # noqa: E731
    assert diff["mean"] == pytest.approx(rate([w0, w1]) - rate([base]))
    text = main(["--summarize", *map(str, files), "--out", str(tmp_path / "wmrl.md")])
    assert "| PullCube | test | bc_nostate | 0 | 2 |" in text and "| PullCube | test | wmrl | 0, 1 | 2 |" in text
    assert "wmrl − bc_nostate" in text

def test_reset_seeds_stay_inside_the_reserved_ranges():
    from training.evaluate_policy import main, reset_seeds

    lo, hi = SEED_RANGES["policy_val"]
    assert reset_seeds("val", 5, 3) == [lo + 5, lo + 6, lo + 7]
    with pytest.raises(ValueError, match="policy_test"):
        reset_seeds("test", SEED_RANGES["policy_test"][1] - SEED_RANGES["policy_test"][0] - 1, 2)
    with pytest.raises(SystemExit, match="outside"):
        main(["--policy", "zero", "--task", "PullCube", "--episodes", "5", "--seed", "-1", "--out", "/tmp/never.json"])


def _result(arm, seed, successes, task="PullCube", first=41_000):
    return {"kind": KIND, "task": task, "split": "test", "arm": arm, "train_seed": seed, "max_steps": 50,
            "train": {"minutes": 10.0} if seed is not None else None,
            "episodes": [{"reset_seed": first + i, "success": bool(s), "steps": 10} for i, s in enumerate(successes)]}


def test_summary_gives_cis_per_arm_and_the_paired_difference(tmp_path):
    from training.evaluate_policy import main

    rng = np.random.default_rng(0)
    files = []
    runs = [_result("wam", s, rng.random(40) < 0.8) for s in range(3)] + [_result("bc", s, rng.random(40) < 0.2) for s in range(3)]
    runs.append(_result("expert", None, np.ones(40)))
    runs.append(_result("bc", 3, rng.random(40) < 0.2))  # a BC seed without its WAM twin: left out of the pairing
    for i, r in enumerate(runs):
        files.append(tmp_path / f"eval_{i}.json")
        files[-1].write_text(json.dumps(r))
    summary = summarize([load_result(f) for f in files])
    by_arm = {r["arm"]: r for r in summary["arms"]}
    wam_rate = np.mean([e["success"] for r in runs[:3] for e in r["episodes"]])
    assert by_arm["wam"]["mean"] == pytest.approx(wam_rate)
    assert by_arm["wam"]["low"] <= wam_rate <= by_arm["wam"]["high"]
    assert by_arm["wam"]["train_seeds"] == [0, 1, 2] and by_arm["wam"]["episodes_per_seed"] == 40
    assert by_arm["expert"]["mean"] == 1.0 and by_arm["expert"]["train_seeds"] == [None]
    (diff,) = summary["differences"]
    bc_rate = np.mean([e["success"] for r in runs[3:6] for e in r["episodes"]])
    assert diff["arms"] == ("wam", "bc") and diff["train_seeds"] == [0, 1, 2]
    assert diff["mean"] == pytest.approx(wam_rate - bc_rate)
    assert 0 < diff["low"] <= diff["mean"] <= diff["high"]  # 0.8 vs 0.2 over 120 episodes each is clearly resolved
    table = tmp_path / "table.md"
    text = main(["--summarize", *map(str, files), "--out", str(table)])
    assert "| PullCube | test | wam | 0, 1, 2 | 40 |" in text and "wam − bc" in text and table.read_text().startswith("<!--")
    assert markdown(summary) in table.read_text()
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SystemExit, match="not a policy evaluation"):
        main(["--summarize", str(tmp_path / "bad.json"), "--out", str(table)])


def test_summary_pairs_each_wmrl_seed_with_the_one_initial_policy_it_started_from():
    rng = np.random.default_rng(1)
    initial = _result("bc_nostate", 0, rng.random(60) < 0.3) | {"sha256": "s-initial"}
    other_bc = _result("bc", 0, rng.random(60) < 0.9) | {"sha256": "s-other"}  # another arm with seed 0: never the pair
    wmrl = [_result("wmrl", k, rng.random(60) < 0.5) | {"base": {"sha256": "s-initial", "arm": "bc", "train_seed": 0}}
            for k in range(3)]  # the recorded arm is stale ('bc', as train.json said): the sha256 decides
    summary = summarize([initial, other_bc, *wmrl])
    (diff,) = [d for d in summary["differences"] if d["arms"][0] == "wmrl"]
    assert diff["arms"] == ("wmrl", "bc_nostate") and diff["seed_pairs"] == [(0, 0), (1, 0), (2, 0)]
    rate = lambda runs: np.mean([e["success"] for r in runs for e in r["episodes"]])  # noqa: E731
    assert diff["mean"] == pytest.approx(rate(wmrl) - rate([initial]))
    assert diff["rate_b"] == pytest.approx(rate([initial])) and diff["train_seeds"] == [0, 1, 2]
    assert diff["low"] <= diff["mean"] <= diff["high"]
    # the initial policy's row is fixed: the CI is that of the RL seeds x reset seeds against one row, not of 3 initial seeds
    from rla.stats import paired_difference

    a = np.array([[e["success"] for e in r["episodes"]] for r in wmrl], float)
    b = np.array([[e["success"] for e in initial["episodes"]]] * 3, float)
    ref = paired_difference(a, b, paired_seeds=True)
    assert (diff["low"], diff["high"]) == pytest.approx((ref["low"], ref["high"]))
    text = markdown(summary)
    assert "| PullCube | test | wmrl − bc_nostate | 0, 1, 2 (each RL seed with bc_nostate seed 0, the policy it started from) |" in text
    assert "0 (each RL seed with bc_nostate seed 0" in markdown(summarize([initial, wmrl[0]]))  # said even for RL seed 0 alone
    # without the initial policy's result (or a record of the base) there is nothing to pair with
    assert not [d for d in summarize([other_bc, *wmrl])["differences"] if d["arms"][0] == "wmrl"]
    bare = [{k: v for k, v in r.items() if k != "base"} for r in wmrl]
    assert not summarize([initial, *bare])["differences"]
