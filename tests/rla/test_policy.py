"""rla.policy: config checks, the labelled / action-less split, RLA targets, losses, EMA, save → load."""
from __future__ import annotations

import pytest
import torch

from rla.policy import EMATrainer, Policy, PolicyConfig, PolicyData, heldout_report, policy_config, split_episodes
from tests.app.tiny import build_tiny_pack, synthetic_episodes

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def pack(tmp_path_factory, one_thread):
    from rla import ModelPack

    return ModelPack.load(build_tiny_pack(tmp_path_factory.mktemp("pack") / "tiny", train_steps=10))


@pytest.fixture(scope="module")
def episodes():
    return synthetic_episodes(n=6, steps=20, seed=1)  # even indices succeed


def make_data(episodes, pack, **kw) -> PolicyData:
    kw = {"labelled_fraction": 0.4, "heldout": 1, **kw}
    return PolicyData.build(episodes, pack, **kw)


def make_policy(pack, data=None, seed=0, state_dim=2, **fields) -> Policy:
    ae = pack.autoencoder.config
    cfg = policy_config("tiny", num_tokens=pack.encoder.num_tokens, token_dim=pack.encoder.dim, state_dim=state_dim,
                        action_dim=pack.info.action_dim, chunk=pack.info.chunk, execute=3, rla_queries=ae.num_queries,
                        rla_dim=ae.latent_dim, encoder=pack.info.encoder.to_dict(), **fields)
    torch.manual_seed(seed)
    policy = Policy(cfg)
    if data is not None:
        policy.set_normalizer(*data.normalizer_data())
    return policy


def test_config_rejects_bad_fields():
    with pytest.raises(ValueError, match="trunk"):
        PolicyConfig(trunk="vit")
    with pytest.raises(ValueError, match="execute"):
        PolicyConfig(chunk=4, execute=5)
    with pytest.raises(ValueError, match="rla_weight"):
        PolicyConfig(rla_weight=-1)
    with pytest.raises(ValueError, match="preset"):
        policy_config("huge")
    assert not PolicyConfig(rla_weight=0).has_rla_head


def test_split_labels_the_first_successful_episodes(episodes):
    labelled, action_less, held = split_episodes(episodes, labelled_fraction=0.5, heldout=1)
    assert [e.episode_id for e in held] == ["synthetic-5"]
    # episodes 0, 2, 4 succeed; half of 3 rounds to 2: the first two of them
    assert [e.episode_id for e in labelled] == ["synthetic-0", "synthetic-2"]
    assert [e.episode_id for e in action_less] == ["synthetic-1", "synthetic-3", "synthetic-4"]
    with pytest.raises(ValueError, match="heldout"):
        split_episodes(episodes, 0.5, heldout=6)


def test_action_less_batch_carries_no_actions_or_qpos(episodes, pack):
    data = make_data(episodes, pack)
    assert data.action_less and all(d.actions is None and d.qpos is None for d in data.action_less)
    batch = data.draw(data.action_less, 8, torch.Generator().manual_seed(0))
    assert "actions" not in batch and "qpos" not in batch and "action_pad" not in batch
    assert not batch["labelled"].any() and batch["tokens"].shape[0] == 8
    mixed = data.sample_batch(8, torch.Generator().manual_seed(0))
    n_lab = int(mixed["labelled"].sum())
    assert n_lab == 4 and mixed["labelled"][:4].all()  # labelled rows first, 50 %
    assert mixed["actions"].shape[0] == mixed["qpos"].shape[0] == n_lab  # only the labelled rows carry them
    with pytest.raises(ValueError, match="action-less"):
        PolicyData(data.labelled, data.labelled, [], chunk=5, rla_k=5)


def test_rla_target_equals_the_autoencoders_encoding(episodes, pack):
    data = make_data(episodes, pack)
    k = pack.info.chunk
    ep = next(e for e in episodes if e.episode_id == data.action_less[0].episode_id)
    z = pack.encoder.encode(ep.frames)  # (T+1, N, D), encoded here independently of the data's cache
    t = 3
    with torch.no_grad():
        u = pack.autoencoder.encode(z[t:t + 1], z[t + k:t + k + 1])[0]
    expected = (u - pack.dynamics.u_mean) / pack.dynamics.u_std
    row = data.rows_of(data.action_less, [0], [t])
    assert row["rla_valid"].item()
    torch.testing.assert_close(row["rla"][0], expected, rtol=1e-4, atol=1e-4)
    late = data.rows_of(data.action_less, [0], [ep.num_steps - 1])  # t + k past the end: no target
    assert not late["rla_valid"].item()


