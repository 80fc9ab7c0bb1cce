import pytest
import torch

from rla import LatentFlow, RegressionWorldModel, RLAAutoencoder, RLAWorldModel, TokenFlowWorldModel
from rla.presets import model_configs
from tests.rla.helpers import A, D, K, N, tiny_configs, toy_batch, train


@pytest.fixture
def models():
    cfg = tiny_configs()
    return (RLAAutoencoder(cfg["autoencoder"]), LatentFlow(cfg["dynamics"]),
            RegressionWorldModel(cfg["regression"]), TokenFlowWorldModel(cfg["token_flow"]))


def test_shapes_and_dtypes(models):
    ae, dyn, reg, tf = models
    b = toy_batch(3)
    u = ae.encode(b["z_t"], b["z_k"])
    assert u.shape == (3, ae.config.num_queries, ae.config.latent_dim) and u.dtype == torch.float32
    assert ae.decode(b["z_t"], u).shape == (3, N, D)
    wm = RLAWorldModel(ae, dyn)
    for model in (wm, reg, tf):
        assert model.predict(b["z_t"], b["actions"]).shape == (3, N, D)
        assert model.predict_samples(b["z_t"], b["actions"], 4).shape == (4, 3, N, D)
        assert model.rollout(b["z_t"], torch.randn(3, 2, K, A)).shape == (3, 2, N, D)


def test_untrained_decoders_return_their_input(models):
    ae, dyn, reg, _ = models
    b = toy_batch(2)
    assert torch.equal(ae.decode(b["z_t"], torch.randn(2, ae.config.num_queries, ae.config.latent_dim)), b["z_t"])
    assert torch.equal(RLAWorldModel(ae, dyn).predict(b["z_t"], b["actions"]), b["z_t"])
    assert torch.equal(reg.predict(b["z_t"], b["actions"]), b["z_t"])


def test_sampling_is_deterministic_under_a_seed_and_varies_without(models):
    ae, dyn, _, tf = models
    train(dyn, {**toy_batch(), "u": torch.randn(8, ae.config.num_queries, ae.config.latent_dim)}, 3)
    train(ae, toy_batch(), 3)
    wm = RLAWorldModel(ae, dyn)
    b = toy_batch(2)
    for model in (wm, tf):
        p1 = model.predict(b["z_t"], b["actions"], generator=torch.Generator().manual_seed(1))
        p2 = model.predict(b["z_t"], b["actions"], generator=torch.Generator().manual_seed(1))
        p3 = model.predict(b["z_t"], b["actions"], generator=torch.Generator().manual_seed(2))
        assert torch.equal(p1, p2)
        assert not torch.equal(p1, p3)


@pytest.mark.slow  # trains for ~35 CPU-s
def test_autoencoder_overfits_a_few_samples():
    ae = RLAAutoencoder(tiny_configs()["autoencoder"])
    losses = train(ae, toy_batch(), 300)
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])


@pytest.mark.slow  # trains for ~3 CPU-min
def test_latent_flow_overfits_a_few_samples():
    cfg = tiny_configs()["dynamics"]
    dyn = LatentFlow(cfg)
    b = toy_batch()
    b["u"] = torch.randn(8, cfg.num_queries, cfg.latent_dim, generator=torch.Generator().manual_seed(0)) * 3 + 1
    dyn.set_latent_stats(b["u"])
    # fixed noise and time per sample make the flow loss a deterministic regression target
    torch.manual_seed(0)
    before = _mean_flow_loss(dyn, b)
    train(dyn, b, 600)
    after = _mean_flow_loss(dyn, b)
    assert after < before / 10, (before, after)
    # a model that fits the data samples it: the sampled latents land near the training ones
    sampled = dyn.sample_latent(b["z_t"], b["actions"], steps=20, generator=torch.Generator().manual_seed(0))
    err, spread = (sampled - b["u"]).abs().mean(), (b["u"] - b["u"].mean(0)).abs().mean()
    assert err < spread / 2, (err, spread)


def _mean_flow_loss(model, batch, repeats=20):
    torch.manual_seed(123)
    with torch.no_grad():
        return sum(model(batch)[0].item() for _ in range(repeats)) / repeats


@pytest.mark.slow  # trains for ~20 CPU-s
def test_regression_overfits_a_few_samples():
    reg = RegressionWorldModel(tiny_configs()["regression"])
    losses = train(reg, toy_batch(), 300)
    assert losses[-1] < losses[0] / 10


def test_change_weighting_counts_moving_tokens_more():
    cfg = tiny_configs()["autoencoder"]
    ae = RLAAutoencoder(cfg)
    b = toy_batch()
    plain = RLAAutoencoder(type(cfg)(**{**cfg.__dict__, "change_boost": 0.0}))
    plain.load_state_dict(ae.state_dict())
    # an untrained decoder copies z_t: the whole error sits on moving tokens, which the weighting boosts
    assert ae(b)[0] > plain(b)[0]


def test_presets_validate():
    cfg = model_configs("paper", 1024, 1024, 8)
    assert (cfg["autoencoder"].num_queries, cfg["autoencoder"].latent_dim, cfg["autoencoder"].width) == (32, 64, 1024)
    assert cfg["dynamics"].sample_steps == 30
    with pytest.raises(ValueError, match="preset"):
        model_configs("huge", 16, 8, 2)
    with pytest.raises(ValueError, match="width"):
        type(cfg["autoencoder"])(width=30, heads=4)


def test_world_model_rejects_mismatched_parts():
    a, b = tiny_configs(), model_configs("tiny", N, D + 1, A)
    with pytest.raises(ValueError, match="disagree"):
        RLAWorldModel(RLAAutoencoder(a["autoencoder"]), LatentFlow(b["dynamics"]))


def test_bad_shapes_are_named(models):
    ae, dyn, reg, _ = models
    with pytest.raises(AssertionError, match="z_t must be"):
        reg.predict(torch.randn(1, N + 1, D), torch.randn(1, K, A))
    with pytest.raises(AssertionError, match="actions must be"):
        reg.predict(torch.randn(1, N, D), torch.randn(1, K, A + 2))


def test_whitened_latents_have_identity_covariance_and_round_trip():
    cfg = tiny_configs()["dynamics"]
    cfg.whiten = True
    dyn = LatentFlow(cfg)
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(cfg.num_queries * cfg.latent_dim, cfg.num_queries * cfg.latent_dim, generator=g)
    u = (torch.randn(4000, cfg.num_queries * cfg.latent_dim, generator=g) @ mix).view(-1, cfg.num_queries, cfg.latent_dim) + 3.0
    dyn.set_latent_stats(u)
    x = dyn.standardize(u).flatten(1)
    cov = x.T @ x / (len(x) - 1)
    assert torch.allclose(cov, torch.eye(cov.shape[0]), atol=0.05)
    assert torch.allclose(dyn.unstandardize(dyn.standardize(u)), u, atol=1e-3)
    # per-element scaling (the default) leaves the correlations in: its covariance is far from identity
    plain = LatentFlow(tiny_configs()["dynamics"])
    plain.set_latent_stats(u)
    y = plain.standardize(u).flatten(1)
    assert (y.T @ y / (len(y) - 1) - torch.eye(cov.shape[0])).abs().max() > 0.5
