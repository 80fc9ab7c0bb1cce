"""Prediction-quality metrics: token L1, SSIM, PSNR, and LPIPS when its weights are present.

Images are uint8 ``(B, H, W, 3)`` tensors; an optional boolean mask ``(B, H, W)`` restricts
SSIM/PSNR to a region (the foreground), as the paper masks the background before scoring.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F


def moving_tokens(z_t: torch.Tensor, z_k: torch.Tensor, threshold: float) -> torch.Tensor:
    """Which tokens change: mean ``|z_k − z_t|`` over the token dimension above ``threshold``.

    ``z_t, z_k (..., N, D)`` → bool ``(..., N)``. Most of a tabletop frame is static, so errors and
    losses restricted to these tokens are the ones that see the motion.
    """
    return (z_k - z_t).abs().mean(-1) > threshold


def token_l1(pred: torch.Tensor, target: torch.Tensor, token_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute token error per sample ``(B,)``; ``token_mask (B, N)`` restricts it to some tokens."""
    err = (pred - target).abs().mean(-1)  # (B, N)
    if token_mask is None:
        return err.mean(-1)
    m = token_mask.float()
    return (err * m).sum(-1) / m.sum(-1).clamp_min(1)


def _to_float(img: torch.Tensor) -> torch.Tensor:
    assert img.dtype == torch.uint8 and img.ndim == 4 and img.shape[-1] == 3, f"expected uint8 (B, H, W, 3), got {img.dtype} {tuple(img.shape)}"
    return img.permute(0, 3, 1, 2).float() / 255.0


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size).contiguous()


