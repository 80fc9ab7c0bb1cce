"""DINO-WM-style baseline: regress ``z_{t+k}`` directly from ``z_t`` and the action chunk.

The condition stage (tokens modulated by the action vector) is followed by more blocks of the
same kind and a zero-initialised head that predicts ``z_{t+k} − z_t``. Trained with the same
change-weighted L1 + MSE loss as the RLA autoencoder. Deterministic: one forward pass.
"""
# No `from __future__ import annotations`: the Hub mixin reads the `config` annotation.
from dataclasses import dataclass

import torch
from torch import nn

from rla.conditioning import ConditionEncoder
from rla.hub import HubModule
from rla.layers import change_weights, token_loss
from rla.rollout import WorldModelMixin


@dataclass
class RegressionConfig:
    num_tokens: int = 64  # N
    token_dim: int = 768  # D
    action_dim: int = 4  # A
    width: int = 256
    depth: int = 8  # action-modulated blocks over the z_t tokens
    heads: int = 4
    mlp_ratio: float = 4.0
    change_boost: float = 10.0  # extra loss weight on tokens that change
    change_threshold: float = 0.05

    def __post_init__(self):
        for name in ("num_tokens", "token_dim", "action_dim", "width", "depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"RegressionConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ValueError(f"RegressionConfig.width ({self.width}) must be divisible by heads ({self.heads})")


class RegressionWorldModel(HubModule, WorldModelMixin):
    config_class = RegressionConfig

    def __init__(self, config: RegressionConfig):
        super().__init__()
        self.config = c = config
        self.condition = ConditionEncoder(c.num_tokens, c.token_dim, c.action_dim, c.width, c.depth, c.heads, c.mlp_ratio)
        self.out = nn.Linear(c.width, c.token_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward_tokens(self, z_t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        tokens, _ = self.condition(z_t, a)
        return z_t + self.out(tokens)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        z_t, z_k = batch["z_t"], batch["z_k"]
        pred = self.forward_tokens(z_t, batch["actions"])
        c = self.config
        weights = change_weights(z_t, z_k, c.change_boost, c.change_threshold) if c.change_boost else None
        return token_loss(pred, z_k, weights)

    @torch.no_grad()
    def predict(self, z_t: torch.Tensor, a: torch.Tensor, *, steps: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``z_t (B, N, D)``, ``a (B, K, A)`` → ``z_{t+k} (B, N, D)``; ``steps``/``generator`` are ignored."""
        return self.forward_tokens(z_t, a)
