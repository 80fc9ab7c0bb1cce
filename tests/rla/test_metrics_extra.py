import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rla.metrics import energy_score, gmsd


def _scene(b=3, h=64, w=64, seed=0):
    """Coloured rectangles on a textured grey background: edges at many scales, like a tabletop frame."""
    g = torch.Generator().manual_seed(seed)
    img = 110 + 10 * torch.rand(b, h, w, 3, generator=g)
    for i in range(b):
        for _ in range(8):
            y0, x0 = torch.randint(0, h - 8, (2,), generator=g).tolist()
            hh, ww = torch.randint(4, 24, (2,), generator=g).tolist()
            img[i, y0:y0 + hh, x0:x0 + ww] = torch.rand(3, generator=g) * 255
    return img.round().to(torch.uint8)


def _blur(img, sigma):
    x = torch.arange(-3 * math.ceil(sigma), 3 * math.ceil(sigma) + 1, dtype=torch.float32)
    k = torch.exp(-x**2 / (2 * sigma**2))
    k = (k / k.sum())[None, None].expand(3, 1, -1)
    t = img.permute(0, 3, 1, 2).float()
    p = k.shape[-1] // 2
    t = F.conv2d(F.pad(t, [p, p, 0, 0], mode="replicate"), k[..., None, :], groups=3)
    t = F.conv2d(F.pad(t, [0, 0, p, p], mode="replicate"), k[..., :, None], groups=3)
    return t.permute(0, 2, 3, 1).round().clamp(0, 255).to(torch.uint8)


def _speckle(img, amount, seed=1):
    g = torch.Generator().manual_seed(seed)
    noisy = img.float() * (1 + amount * torch.randn(img.shape, generator=g))
    return noisy.round().clamp(0, 255).to(torch.uint8)


def _gmsd_reference(pred, real):
    """Independent port of the authors' GMSD.m with scipy (MATLAB conv2 'same' = full conv, rows/cols 1..H)."""
    signal = pytest.importorskip("scipy.signal")

    def same(y, k):
        return signal.convolve2d(y, k, mode="full")[1:y.shape[0] + 1, 1:y.shape[1] + 1]

    def lum(img):
        return img.astype(np.float64) @ np.array([0.299, 0.587, 0.114])

    y1, y2 = lum(real), lum(pred)
    y1, y2 = (same(y, np.full((2, 2), 0.25))[::2, ::2] for y in (y1, y2))
    dx = np.array([[1.0, 0, -1]] * 3) / 3
    g1, g2 = (np.hypot(same(y, dx), same(y, dx.T)) for y in (y1, y2))
    q = (2 * g1 * g2 + 170) / (g1**2 + g2**2 + 170)
    return q.std(ddof=1)


def test_gmsd_is_zero_for_identical_images():
    img = _scene()
    assert torch.equal(gmsd(img, img), torch.zeros(3))


@pytest.mark.parametrize("size", [(64, 64), (33, 30)])  # odd sizes exercise the zero-padded 2x2 mean
def test_gmsd_matches_a_scipy_port_of_the_reference_code(size):
    real = _scene(2, *size, seed=3)
    pred = _speckle(_blur(real, 1.0), 0.1)
    ours = gmsd(pred, real)
    for i in range(2):
        ref = _gmsd_reference(pred[i].numpy(), real[i].numpy())
        assert ours[i].item() == pytest.approx(ref, rel=1e-4, abs=1e-6)


def test_gmsd_grows_with_blur_and_with_speckle():
    real = _scene()
    blurred = [gmsd(_blur(real, s), real) for s in (0.7, 1.5, 3.0)]
    assert (blurred[0] > 0.01).all()
    assert (blurred[0] < blurred[1]).all() and (blurred[1] < blurred[2]).all()
    speckled = [gmsd(_speckle(real, a), real) for a in (0.03, 0.1, 0.3)]
    assert (speckled[0] > 0).all()
    assert (speckled[0] < speckled[1]).all() and (speckled[1] < speckled[2]).all()


def test_gmsd_is_symmetric():
    real = _scene()
    pred = _speckle(_blur(real, 1.0), 0.1)
    assert torch.equal(gmsd(pred, real), gmsd(real, pred))


def test_gmsd_mask_sees_only_the_foreground():
    real = _scene(2)
    pred = real.clone()
    pred[:, :, 32:] = _speckle(real, 0.3)[:, :, 32:]  # right half differs
    left = torch.zeros(2, 64, 64, dtype=torch.bool)
    left[:, 8:56, 4:24] = True  # far enough from column 32 for the 2x2 mean and the 3x3 filter
    assert (gmsd(pred, real) > 0.05).all()
    assert torch.equal(gmsd(pred, real, left), torch.zeros(2))
    right = torch.zeros_like(left)
    right[:, 8:56, 40:60] = True
    assert (gmsd(pred, real, right) > gmsd(pred, real)).all()  # the unchanged left half no longer dilutes it


def test_gmsd_empty_mask_is_nan():
    real = _scene(2)
    mask = torch.zeros(2, 64, 64, dtype=torch.bool)
    mask[1, 10:20, 10:20] = True
    out = gmsd(_blur(real, 1.0), real, mask)
    assert math.isnan(out[0].item()) and math.isfinite(out[1].item())


def test_energy_score_prefers_the_true_distribution():
    g = torch.Generator().manual_seed(0)
    b, n, d, s = 500, 4, 8, 8
    mu = torch.randn(b, n, d, generator=g)  # a known predictive mean per example
    real = mu + torch.randn(b, n, d, generator=g)  # y ~ N(mu, 1)
    scores = {}
    for sigma in (0.3, 1.0, 3.0):
        samples = mu + sigma * torch.randn(s, b, n, d, generator=g)
        scores[sigma] = energy_score(samples, real).mean().item()
    assert scores[1.0] < scores[0.3] and scores[1.0] < scores[3.0], scores
    biased = mu + 0.5 + torch.randn(s, b, n, d, generator=g)  # right spread, wrong mean
    assert scores[1.0] < energy_score(biased, real).mean().item()


def test_energy_score_of_deterministic_samples_is_the_rms_error():
    g = torch.Generator().manual_seed(1)
    pred, real = torch.randn(2, 5, 6, generator=g), torch.randn(2, 5, 6, generator=g)
    rms = (pred - real).square().mean(dim=(1, 2)).sqrt()
    assert torch.allclose(energy_score(pred.expand(4, -1, -1, -1), real), rms, atol=1e-6)
    assert torch.allclose(energy_score(pred[None], real), rms, atol=1e-6)  # S = 1


def test_energy_score_mask_and_spread_term():
    g = torch.Generator().manual_seed(2)
    samples, real = torch.randn(3, 2, 5, 6, generator=g), torch.randn(2, 5, 6, generator=g)
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, :2] = True
    changed = samples.clone()
    changed[:, 0, 2:] += 100.0  # outside the mask of example 0
    out = energy_score(changed, real, mask)
    assert torch.allclose(out[0], energy_score(samples, real, mask)[0])
    assert math.isnan(out[1].item())  # empty mask
    # the unbiased estimator by hand, over the 2 masked tokens of example 0
    x, y = samples[:, 0, :2].reshape(3, -1), real[0, :2].reshape(-1)
    norm = lambda v: v.norm() / math.sqrt(v.numel())  # noqa: E731
    first = sum(norm(x[i] - y) for i in range(3)) / 3
    second = sum(norm(x[i] - x[j]) for i in range(3) for j in range(3) if i != j) / 6
    assert out[0].item() == pytest.approx((first - 0.5 * second).item(), rel=1e-5)
