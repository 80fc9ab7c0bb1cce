import numpy as np
import pytest
import torch

from rla import RegressionWorldModel
from rla.cost import count_flops, measure_cost
from rla.latent_map import LatentMap, map_features, map_latents
from rla.layers import change_weights
from rla.metrics import load_lpips, moving_tokens, psnr, ssim, ssim_map, token_l1
from tests.rla.helpers import A, D, K, N, tiny_configs


def test_ssim_and_psnr():
    img = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    assert torch.allclose(ssim(img, img), torch.ones(2), atol=1e-5)
    flat = torch.full((2, 32, 32, 3), 128, dtype=torch.uint8)  # structure-free: noise destroys SSIM
    assert (ssim((flat.float() + torch.randn(flat.shape) * 20).to(torch.uint8), flat) < 0.3).all()
    noisy = (img.float() + torch.randn_like(img.float()) * 20).clamp(0, 255).to(torch.uint8)
    assert (ssim(noisy, img) < 0.99).all()
    mse = ((noisy.float() - img.float()) / 255).square().mean(dim=(1, 2, 3))
    assert torch.allclose(psnr(noisy, img), 10 * torch.log10(1 / mse), atol=1e-3)


def _ssim_pair():
    """A textured target and two predictions (structured noise; a shift with a contrast change), made by
    formula so the pixels never depend on a random-number stream."""
    i, j, c = np.meshgrid(np.arange(32), np.arange(40), np.arange(3), indexing="ij")
    target = 128 + 60 * np.sin(i / 3.0) * np.cos(j / 4.0 + c) + 6 * ((i * 7 + j * 13 + c * 5) % 11 - 5)
    noisy = target + 4 * ((i * j + 3 * c) % 17 - 8)
    shifted = np.roll(target, 1, axis=1) * 0.8 + 20
    u8 = lambda a: torch.from_numpy(np.clip(np.round(a), 0, 255).astype(np.uint8))  # noqa: E731
    return u8(target), u8(noisy), u8(shifted)


def test_ssim_matches_scikit_image_on_the_interior():
    # Frozen once with scikit-image 0.26.0 (not a dependency of this project), on the images above:
    #   skimage.metrics.structural_similarity(pred / 255, target / 255, data_range=1.0, channel_axis=-1,
    #       gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    # skimage averages its SSIM map without a 5-pixel border (half the 11-pixel window), so the
    # comparison is on that interior, where padding (reflect here, scipy's 'reflect' there) plays no part.
    reference = torch.tensor([0.7764171766449314, 0.4852113162042364], dtype=torch.float64)
    target, noisy, shifted = _ssim_pair()
    pred, tgt = torch.stack([noisy, shifted]), torch.stack([target, target])
    interior = ssim_map(pred, tgt)[:, 5:-5, 5:-5].mean((1, 2)).double()
    assert torch.allclose(interior, reference, atol=2e-5), interior
    inside = torch.zeros(2, 32, 40, dtype=torch.bool)
    inside[:, 5:-5, 5:-5] = True
    assert torch.allclose(ssim(pred, tgt, inside).double(), reference, atol=2e-5)  # the masked mean is the same number


def test_moving_tokens_are_those_whose_mean_change_exceeds_the_threshold():
    z_t = torch.zeros(2, 4, 3)
    z_k = z_t.clone()
    z_k[0, 1] = 0.125  # mean |change| 0.125
    z_k[1, 2, 0] = -0.375  # mean |change| 0.125: one channel of three
    z_k[1, 3] = -0.04  # below the threshold
    expected = torch.tensor([[False, True, False, False], [False, False, True, False]])
    assert torch.equal(moving_tokens(z_t, z_k, 0.05), expected)
    assert not moving_tokens(z_t, z_k, 0.125).any()  # strictly above


