"""Exponential moving averages of weights: one warm-up rule and one update, two places to keep the average.

After ``n`` updates the decay is ``min(max_decay, (1 + n) / (10 + n))``, so early weights are forgotten
quickly, and the average moves as ``avg ← d · avg + (1 − d) · w`` (:func:`ema_decay`, :func:`ema_update`).

- :class:`EMA` keeps the average as a list of tensors beside the trained parameters.
  ``training.loop.fit`` uses it for ``--ema`` and saves it as its own file in each checkpoint.
- :class:`EMATrainer` keeps it as a module inside the module that is trained (policies):
  ``training.loop.fit`` calls ``module(batch)`` once per optimiser step, and wrapping the policy makes
  that call first fold the current weights into the average, so the average rides along in the
  same state dict (``policy.*``, ``ema.*``, ``updates``): it is saved in every resumable checkpoint
  and restored with it, and needs no callback. That average lags one step; call
  :meth:`EMATrainer.update` once after training to fold in the final weights.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn


def ema_decay(updates: int, max_decay: float) -> float:
    """The decay of the next update after ``updates`` of them: ``min(max_decay, (1 + n) / (10 + n))``."""
    return min(max_decay, (1 + updates) / (10 + updates))


@torch.no_grad()
def ema_update(average: list[torch.Tensor], current: list[torch.Tensor], decay: float) -> None:
    """``average ← decay · average + (1 − decay) · current``, in place, tensor by tensor."""
    assert len(average) == len(current), f"{len(average)} averages for {len(current)} tensors"
    if average:
        torch._foreach_lerp_(average, [p.detach() for p in current], 1.0 - decay)


class EMA:
    """An average of ``params`` kept as separate tensors (``shadow``), saved and loaded by position."""

    def __init__(self, params: list, decay: float):
        self.decay = decay  # the maximum decay, reached after the warm-up
        self.shadow = [p.detach().clone() for p in params]
        self.params = params

    def update(self, step: int) -> None:
        """Fold in the current ``params``; ``step`` is the number of updates before this one."""
        ema_update(self.shadow, self.params, ema_decay(step, self.decay))

    @torch.no_grad()
    def copy_to(self, params: list) -> None:
        for s, p in zip(self.shadow, params):
            p.copy_(s)

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        save_file({str(i): s.contiguous() for i, s in enumerate(self.shadow)}, str(path))

    def load(self, path: Path) -> None:
        from safetensors.torch import load_file

        path = Path(path)
        if not path.exists():
            raise SystemExit(f"{path} is missing: this checkpoint was saved without EMA weights; delete {path.parent} to train from scratch")
        state = load_file(str(path))
        if len(state) != len(self.shadow) or any(state[str(i)].shape != s.shape for i, s in enumerate(self.shadow)):
            raise SystemExit(f"{path} does not match the model's parameters: delete {path.parent} to train from scratch")
        with torch.no_grad():
            for i, s in enumerate(self.shadow):
                s.copy_(state[str(i)])


class EMATrainer(nn.Module):
    """``forward(batch)`` = update the average (in training mode), then the policy's ``(loss, logs)``.

    ``ema`` is a frozen copy of ``policy`` holding the average; ``updates`` counts the updates.
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
        return ema_decay(int(self.updates), self.max_decay)

    @torch.no_grad()
    def update(self) -> None:
        """Fold the policy's current weights into the average; copy its buffers (normalisers)."""
        ema_update(list(self.ema.parameters()), list(self.policy.parameters()), self.decay())
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
