import math

import pytest
import torch

from rla.flow import AffinePath, euler_sample, logit_normal_times


def test_euler_integrates_exponential_decay():
    # dx/dt = x from t=1 down to t=0: x(0) = x(1) * e^-1
    x1 = torch.tensor([[2.0, -1.0]])
    x0 = euler_sample(lambda x, t: x, x1, steps=2000)
    assert torch.allclose(x0, x1 * math.exp(-1), rtol=1e-3)


def test_exact_velocity_field_recovers_data_in_one_step():
    # for a point mass at c and sigma_min = 0, the exact field is v = (x - c) / t
    c = torch.tensor([[0.5, -2.0, 3.0]])
    for steps in (1, 7):
        x = euler_sample(lambda x, t: (x - c) / t[:, None], torch.randn(1, 3), steps=steps)
        assert torch.allclose(x, c, atol=1e-5)


def test_path_endpoints_and_velocity():
    path = AffinePath(sigma_min=0.0)
    x_0, eps = torch.randn(4, 3, 2), torch.randn(4, 3, 2)
    assert torch.allclose(path.sample(x_0, torch.zeros(4), eps).x_t, x_0)
    assert torch.allclose(path.sample(x_0, torch.ones(4), eps).x_t, eps)
    s = path.sample(x_0, torch.full((4,), 0.3), eps)
    h = 1e-3
    s2 = path.sample(x_0, torch.full((4,), 0.3 + h), eps)
    assert torch.allclose((s2.x_t - s.x_t) / h, s.velocity, atol=1e-2)


def test_sampler_is_deterministic_given_generator():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(logit_normal_times(8, generator=g1), logit_normal_times(8, generator=g2))
    t = logit_normal_times(10_000, generator=torch.Generator().manual_seed(0))
    assert 0 < t.min() and t.max() < 1 and abs(t.median().item() - 0.5) < 0.02


def test_shape_and_step_checks():
    with pytest.raises(ValueError, match="steps"):
        euler_sample(lambda x, t: x, torch.zeros(1, 2), steps=0)
    with pytest.raises(AssertionError, match="t must be"):
        AffinePath().sample(torch.zeros(2, 3), torch.zeros(3))
