"""rla.interpolate: paths through latent space and matching decoded frames to real ones."""
import math

import pytest
import torch

from rla.interpolate import alphas, interpolate, latent_noise, lerp, match_frames, noise_path, rank_correlation, slerp


def test_alphas_span_zero_to_one():
    a = alphas(5)
    assert a.tolist() == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    assert alphas(1).tolist() == [1.0]
    with pytest.raises(ValueError, match="at least one"):
        alphas(0)


@pytest.mark.parametrize("fn", [lerp, slerp])
def test_endpoints_are_exact(fn):
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    out = fn(x0, x1, torch.tensor([0.0, 1.0]))
    assert out.shape == (2, 4, 8)
    torch.testing.assert_close(out[0], x0, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], x1, atol=1e-5, rtol=0)


def test_lerp_midpoint_is_the_mean():
    x0, x1 = torch.zeros(3), torch.tensor([2.0, 4.0, 6.0])
    assert lerp(x0, x1, 0.5)[0].tolist() == [1.0, 2.0, 3.0]


def test_slerp_keeps_the_norm_between_orthogonal_unit_vectors():
    x0, x1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    mid = slerp(x0, x1, torch.tensor([0.5]))[0]
    assert mid.norm().item() == pytest.approx(1.0, abs=1e-6)
    assert lerp(x0, x1, 0.5)[0].norm().item() == pytest.approx(math.sqrt(0.5))  # a line cuts the corner


def test_slerp_falls_back_to_lerp_for_parallel_or_zero_endpoints():
    x = torch.tensor([1.0, 2.0])
    torch.testing.assert_close(slerp(x, 3 * x, 0.5), lerp(x, 3 * x, 0.5))
    torch.testing.assert_close(slerp(torch.zeros(2), x, 0.5), lerp(torch.zeros(2), x, 0.5))


def test_interpolate_by_name_and_bad_inputs():
    x0, x1 = torch.zeros(2), torch.ones(2)
    torch.testing.assert_close(interpolate(x0, x1, 0.25, "linear"), lerp(x0, x1, 0.25))
    with pytest.raises(ValueError, match="unknown interpolation path"):
        interpolate(x0, x1, 0.5, "cubic")
    with pytest.raises(ValueError, match="finite"):
        lerp(x0, x1, torch.tensor([float("nan")]))


def test_noise_path_goes_from_noise_to_the_latent():
    u = torch.randn(4, 8)
    eps = latent_noise(u, mean=torch.full((4, 8), 5.0), std=torch.full((4, 8), 1e-6), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(eps, torch.full((4, 8), 5.0), atol=1e-4)  # mean + std·ε
    path = noise_path(u, eps, alphas(3))
    torch.testing.assert_close(path[0], eps)
    torch.testing.assert_close(path[-1], u)


def test_match_frames_finds_the_closest_real_frame():
    real = torch.arange(5, dtype=torch.float32).view(5, 1, 1).expand(5, 2, 3).clone()  # frame i has value i
    decoded = torch.tensor([0.1, 2.2, 3.9, 2.6]).view(4, 1, 1).expand(4, 2, 3)
    index, dist = match_frames(decoded, real)
    assert index.tolist() == [0, 2, 4, 3]
    assert dist.tolist() == pytest.approx([0.1, 0.2, 0.1, 0.4], abs=1e-6)


def test_rank_correlation():
    x = torch.arange(6.0)
    assert rank_correlation(x, x * 3 + 1) == pytest.approx(1.0)
    assert rank_correlation(x, -x) == pytest.approx(-1.0)
    assert rank_correlation(x, torch.tensor([0, 0, 1, 1, 2, 2.0])) > 0.9  # ties
    assert rank_correlation([1, 2, 3, 4], [4, 3, 1, 2]) == pytest.approx(-0.8)  # scipy's value, by hand: 1 − 6·18/60
    assert math.isnan(rank_correlation(x, torch.zeros(6)))