def ssim_map_float(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Differentiable SSIM map ``(B, 3, H, W)`` of float images ``(B, 3, H, W)`` in [0, 1]
    (Gaussian window 11, σ 1.5)."""
    w = _gaussian_window().to(x.device)
    pad = w.shape[-1] // 2
    conv = lambda t: F.conv2d(F.pad(t, [pad] * 4, mode="reflect"), w, groups=3)  # noqa: E731
    mu_x, mu_y = conv(x), conv(y)
    var_x, var_y, cov = conv(x * x) - mu_x**2, conv(y * y) - mu_y**2, conv(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def ssim_map(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM ``(B, H, W)`` of uint8 images, averaged over channels."""
    return ssim_map_float(_to_float(pred), _to_float(target)).mean(1)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return values.flatten(1).mean(-1)
    m = mask.float()
    return (values * m).flatten(1).sum(-1) / m.flatten(1).sum(-1).clamp_min(1)


def ssim(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean SSIM per image ``(B,)``, over ``mask`` when given."""
    return _masked_mean(ssim_map(pred, target), mask)


def psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """PSNR in dB per image ``(B,)``, over ``mask`` when given."""
    mse = _masked_mean((_to_float(pred) - _to_float(target)).square().mean(1), mask)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


ALEXNET_FILE = "alexnet-owt-7be5be79.pth"


def load_lpips(weights: str | Path | None = None):
    """LPIPS(AlexNet) if its weights are on disk, else ``None`` (never downloads).

    LPIPS needs torchvision's AlexNet weights (``alexnet-owt-7be5be79.pth``: the file ``weights``,
    or the torch hub cache) and the lpips package's own linear layers. Offline machines without
    them get ``None`` and report LPIPS as unavailable.
    """
    import lpips

    if weights is not None:
        weights = Path(weights)
        if not weights.is_file():
            raise FileNotFoundError(f"LPIPS AlexNet weights not found: {weights}")
        model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        # lpips slices torchvision's alexnet.features: slice<k>.<index>.<param> ← features.<index>.<param>
        mapped = {k: state[f"features.{k.split('.', 1)[1]}"] for k in model.net.state_dict()}
        model.net.load_state_dict(mapped)
        return model.eval()
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    if not (hub / ALEXNET_FILE).is_file():
        return None
    return lpips.LPIPS(net="alex", verbose=False).eval()


def lpips_distance(model, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """LPIPS per image ``(B,)`` with a model from :func:`load_lpips`."""
    with torch.no_grad():
        return model(_to_float(pred) * 2 - 1, _to_float(target) * 2 - 1).flatten()


GMSD_C = 170.0  # stability constant T of Xue et al. (2014) for luminance in 0..255


def _pad_even(t: torch.Tensor) -> torch.Tensor:
    """Zero-pad ``(B, C, H, W)`` by one row/column where H/W is odd, so 2×2 blocks tile it."""
    return F.pad(t, [0, t.shape[-1] % 2, 0, t.shape[-2] % 2])


def _gradient_magnitude(img: torch.Tensor) -> torch.Tensor:
    """Prewitt gradient magnitude ``(B, ⌈H/2⌉, ⌈W/2⌉)`` of the 2×-downsampled luminance (0..255) of uint8 ``(B, H, W, 3)``."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=img.device)[:, None, None]
    lum = (_to_float(img) * 255 * weights).sum(1, keepdim=True)  # (B, 1, H, W)
    small = F.avg_pool2d(_pad_even(lum), 2)
    prewitt = torch.tensor([[1.0, 0.0, -1.0]] * 3, device=img.device) / 3
    kernels = torch.stack([prewitt, prewitt.T])[:, None]  # (2, 1, 3, 3): d/dx, d/dy
    return F.conv2d(small, kernels, padding=1).square().sum(1).sqrt()


def gmsd(pred: torch.Tensor, real: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Gradient Magnitude Similarity Deviation per image ``(B,)``; 0 for identical images, lower is better.

    Follows the authors' reference code (GMSD.m, Xue, Zhang, Mou & Bovik 2014): luminance
    Y = 0.299 R + 0.587 G + 0.114 B in 0..255; a 2×2 mean then keeping every second row and column
    (odd sizes zero-padded, as ``conv2(..., 'same')`` does); Prewitt filters ``[1 0 −1]/3`` with
    zero padding; GMS = (2 m_p m_r + c) / (m_p² + m_r² + c) with c = 170; the score is the standard
    deviation of the GMS map with the N − 1 divisor (MATLAB's ``std2``). Blur and speckle both
    change local gradient magnitudes unevenly, which this deviation measures.

    Args:
        pred, real: uint8 images ``(B, H, W, 3)``; the map is symmetric in them.
        mask: optional boolean foreground ``(B, H, W)``; a downsampled pixel counts as foreground when
            any pixel of its 2×2 block does, and the deviation is taken over those pixels only.
            Images whose mask covers fewer than 2 downsampled pixels score NaN (no deviation to take).
    """
    assert pred.shape == real.shape, f"pred {tuple(pred.shape)} vs real {tuple(real.shape)}"
    m_p, m_r = _gradient_magnitude(pred), _gradient_magnitude(real)  # (B, ⌈H/2⌉, ⌈W/2⌉)
    gms = (2 * m_p * m_r + GMSD_C) / (m_p**2 + m_r**2 + GMSD_C)
    keep = torch.ones_like(gms) if mask is None else F.max_pool2d(_pad_even(mask[:, None].float()), 2)[:, 0]
    n = keep.flatten(1).sum(-1)
    mean = (gms * keep).flatten(1).sum(-1) / n.clamp_min(1)
    var = ((gms - mean[:, None, None]).square() * keep).flatten(1).sum(-1) / (n - 1).clamp_min(1)
    return torch.where(n >= 2, var.sqrt(), torch.full_like(var, float("nan")))


def energy_score(samples: torch.Tensor, real: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Energy score of stochastic predictions per example ``(B,)``; lower is better, a proper score.

    ES = E‖X − y‖ − ½ E‖X − X′‖, estimated without bias from the S samples: the first term averages
    the S errors, the second the S(S−1) ordered pairs of distinct samples (0 when S = 1, so one sample
    or S identical samples score their plain error). The norm is the Euclidean norm over the (masked)
    tokens × dims divided by √(tokens × D), i.e. a root-mean-square token error, comparable in scale
    to token L1.

    Args:
        samples: predicted tokens ``(S, B, N, D)``.
        real: true tokens ``(B, N, D)``.
        mask: optional boolean token mask ``(B, N)``; examples with no masked token score NaN.
    """
    assert samples.ndim == 4 and samples.shape[1:] == real.shape, f"samples {tuple(samples.shape)} vs real {tuple(real.shape)}"
    s, b, n, d = samples.shape
    m = torch.ones(b, n, device=real.device) if mask is None else mask.float()
    count = m.sum(-1) * d  # (B,) elements inside the mask

    def rms(diff: torch.Tensor) -> torch.Tensor:  # (..., B, N, D) -> (..., B)
        return ((diff.square().sum(-1) * m).sum(-1) / count.clamp_min(1)).sqrt()

    error = rms(samples - real).mean(0)  # (B,)
    spread = torch.zeros_like(error)
    for i in range(s - 1):  # one sample against all later ones keeps memory at O(S·B·N·D)
        spread += rms(samples[i + 1:] - samples[i]).sum(0)
    spread = 2 * spread / (s * (s - 1)) if s > 1 else spread
    return torch.where(count > 0, error - 0.5 * spread, torch.full_like(error, float("nan")))