def test_bc_and_wam_share_initialisation_and_labelled_batches(episodes, pack):
    wam_data, bc_data = make_data(episodes, pack), make_data(episodes, pack, action_less_rows=False)
    assert bc_data.action_less == []  # the BC arm never encodes action-less episodes
    for step in range(3):
        g_wam, g_bc = torch.Generator().manual_seed(100 + step), torch.Generator().manual_seed(100 + step)
        w, b = wam_data.sample_batch(16, g_wam), bc_data.sample_batch(16, g_bc)
        assert len(b["labelled"]) == 8 and b["labelled"].all()
        for key in ("tokens", "actions", "qpos", "t"):
            assert torch.equal(w[key][:8], b[key]), key
    wam, bc = make_policy(pack, seed=3, rla_weight=0.05), make_policy(pack, seed=3, rla_weight=0.0)
    assert bc.rla_head is None and wam.rla_head is not None
    bc_state = bc.state_dict()
    for name, value in wam.state_dict().items():
        if not name.startswith("rla_head"):
            assert torch.equal(value, bc_state[name]), name


def _action_head_grad(policy, batch):
    policy.zero_grad()
    loss, _ = policy(batch)
    loss.backward()
    g = policy.action_head.weight.grad
    return torch.zeros_like(policy.action_head.weight) if g is None else g.clone()


def test_action_less_rows_give_zero_gradient_on_the_action_head(episodes, pack):
    data = make_data(episodes, pack)
    policy = make_policy(pack, data, dropout=0.0)
    free = data.draw(data.action_less, 8, torch.Generator().manual_seed(1))
    assert _action_head_grad(policy, free).abs().max() == 0
    assert policy.rla_head.weight.grad.abs().max() > 0  # the RLA head does learn from them
    mixed = data.sample_batch(16, torch.Generator().manual_seed(2))
    lab = {k: (v[:8] if k not in ("actions", "qpos", "action_pad") else v) for k, v in mixed.items()}
    torch.testing.assert_close(_action_head_grad(policy, mixed), _action_head_grad(policy, lab))


def test_tiny_policy_overfits_a_few_labelled_samples(episodes, pack):
    data = make_data(episodes, pack)
    batch = data.draw(data.labelled, 8, torch.Generator().manual_seed(0))
    policy = make_policy(pack, data, dropout=0.0, rla_weight=0.0)
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-3, weight_decay=0.0)
    first = None
    for _ in range(200):
        loss, logs = policy(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = logs["action_mse"] if first is None else first
    assert logs["action_mse"] < 0.02 * first, (first, logs)


def test_save_and_load_are_bit_exact(episodes, pack, tmp_path):
    data = make_data(episodes, pack)
    policy = make_policy(pack, data, seed=5).eval()
    policy.save_pretrained(tmp_path / "p")
    loaded = Policy.load(tmp_path / "p")
    assert loaded.config == policy.config
    state = loaded.state_dict()
    assert set(state) == set(policy.state_dict())
    for name, value in policy.state_dict().items():
        assert torch.equal(value, state[name]), name
    obs = {"image": episodes[0].frames[4], "qpos": episodes[0].qpos[4]}
    assert torch.equal(policy.predict_chunk(obs), loaded.predict_chunk(obs))


def test_a_stateless_policy_saves_no_empty_tensors_and_loads_older_files(episodes, pack, tmp_path):
    """Zero-size tensors all sit at storage address 0: Accelerate's safetensors checkpoint kept one of them
    and dropped the others as "shared", so a --no-state run could not resume (tests/training/test_policy_cli.py)."""
    from safetensors.torch import load_file, save_file

    data = make_data(episodes, pack)
    policy = make_policy(pack, data, seed=5, state_dim=0).eval()
    state = EMATrainer(policy).state_dict()
    assert not [k for k, v in state.items() if v.numel() == 0]
    # files saved before carry the empty normaliser: it is ignored, every other tensor loads strictly
    policy.save_pretrained(tmp_path / "p")
    weights = tmp_path / "p" / "model.safetensors"
    save_file({**load_file(str(weights)), "state_mean": torch.zeros(0), "state_std": torch.ones(0)}, str(weights))
    loaded = Policy.load(tmp_path / "p")
    assert loaded.state_dict().keys() == policy.state_dict().keys()
    for name, value in policy.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name]), name
    obs = {"image": episodes[0].frames[4], "qpos": episodes[0].qpos[4]}  # qpos is ignored without a state input
    assert torch.equal(policy.predict_chunk(obs), loaded.predict_chunk(obs))


