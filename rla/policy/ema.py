"""An exponential moving average of a policy's weights, kept inside the module that is trained.

``training.loop.fit`` takes a module and calls ``module(batch)`` once per optimiser step. Wrapping
the policy in :class:`EMATrainer` makes that call first fold the current weights into the average,
so the average rides along in the same state dict: it is saved in every resumable checkpoint and
restored with it, and needs no callback. The average lags one step; call :meth:`EMATrainer.update`
once after training to fold in the final weights.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMATrainer(nn.Module):
    """``forward(batch)`` = update the average (in training mode), then the policy's ``(loss, logs)``.

    Decay warms up as ``min(max_decay, (1 + n) / (10 + n))`` after ``n`` updates, so early weights
    are forgotten quickly.
    """

    def __init__(self, policy: nn.Module, max_decay: float = 0.999):
        super().__init__()
        if not 0 <= max_decay < 1:
            raise ValueError(f"max_decay must be in [0, 1), got {max_decay}")
        self.policy = policy
        self.ema = copy.deepcopy(policy).requires_grad_(False).eval()  # not trained: the optimiser skips it
        self.max_decay = max_decay
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def decay(self) -> float:
        n = int(self.updates)
        return min(self.max_decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self) -> None:
        """Fold the policy's current weights into the average; copy its buffers (normalisers)."""
        d = self.decay()
        for avg, p in zip(self.ema.parameters(), self.policy.parameters()):
            avg.lerp_(p.detach(), 1.0 - d)  # avg = d * avg + (1 - d) * p
        for avg, b in zip(self.ema.buffers(), self.policy.buffers()):
            avg.copy_(b)
        self.updates += 1

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        if self.training:
            self.update()
        return self.policy(batch)

    def train(self, mode: bool = True):
        super().train(mode)
        self.ema.eval()  # the average is never run in training mode (no dropout)
        return self
