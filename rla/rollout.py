"""The interface every world model shares, and autoregressive rollout on top of it.

A world model implements ``predict(z_t, a, steps=None, generator=None) -> z_{t+k}`` for tokens
``z_t (B, N, D)`` and an action chunk ``a (B, K, A)``. This mixin adds several samples per
prediction and chunk-by-chunk rollout.
"""
from __future__ import annotations

import torch


class WorldModelMixin:
    #: whether predictions are stochastic (different noise → different samples)
    stochastic: bool = False

    def predict(self, z_t: torch.Tensor, a: torch.Tensor, *, steps: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def predict_samples(self, z_t: torch.Tensor, a: torch.Tensor, num_samples: int, *, steps: int | None = None,
                        generator: torch.Generator | None = None) -> torch.Tensor:
        """``num_samples`` predictions with different noise: ``(S, B, N, D)``."""
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        b = z_t.shape[0]
        out = self.predict(z_t.repeat(num_samples, 1, 1), a.repeat(num_samples, 1, 1), steps=steps, generator=generator)
        return out.view(num_samples, b, *out.shape[1:])

    @torch.no_grad()
    def rollout(self, z_0: torch.Tensor, action_chunks: torch.Tensor, *, steps: int | None = None, generator: torch.Generator | None = None,
                temperature: float = 1.0) -> torch.Tensor:
        """Chain predictions: ``z_0 (B, N, D)``, chunks ``(B, C, K, A)`` → tokens at each chunk end ``(B, C, N, D)``.

        ``temperature`` scales the starting noise of stochastic models (0 = integrate from zero noise).
        """
        assert action_chunks.ndim == 4, f"action_chunks must be (B, C, K, A), got {tuple(action_chunks.shape)}"
        kwargs = {"temperature": temperature} if self.stochastic else {}
        z, out = z_0, []
        for c in range(action_chunks.shape[1]):
            z = self.predict(z, action_chunks[:, c], steps=steps, generator=generator, **kwargs)
            out.append(z)
        return torch.stack(out, dim=1)