def test_select_action_executes_the_first_part_of_each_chunk(episodes, pack):
    data = make_data(episodes, pack)
    policy = make_policy(pack, data).eval()
    obs = {"image": episodes[0].frames[0], "qpos": episodes[0].qpos[0]}
    chunk = policy.predict_chunk(obs)  # (1, K, A), in env units and bounds
    assert chunk.shape == (1, pack.info.chunk, pack.info.action_dim) and chunk.abs().max() <= 1
    policy.reset()
    got = [policy.select_action(obs) for _ in range(policy.config.execute)]
    torch.testing.assert_close(torch.stack(got, 1), chunk[:, : policy.config.execute])
    other = {"image": episodes[1].frames[9], "qpos": episodes[1].qpos[9]}
    torch.testing.assert_close(policy.select_action(other), policy.predict_chunk(other)[:, 0])  # queue empty: re-predicts
    policy.reset()
    torch.testing.assert_close(policy.select_action(obs), chunk[:, 0])
    tokens = pack.encoder.encode(episodes[0].frames[0])[0]  # an imagined env hands tokens, not frames
    torch.testing.assert_close(policy.predict_chunk({"tokens": tokens, "qpos": episodes[0].qpos[0]}), chunk)


def test_ema_rides_in_the_state_dict_and_is_not_trained(episodes, pack):
    data = make_data(episodes, pack)
    policy = make_policy(pack, data)
    trainer = EMATrainer(policy, max_decay=0.9).train()
    trainable = [n for n, p in trainer.named_parameters() if p.requires_grad]
    assert trainable and not any(n.startswith("ema.") for n in trainable)
    opt = torch.optim.AdamW([p for p in trainer.parameters() if p.requires_grad], lr=1e-2)
    start = {k: v.clone() for k, v in policy.state_dict().items()}
    for step in range(20):
        loss, _ = trainer(data.sample_batch(8, torch.Generator().manual_seed(step)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    trainer.update()
    assert int(trainer.updates) == 21 and trainer.decay() == pytest.approx(22 / 31)  # still warming up to 0.9
    w, avg, w0 = policy.action_head.weight, trainer.ema.action_head.weight, start["action_head.weight"]
    assert not torch.equal(avg, w) and not torch.equal(avg, w0)
    assert (avg - w).norm() < (w0 - w).norm()  # the average sits near the recent weights
    assert torch.equal(trainer.ema.action_mean, policy.action_mean)  # normalisers are copied
    assert any(k.startswith("ema.") for k in trainer.state_dict())  # saved in fit's checkpoints


def test_heldout_report_scores_rla_r2_against_the_mean(episodes, pack):
    data = make_data(episodes, pack)
    policy = make_policy(pack, data).eval()
    report = heldout_report(policy, data)
    assert report["heldout_episodes"] == 1 and report["heldout_action_mse"] > 0
    targets = data.rows_of(data.heldout, [0] * 20, list(range(20)))
    mean = targets["rla"][targets["rla_valid"]].mean(0)
    with torch.no_grad():  # a head that always predicts the held-out mean scores R² = 0
        policy.rla_head.weight.zero_()
        policy.rla_head.bias.copy_(mean.flatten())
    assert abs(heldout_report(policy, data)["heldout_rla_r2"]) < 1e-5


def test_resnet18_trunk_runs_from_scratch_on_frames(episodes, pack):
    data = make_data(episodes, pack, obs="image")
    policy = make_policy(pack, data, trunk="resnet18", image_size=64)
    assert policy.trunk.num_tokens == 4  # a 2 × 2 feature map at 64 px
    batch = data.sample_batch(4, torch.Generator().manual_seed(0))
    assert batch["image"].dtype == torch.uint8 and "tokens" not in batch
    loss, logs = policy(batch)
    loss.backward()
    assert torch.isfinite(loss) and policy.trunk.backbone.conv1.weight.grad.abs().max() > 0
    with pytest.raises(ValueError, match="image"):
        policy.predict_chunk({"tokens": torch.zeros(1, 16, 768)})
