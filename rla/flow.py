"""Flow matching: a probability path and an Euler ODE sampler.

Time convention (as in the official RLA-WM code): **t = 0 is data, t = 1 is noise.**

    x_t = (1 − t)·x_0 + (σ_min + (1 − σ_min)·t)·ε,      ε ~ N(0, I)
    v   = dx_t/dt = (1 − σ_min)·ε − x_0

A network learns ``v(x_t, t, cond)``; sampling starts from ``x_1 = ε`` and integrates
``dx = v·dt`` from t = 1 down to t = 0 with Euler steps. (facebookresearch/flow_matching and
torchcfm use the reverse convention, noise at t = 0.) Training times are drawn from a
logit-normal distribution, ``t = sigmoid(n)``, ``n ~ N(μ, s)``, which concentrates on mid-path.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class PathSample:
    x_t: torch.Tensor  # point on the path, same shape as x_0
    t: torch.Tensor  # (B,) flow time
    velocity: torch.Tensor  # target dx_t/dt, same shape as x_0
    noise: torch.Tensor  # ε


class AffinePath:
    """The linear (rectified-flow) path with a small terminal noise floor ``sigma_min``."""

    def __init__(self, sigma_min: float = 1e-5):
        self.sigma_min = sigma_min

    def sample(self, x_0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None) -> PathSample:
        """Points ``x_t`` and target velocities for data ``x_0 (B, …)`` at times ``t (B,)``."""
        assert t.shape == (x_0.shape[0],), f"t must be (B,)={x_0.shape[0]}, got {tuple(t.shape)}"
        eps = torch.randn_like(x_0) if noise is None else noise
        assert eps.shape == x_0.shape, f"noise shape {tuple(eps.shape)} != data shape {tuple(x_0.shape)}"
        tb = t.view(-1, *([1] * (x_0.ndim - 1)))
        x_t = (1 - tb) * x_0 + (self.sigma_min + (1 - self.sigma_min) * tb) * eps
        return PathSample(x_t=x_t, t=t, velocity=(1 - self.sigma_min) * eps - x_0, noise=eps)

    def velocity_from_data(self, x_t: torch.Tensor, t: torch.Tensor, x_0: torch.Tensor) -> torch.Tensor:
        """The path's velocity at ``x_t`` if its data point were ``x_0`` (for data-predicting models).

        ``ε = (x_t − (1 − t)·x_0) / (σ_min + (1 − σ_min)·t)`` and ``v = (1 − σ_min)·ε − x_0``. It
        contains ``x_t`` itself, so an Euler step can remove every dimension of the noise: the last
        step to t = 0 lands exactly on ``x_0``. Undefined at t = 0, which the sampler never queries.
        """
        tb = t.view(-1, *([1] * (x_t.ndim - 1)))
        eps = (x_t - (1 - tb) * x_0) / (self.sigma_min + (1 - self.sigma_min) * tb)
        return (1 - self.sigma_min) * eps - x_0


def logit_normal_times(n: int, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """``n`` flow times in (0, 1) with ``logit(t) ~ N(mean, std)``."""
    return torch.sigmoid(mean + std * torch.randn(n, generator=generator, device=device))


VelocityFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def euler_sample(velocity_fn: VelocityFn, x_init: torch.Tensor, steps: int, t_start: float = 1.0, t_end: float = 0.0) -> torch.Tensor:
    """Integrate ``dx/dt = velocity_fn(x, t)`` from ``t_start`` to ``t_end`` in ``steps`` Euler steps.

    Args:
        velocity_fn: ``(x (B, …), t (B,)) -> v (B, …)``.
        x_init: the state at ``t_start`` (noise, for sampling).
        steps: number of uniform steps (≥ 1).
    Returns:
        The state at ``t_end``, same shape as ``x_init``.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    times = torch.linspace(t_start, t_end, steps + 1, device=x_init.device)
    x = x_init
    for i in range(steps):
        t = times[i].expand(x.shape[0])
        x = x + (times[i + 1] - times[i]) * velocity_fn(x, t)
    return x
