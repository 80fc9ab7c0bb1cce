"""The flow stage shared by the RLA world model (over latent-action tokens) and the token-space
flow baseline (over all patch tokens).

A small transformer reads standardised tokens ``x (B, M, F)`` on the flow path: flow time and
the action vector modulate every block (adaLN), and each block cross-attends to the condition
tokens of ``(z_t, a)``, whose keys/values are computed once per prediction. Training and
sampling follow :mod:`rla.flow` (t = 0 data, t = 1 noise).

Two parameterisations of the head:

- ``"velocity"``: the head outputs the velocity (the RLA latent flow: ``F = C`` is smaller than
  the width, so a linear head reaches every dimension);
- ``"data"``: the head outputs the clean data as a residual on a full-rank base (for the token
  flow, the standardised ``z_t``), and the velocity is derived from it and ``x_t``
  (:meth:`rla.flow.AffinePath.velocity_from_data`). A velocity head of rank ``width < F`` could
  not touch most of the starting noise (``F = 768`` pixel-patch dims against width 128); the
  derived velocity can, and its loss is the token loss on the predicted clean data.
"""
from __future__ import annotations

import torch
from torch import nn

from rla.conditioning import ConditionEncoder
from rla.flow import AffinePath, euler_sample, logit_normal_times
from rla.layers import Block, TimeEmbedding, token_loss


class FlowStageMixin:
    """Adds the flow stage to a model; call :meth:`build_flow_stage` in ``__init__``.

    The host defines :meth:`embed` (``x (B, M, F) → (B, M, W)``) and standardisation buffers;
    attribute names are part of the saved checkpoints.
    """

    def build_flow_stage(self, num_tokens: int, token_dim: int, action_dim: int, width: int, heads: int, mlp_ratio: float,
                         condition_depth: int, flow_depth: int, out_dim: int, sigma_min: float, prediction: str = "velocity") -> None:
        if prediction not in ("velocity", "data"):
            raise ValueError(f"prediction must be 'velocity' or 'data', got {prediction!r}")
        self.prediction = prediction
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

    def data_base(self, z_t: torch.Tensor) -> torch.Tensor | None:
        """The full-rank base a ``"data"`` head predicts a residual on (in standardised units)."""
        return None

    def prepare(self, z_t: torch.Tensor, a: torch.Tensor) -> tuple:
        """Run the condition stage once: cross-attention keys/values per flow block, action vector, data base."""
        tokens, action = self.condition(z_t, a)
        return [block.cross.project_kv(tokens) for block in self.blocks], action, self.data_base(z_t)

    def head(self, x: torch.Tensor, t: torch.Tensor, cond: tuple) -> torch.Tensor:
        """The network's raw output for ``x (B, M, F)`` at times ``t (B,)``: a velocity, or clean data."""
        kvs, action, base = cond
        h = self.embed(x)
        c = self.time(t) + action  # (B, W)
        for block, kv in zip(self.blocks, kvs):
            h = block(h, c, kv)
        out = self.out(self.norm(h))
        return out if self.prediction == "velocity" else base + out

    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: tuple) -> torch.Tensor:
        """Velocity of standardised ``x (B, M, F)`` at times ``t (B,)``; ``cond`` from :meth:`prepare`."""
        out = self.head(x, t, cond)
        return out if self.prediction == "velocity" else self.path.velocity_from_data(x, t, out)

    def flow_loss(self, x_0: torch.Tensor, z_t: torch.Tensor, a: torch.Tensor, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """L1 + MSE at logit-normal times for data ``x_0``: on the velocity, or on the predicted data
        (optionally weighted per token, ``weights (B, M, 1)``)."""
        t = logit_normal_times(x_0.shape[0], self.config.time_mean, self.config.time_std, device=x_0.device)
        sample = self.path.sample(x_0, t)
        out = self.head(sample.x_t, t, self.prepare(z_t, a))
        return token_loss(out, sample.velocity if self.prediction == "velocity" else x_0, weights)

    @torch.no_grad()
    def integrate(self, z_t: torch.Tensor, a: torch.Tensor, noise: torch.Tensor, steps: int | None) -> torch.Tensor:
        """Euler-integrate from ``noise`` (t = 1) to standardised data (t = 0)."""
        cond = self.prepare(z_t, a)
        return euler_sample(lambda x, t: self.velocity(x, t, cond), noise, steps or self.config.sample_steps)
