"""Prediction-quality metrics: token L1, SSIM, PSNR, and LPIPS when its weights are present.

Images are uint8 ``(B, H, W, 3)`` tensors; an optional boolean mask ``(B, H, W)`` restricts
SSIM/PSNR to a region (the foreground), as the paper masks the background before scoring.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F


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


def load_lpips():
    """LPIPS(AlexNet) if its weights are already on disk, else ``None`` (never downloads).

    LPIPS needs torchvision's AlexNet weights (``alexnet-owt-7be5be79.pth`` in the torch hub
    cache) and the lpips package's own linear layers. Offline machines without them get ``None``
    and report LPIPS as unavailable.
    """
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    if not (hub / ALEXNET_FILE).is_file():
        return None
    import lpips

    return lpips.LPIPS(net="alex", verbose=False).eval()


def lpips_distance(model, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """LPIPS per image ``(B,)`` with a model from :func:`load_lpips`."""
    with torch.no_grad():
        return model(_to_float(pred) * 2 - 1, _to_float(target) * 2 - 1).flatten()
