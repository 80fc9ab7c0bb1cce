"""The token-space flow baseline must be able to reach every token dimension.

The first version predicted the velocity through ``Linear(width → D)``: with width < D its
samples kept most of the starting noise. These tests use width 8 < D = 48 and fail on it.
"""
import pytest
import torch

from rla.baselines import TokenFlowConfig, TokenFlowWorldModel
from tests.rla.helpers import train

N, D, A = 4, 48, 2


def _model(**kw):
    torch.manual_seed(0)
    cfg = TokenFlowConfig(num_tokens=N, token_dim=D, action_dim=A, width=8, heads=2, condition_depth=1, flow_depth=1, sample_steps=10, **kw)
    return TokenFlowWorldModel(cfg)


def _data(b=16):
    g = torch.Generator().manual_seed(1)
    z_t = torch.randn(b, N, D, generator=g)
    z_k = z_t + torch.linspace(-1, 1, D)  # a shift along all D dimensions
    return {"z_t": z_t, "z_k": z_k, "actions": torch.randn(b, 3, A, generator=g)}


@pytest.mark.slow  # trains for ~8 CPU-s
def test_targets_spanning_all_dimensions_are_reproduced_and_no_noise_survives():
    model, batch = _model(), _data()
    model.set_token_stats(torch.cat([batch["z_t"], batch["z_k"]]))
    train(model, batch, 150)
    model.eval()
    noise = torch.randn(batch["z_t"].shape, generator=torch.Generator().manual_seed(7))
    pred = model.integrate(batch["z_t"], batch["actions"], noise, steps=10) * model.z_std + model.z_mean
    err = pred - batch["z_k"]
    assert err.abs().mean() < 0.15 * (batch["z_k"] - batch["z_t"]).abs().mean()
    # the noise the sampler started from must not be left in the sample
    survived = (err * noise).sum() / noise.square().sum()
    assert abs(survived) < 0.05


def test_the_derived_velocity_lands_on_the_predicted_data_in_the_last_step():
    model, batch = _model(), _data(4)
    cond = model.prepare(batch["z_t"], batch["actions"])
    x = torch.randn(4, N, D)
    t = torch.full((4,), 0.1)
    x_0 = model.head(x, t, cond)
    stepped = x + (0.0 - 0.1) * model.velocity(x, t, cond)
    assert torch.allclose(stepped, x_0, atol=1e-3)


def test_velocity_checkpoints_of_the_first_version_still_load_and_sample(tmp_path):
    old = _model(prediction="velocity", change_boost=0.0)
    old.save_pretrained(tmp_path)
    again = TokenFlowWorldModel.load(tmp_path)
    assert again.config.prediction == "velocity"
    batch = _data(2)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(old.predict(batch["z_t"], batch["actions"], generator=g()), again.predict(batch["z_t"], batch["actions"], generator=g()))
