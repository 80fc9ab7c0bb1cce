"""Paths through the latent-action space, and matching decoded frames to real ones.

The RLA paper reports that the latent-action space is *temporally ordered*: decoding points on
the line from Gaussian noise (α = 0) to the latent action ``u`` of a pair ``(z_t, z_{t+k})``
(α = 1) gives frames that look like the real frames between ``t`` and ``t + k``. These functions
build such paths and measure that claim: :func:`match_frames` finds, for every decoded point, the
closest real frame, and :func:`rank_correlation` says how monotonically the matched time step
grows with α (1 = perfectly ordered).

All functions are pure: tensors in, tensors out; no model is called here.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.stats import spearmanr

PATHS = ("linear", "spherical")


def alphas(num: int, start: float = 0.0, end: float = 1.0) -> torch.Tensor:
    """``num`` evenly spaced interpolation weights from ``start`` to ``end`` inclusive: ``(S,)``."""
    if num < 1:
        raise ValueError(f"need at least one interpolation point, got {num}")
    if num == 1:
        return torch.tensor([end], dtype=torch.float32)
    return torch.linspace(start, end, num)


def _check(x_0: torch.Tensor, x_1: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    assert x_0.shape == x_1.shape, f"endpoints differ in shape: {tuple(x_0.shape)} vs {tuple(x_1.shape)}"
    alpha = torch.as_tensor(alpha, dtype=x_0.dtype, device=x_0.device).reshape(-1)
    if not torch.isfinite(alpha).all():
        raise ValueError("interpolation weights must be finite")
    return alpha


def lerp(x_0: torch.Tensor, x_1: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """Linear interpolation ``(1 − α)·x_0 + α·x_1``.

    Args:
        x_0, x_1: endpoints of any (equal) shape ``(*S)``; α = 0 gives ``x_0``.
        alpha: a float or weights ``(P,)``.
    Returns:
        ``(P, *S)`` — one point per weight.
    """
    a = _check(x_0, x_1, alpha).view(-1, *([1] * x_0.ndim))
    return (1 - a) * x_0 + a * x_1


def slerp(x_0: torch.Tensor, x_1: torch.Tensor, alpha: torch.Tensor | float, eps: float = 1e-6) -> torch.Tensor:
    """Spherical interpolation on the great circle through the (flattened) endpoints.

    ``sin((1 − α)θ)/sin θ · x_0 + sin(αθ)/sin θ · x_1`` with ``θ`` the angle between them; the
    usual choice between Gaussian samples, whose norm a straight line would shrink mid-way.
    Falls back to :func:`lerp` when the endpoints are (anti)parallel or zero.

    Returns:
        ``(P, *S)`` as :func:`lerp`.
    """
    a = _check(x_0, x_1, alpha)
    v0, v1 = x_0.reshape(-1), x_1.reshape(-1)
    n0, n1 = v0.norm(), v1.norm()
    if n0 < eps or n1 < eps:
        return lerp(x_0, x_1, a)
    cos = (v0 @ v1 / (n0 * n1)).clamp(-1.0, 1.0)
    theta = torch.arccos(cos)
    if theta.sin().abs() < eps:
        return lerp(x_0, x_1, a)
    w0 = torch.sin((1 - a) * theta) / theta.sin()  # (P,)
    w1 = torch.sin(a * theta) / theta.sin()
    shape = (-1, *([1] * x_0.ndim))
    return w0.view(shape) * x_0 + w1.view(shape) * x_1


def interpolate(x_0: torch.Tensor, x_1: torch.Tensor, alpha: torch.Tensor | float, path: str = "linear") -> torch.Tensor:
    """:func:`lerp` or :func:`slerp` by name (``"linear"`` / ``"spherical"``): ``(P, *S)``."""
    if path == "linear":
        return lerp(x_0, x_1, alpha)
    if path == "spherical":
        return slerp(x_0, x_1, alpha)
    raise ValueError(f"unknown interpolation path {path!r}; choose one of {PATHS}")


def latent_noise(u: torch.Tensor, *, mean: torch.Tensor | None = None, std: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian noise shaped like a latent action ``u (Q, C)``: ``mean + std·ε``.

    Passing the world model's latent statistics (``LatentFlow.u_mean``, ``u_std``) puts the noise
    on the scale of real latent actions; without them it is standard normal.
    """
    eps = torch.randn(u.shape, generator=generator, dtype=u.dtype).to(u.device)
    if std is not None:
        eps = eps * std
    if mean is not None:
        eps = eps + mean
    return eps


def noise_path(u: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor | float, path: str = "linear") -> torch.Tensor:
    """Points from ``noise`` (α = 0) to the latent action ``u`` (α = 1): ``(P, Q, C)``."""
    return interpolate(noise, u, alpha, path)


def token_distances(decoded: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean absolute token difference between every decoded and every real frame.

    Args:
        decoded: tokens ``(P, N, D)``; real: tokens ``(T, N, D)``.
    Returns:
        ``(P, T)`` distances.
    """
    assert decoded.ndim == 3 and real.ndim == 3 and decoded.shape[1:] == real.shape[1:], (
        f"decoded {tuple(decoded.shape)} and real {tuple(real.shape)} must both be (·, N, D)"
    )
    n = decoded.shape[1] * decoded.shape[2]
    return torch.cdist(decoded.reshape(len(decoded), n).double(), real.reshape(len(real), n).double(), p=1).float() / n


def match_frames(decoded: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The closest real frame for every decoded one.

    Args:
        decoded: tokens ``(P, N, D)`` along an interpolation path.
        real: tokens ``(T, N, D)`` of consecutive real frames (e.g. frames ``t … t + k``).
    Returns:
        ``(index (P,), distance (P,))``: the matched real frame (an offset into ``real``) and its
        token distance.
    """
    d = token_distances(decoded, real)
    dist, index = d.min(dim=1)
    return index, dist


def rank_correlation(x, y) -> float:
    """Spearman's ρ between two 1-D sequences (``scipy.stats.spearmanr``; ties get their mean rank);
    ``nan`` if either is constant or shorter than 2."""
    x = np.asarray(torch.as_tensor(x, dtype=torch.float64).reshape(-1))
    y = np.asarray(torch.as_tensor(y, dtype=torch.float64).reshape(-1))
    assert x.shape == y.shape, f"sequences differ in length: {x.size} vs {y.size}"
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)
