"""The flow stage shared by the RLA world model (over latent-action tokens) and the token-space
flow baseline (over all patch tokens).

A small transformer predicts the flow velocity of standardised tokens ``x (B, M, F)``: flow
time and the action vector modulate every block (adaLN), and each block cross-attends to the
condition tokens of ``(z_t, a)``, whose keys/values are computed once per prediction. Training
and sampling follow :mod:`rla.flow` (t = 0 data, t = 1 noise).
"""
from __future__ import annotations

import torch
from torch import nn

from rla.conditioning import ConditionEncoder
from rla.flow import AffinePath, euler_sample, logit_normal_times
from rla.layers import Block, TimeEmbedding


class FlowStageMixin:
    """Adds the flow stage to a model; call :meth:`build_flow_stage` in ``__init__``.

    The host defines :meth:`embed` (``x (B, M, F) → (B, M, W)``) and standardisation buffers;
    attribute names are part of the saved checkpoints.
    """

    def build_flow_stage(self, num_tokens: int, token_dim: int, action_dim: int, width: int, heads: int, mlp_ratio: float,
                         condition_depth: int, flow_depth: int, out_dim: int, sigma_min: float) -> None:
        self.path = AffinePath(sigma_min)
        self.condition = ConditionEncoder(num_tokens, token_dim, action_dim, width, condition_depth, heads, mlp_ratio)
        self.time = TimeEmbedding(width)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio, cross=True, cond_dim=width) for _ in range(flow_depth))
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, out_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def prepare(self, z_t: torch.Tensor, a: torch.Tensor) -> tuple:
        """Run the condition stage once: cross-attention keys/values per flow block + action vector."""
        tokens, action = self.condition(z_t, a)
        return [block.cross.project_kv(tokens) for block in self.blocks], action

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: tuple) -> torch.Tensor:
        """Velocity of standardised ``x (B, M, F)`` at times ``t (B,)``; ``cond`` from :meth:`prepare`."""
        kvs, action = cond
        h = self.embed(x)
        c = self.time(t) + action  # (B, W)
        for block, kv in zip(self.blocks, kvs):
            h = block(h, c, kv)
        return self.out(self.norm(h))

    def flow_loss(self, x_0: torch.Tensor, z_t: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """MSE + L1 between predicted and target velocity at logit-normal times, for data ``x_0``."""
        t = logit_normal_times(x_0.shape[0], self.config.time_mean, self.config.time_std, device=x_0.device)
        sample = self.path.sample(x_0, t)
        v = self.velocity(sample.x_t, t, self.prepare(z_t, a))
        mse = (v - sample.velocity).square().mean()
        l1 = (v - sample.velocity).abs().mean()
        return mse + l1, {"mse": mse.item(), "l1": l1.item()}

    @torch.no_grad()
    def integrate(self, z_t: torch.Tensor, a: torch.Tensor, noise: torch.Tensor, steps: int | None) -> torch.Tensor:
        """Euler-integrate from ``noise`` (t = 1) to standardised data (t = 0)."""
        cond = self.prepare(z_t, a)
        return euler_sample(lambda x, t: self.velocity(x, t, cond), noise, steps or self.config.sample_steps)
