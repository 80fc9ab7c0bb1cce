"""FM-WM baseline: flow matching directly in token space.

The same condition stage as the RLA world model; the flow stage runs over all ``N`` noisy future
tokens (flow time through adaLN, cross-attention to the condition tokens) instead of the ``Q``
compact latent tokens. Tokens are standardised per channel with training-data statistics.
Same time convention and sampler as :mod:`rla.flow`.

The head predicts the clean future tokens as a residual on the standardised ``z_t``
(``prediction="data"``), trained with the same change-weighted token loss as the regression
baseline, and the velocity is derived from it (:mod:`rla.flow_stage`). The first version
predicted the velocity through a ``Linear(width → D)`` head: with width < D most of the starting
noise could never be removed, and its samples kept ~83 % of the noise energy (``"velocity"``
still loads such checkpoints).
"""
# No `from __future__ import annotations`: the Hub mixin reads the `config` annotation.
from dataclasses import dataclass

import torch
from torch import nn

from rla.flow_stage import FlowStageMixin
from rla.hub import HubModule
from rla.layers import change_weights, sincos_positions
from rla.rollout import WorldModelMixin


@dataclass
class TokenFlowConfig:
    num_tokens: int = 64  # N
    token_dim: int = 768  # D
    action_dim: int = 4  # A
    width: int = 256
    condition_depth: int = 4  # blocks over z_t tokens (once per prediction)
    flow_depth: int = 4  # blocks over the N noisy tokens (every Euler step)
    heads: int = 4
    mlp_ratio: float = 4.0
    sigma_min: float = 1e-5
    sample_steps: int = 10
    time_mean: float = 0.0
    time_std: float = 1.0
    prediction: str = "data"  # "data" (clean tokens, full rank) or "velocity" (the rank-limited first version)
    change_boost: float = 10.0  # extra loss weight on changing tokens ("data" only), as the regression baseline
    change_threshold: float = 0.05

    def __post_init__(self):
        if self.prediction not in ("data", "velocity"):
            raise ValueError(f"TokenFlowConfig.prediction must be 'data' or 'velocity', got {self.prediction!r}")
        for name in ("num_tokens", "token_dim", "action_dim", "width", "condition_depth", "flow_depth", "sample_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"TokenFlowConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ValueError(f"TokenFlowConfig.width ({self.width}) must be divisible by heads ({self.heads})")


class TokenFlowWorldModel(HubModule, FlowStageMixin, WorldModelMixin):
    config_class = TokenFlowConfig
    stochastic = True

    def __init__(self, config: TokenFlowConfig):
        super().__init__()
        self.config = c = config
        self.build_flow_stage(c.num_tokens, c.token_dim, c.action_dim, c.width, c.heads, c.mlp_ratio,
                              c.condition_depth, c.flow_depth, out_dim=c.token_dim, sigma_min=c.sigma_min, prediction=c.prediction)
        self.register_buffer("pos", sincos_positions(c.num_tokens, c.width), persistent=False)
        self.tokens_in = nn.Linear(c.token_dim, c.width)
        self.register_buffer("z_mean", torch.zeros(c.token_dim))
        self.register_buffer("z_std", torch.ones(c.token_dim))

    @torch.no_grad()
    def set_token_stats(self, z: torch.Tensor) -> None:
        """Per-channel standardisation statistics from training tokens ``z (M, N, D)``."""
        flat = z.reshape(-1, z.shape[-1])
        self.z_mean.copy_(flat.mean(0))
        self.z_std.copy_(flat.std(0).clamp_min(1e-4))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.tokens_in(x) + self.pos

    def data_base(self, z_t: torch.Tensor) -> torch.Tensor:
        return (z_t - self.z_mean) / self.z_std

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        c, z_t, z_k = self.config, batch["z_t"], batch["z_k"]
        weights = change_weights(z_t, z_k, c.change_boost, c.change_threshold) if c.prediction == "data" and c.change_boost else None
        return self.flow_loss((z_k - self.z_mean) / self.z_std, z_t, batch["actions"], weights)

    @torch.no_grad()
    def predict(self, z_t: torch.Tensor, a: torch.Tensor, *, steps: int | None = None, generator: torch.Generator | None = None,
                temperature: float = 1.0) -> torch.Tensor:
        noise = temperature * torch.randn(z_t.shape, generator=generator).to(z_t.device)
        return self.integrate(z_t, a, noise, steps) * self.z_std + self.z_mean