def test_change_weights_boost_exactly_the_moving_tokens():
    g = torch.Generator().manual_seed(0)
    z_t, z_k = torch.randn(3, 16, 8, generator=g), torch.randn(3, 16, 8, generator=g)
    threshold = float((z_k - z_t).abs().mean(-1).median())  # about half the tokens move
    moving = moving_tokens(z_t, z_k, threshold)
    assert 0 < moving.sum() < moving.numel()
    w = change_weights(z_t, z_k, 4.0, threshold)
    assert w.shape == (3, 16, 1)
    assert torch.equal(w[..., 0], torch.where(moving, 5.0, 1.0))


def test_masked_metrics_only_see_the_mask():
    a = torch.zeros(1, 32, 32, 3, dtype=torch.uint8)
    b = a.clone()
    b[:, :, 16:] = 255  # right half differs
    left = torch.zeros(1, 32, 32, dtype=torch.bool)
    left[:, :, :8] = True
    assert psnr(b, a, left) > 90 and psnr(b, a) < 10


def test_token_l1():
    p, t = torch.zeros(2, 4, 3), torch.ones(2, 4, 3)
    t[:, 0] = 0
    assert torch.allclose(token_l1(p, t), torch.full((2,), 0.75))
    mask = torch.tensor([[True, False, False, False]] * 2)
    assert torch.allclose(token_l1(p, t, mask), torch.zeros(2))


def test_lpips_is_none_without_local_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert load_lpips() is None


def test_cost_counts_flops_and_time():
    model = RegressionWorldModel(tiny_configs()["regression"])
    z, a = torch.randn(1, N, D), torch.randn(1, K, A)
    cost = measure_cost(model, z, a, repeats=3)
    assert cost.gflops * 1e9 == pytest.approx(count_flops(model.predict, z, a)) and cost.gflops > 0
    assert 0 < cost.ms_median <= cost.ms_p95
    lin = torch.nn.Linear(10, 20, bias=False)
    assert count_flops(lin, torch.randn(3, 10)) == 2 * 3 * 10 * 20


def test_latent_map_projects_points_onto_their_neighbours(tmp_path):
    rng = np.random.default_rng(0)
    lat = rng.normal(size=(50, 6)).astype(np.float32)
    coords = rng.normal(size=(50, 2)).astype(np.float32)
    m = LatentMap(lat, coords, {"t": np.arange(50)})
    assert np.allclose(m.project(lat[:3], neighbours=1), coords[:3], atol=1e-4)
    m.save(tmp_path / "map.npz")
    m2 = LatentMap.load(tmp_path / "map.npz")
    assert np.array_equal(m2.meta["t"], np.arange(50))
    with pytest.raises(ValueError, match="latent size"):
        m.project(np.zeros((1, 5)))


@pytest.mark.parametrize("whiten", [False, True])
def test_map_features_standardise_with_the_dynamics_and_come_back(whiten):
    from rla import LatentFlow

    dyn = LatentFlow(tiny_configs(whiten=whiten)["dynamics"])
    q, c = dyn.u_mean.shape
    u = torch.randn(64, q, c) * torch.linspace(0.5, 3.0, c) + 2.0
    dyn.set_latent_stats(u)
    x = map_features(dyn, u)
    assert x.shape == (64, q * c) and x.dtype == np.float32
    assert np.allclose(x.mean(0), 0, atol=1e-4) and np.allclose(x.std(0, ddof=1), 1, atol=0.05)  # unit spread per feature
    assert torch.allclose(map_latents(dyn, x), u, atol=1e-4)


def test_flop_count_of_an_attention_block_matches_a_hand_count():
    from rla.layers import Block

    b, n, w, heads = 2, 10, 16, 4
    block = Block(w, heads, mlp_ratio=4.0)
    # q (W×W), k and v (W×2W), output projection (W×W), MLP (W×4W and 4W×W): 12·W² multiply-adds per
    # token; scores Q·Kᵀ and the weighted sum of V: N·W each per token; 2 FLOPs per multiply-add
    hand = 2 * b * n * 12 * w * w + 2 * 2 * b * n * n * w
    assert count_flops(block, torch.randn(b, n, w)) == hand
