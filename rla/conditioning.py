"""The condition stage shared by every world model: current tokens ``z_t`` + an action chunk.

The action chunk is summarised into one action vector (per-step MLP, then a GRU), which
modulates every block over the ``z_t`` tokens through adaptive layer norm. The output
condition tokens ``(B, N, W)`` are computed once per prediction.
"""
from __future__ import annotations

import torch
from torch import nn

from rla.layers import ActionEncoder, Block, sincos_positions


class ConditionEncoder(nn.Module):
    def __init__(self, num_tokens: int, token_dim: int, action_dim: int, width: int, depth: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.num_tokens, self.token_dim, self.action_dim = num_tokens, token_dim, action_dim
        self.register_buffer("pos", sincos_positions(num_tokens, width), persistent=False)
        self.tokens_in = nn.Linear(token_dim, width)
        self.actions = ActionEncoder(action_dim, width)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio, cond_dim=width) for _ in range(depth))
        self.norm = nn.LayerNorm(width)

    def forward(self, z_t: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z_t (B, N, D)``, ``a (B, K, A)`` → condition tokens ``(B, N, W)`` and action vector ``(B, W)``."""
        assert z_t.ndim == 3 and z_t.shape[1:] == (self.num_tokens, self.token_dim), (
            f"z_t must be (B, {self.num_tokens}, {self.token_dim}), got {tuple(z_t.shape)}"
        )
        assert a.ndim == 3 and a.shape[0] == z_t.shape[0] and a.shape[2] == self.action_dim, (
            f"actions must be (B={z_t.shape[0]}, K, {self.action_dim}), got {tuple(a.shape)}"
        )
        action = self.actions(a)  # (B, W)
        x = self.tokens_in(z_t) + self.pos
        for block in self.blocks:
            x = block(x, action)
        return self.norm(x), action
