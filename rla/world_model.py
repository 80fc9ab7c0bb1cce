"""The RLA world model: flow matching over the residual latent action, then one decoder pass.

``LatentFlow`` (the trainable dynamics) maps the condition ``(z_t, a)`` to a distribution over
latent actions ``u (B, Q, C)``. Its condition stage runs once per prediction; its flow stage is a
small transformer over the ``Q`` noisy latent tokens (flow time through adaLN, cross-attention
to the condition tokens) integrated with Euler steps (see :mod:`rla.flow`). ``RLAWorldModel``
joins it with the frozen autoencoder's decoder: ``z_{t+k} = decode(z_t, u)``.

Latent actions are standardised with statistics from the training data
(:meth:`LatentFlow.set_latent_stats`) before the flow sees them: per element, or, with
``whiten=True``, ZCA-whitened over all ``Q·C`` numbers (latent elements are strongly correlated:
a few directions carry most of the variance, and per-element scaling leaves them far above the
unit noise scale). :meth:`LatentFlow.standardize` / :meth:`LatentFlow.unstandardize` map between
the two spaces; use them rather than the buffers.
"""
# No `from __future__ import annotations`: the Hub mixin reads the `config` annotation.
from dataclasses import dataclass

import torch
from torch import nn

from rla.autoencoder import RLAAutoencoder
from rla.flow_stage import FlowStageMixin
from rla.hub import HubModule
from rla.rollout import WorldModelMixin


@dataclass
class LatentFlowConfig:
    num_tokens: int = 64  # N, patch tokens per frame (as the autoencoder)
    token_dim: int = 768  # D
    action_dim: int = 4  # A, env action dimensions
    num_queries: int = 8  # Q, latent-action tokens (as the autoencoder)
    latent_dim: int = 32  # C (as the autoencoder)
    width: int = 256  # transformer width
    condition_depth: int = 4  # blocks over z_t tokens (run once per prediction)
    flow_depth: int = 4  # blocks over the Q noisy latent tokens (run every Euler step)
    heads: int = 4
    mlp_ratio: float = 4.0
    sigma_min: float = 1e-5  # terminal noise floor of the flow path
    sample_steps: int = 10  # default Euler steps at inference
    time_mean: float = 0.0  # logit-normal training-time distribution: mean
    time_std: float = 1.0  # ... and standard deviation
    whiten: bool = False  # ZCA-whiten latent actions (full covariance) instead of per-element scaling

    def __post_init__(self):
        for name in ("num_tokens", "token_dim", "action_dim", "num_queries", "latent_dim", "width", "condition_depth", "flow_depth", "sample_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"LatentFlowConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ValueError(f"LatentFlowConfig.width ({self.width}) must be divisible by heads ({self.heads})")


class LatentFlow(HubModule, FlowStageMixin):
    """Flow-matching dynamics over residual latent actions."""

    config_class = LatentFlowConfig

    def __init__(self, config: LatentFlowConfig):
        super().__init__()
        self.config = c = config
        self.build_flow_stage(c.num_tokens, c.token_dim, c.action_dim, c.width, c.heads, c.mlp_ratio,
                              c.condition_depth, c.flow_depth, out_dim=c.latent_dim, sigma_min=c.sigma_min)
        self.latent_in = nn.Linear(c.latent_dim, c.width)
        self.latent_pos = nn.Parameter(torch.randn(1, c.num_queries, c.width) * 0.02)
        self.register_buffer("u_mean", torch.zeros(c.num_queries, c.latent_dim))
        self.register_buffer("u_std", torch.ones(c.num_queries, c.latent_dim))
        if c.whiten:  # only then, so checkpoints without whitening keep their exact set of tensors
            qc = c.num_queries * c.latent_dim
            self.register_buffer("u_whiten", torch.eye(qc))  # (QC, QC): centred u → whitened
            self.register_buffer("u_color", torch.eye(qc))  # (QC, QC): whitened → centred u

    @torch.no_grad()
    def set_latent_stats(self, u: torch.Tensor) -> None:
        """Standardisation statistics from training latent actions ``u (M, Q, C)``."""
        self.u_mean.copy_(u.mean(0))
        self.u_std.copy_(u.std(0).clamp_min(1e-4))
        if self.config.whiten:
            flat = (u - self.u_mean).flatten(1).double()  # (M, QC)
            cov = flat.T @ flat / max(1, flat.shape[0] - 1)
            evals, evecs = torch.linalg.eigh(cov)
            evals = evals.clamp_min(1e-6 * float(evals.max()))
            self.u_whiten.copy_((evecs * evals.rsqrt()) @ evecs.T)
            self.u_color.copy_((evecs * evals.sqrt()) @ evecs.T)

    def standardize(self, u: torch.Tensor) -> torch.Tensor:
        """Latent actions ``u (B, Q, C)`` → the flow's space (zero mean, unit scale)."""
        if self.config.whiten:
            return ((u - self.u_mean).flatten(1) @ self.u_whiten).view_as(u)
        return (u - self.u_mean) / self.u_std

    def unstandardize(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`standardize`."""
        if self.config.whiten:
            return (x.flatten(1) @ self.u_color).view_as(x) + self.u_mean
        return x * self.u_std + self.u_mean

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.latent_in(x) + self.latent_pos

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Flow-matching loss for ``batch["z_t"] (B,N,D)``, ``batch["actions"] (B,K,A)``, ``batch["u"] (B,Q,C)``."""
        return self.flow_loss(self.standardize(batch["u"]), batch["z_t"], batch["actions"])

    @torch.no_grad()
    def sample_latent(self, z_t: torch.Tensor, a: torch.Tensor, *, steps: int | None = None, generator: torch.Generator | None = None,
                      noise: torch.Tensor | None = None, temperature: float = 1.0) -> torch.Tensor:
        """Sample latent actions ``u (B, Q, C)`` by Euler integration from noise (t = 1) to data (t = 0);
        ``temperature`` scales the drawn noise (0: the deterministic flow from the origin)."""
        c = self.config
        if noise is None:
            noise = temperature * torch.randn(z_t.shape[0], c.num_queries, c.latent_dim, generator=generator).to(z_t.device)
        return self.unstandardize(self.integrate(z_t, a, noise, steps))


class RLAWorldModel(nn.Module, WorldModelMixin):
    """``predict(z_t, a)``: sample a latent action with :class:`LatentFlow`, decode it with the autoencoder."""

    stochastic = True

    def __init__(self, autoencoder: RLAAutoencoder, dynamics: LatentFlow):
        super().__init__()
        ae, dyn = autoencoder.config, dynamics.config
        mismatch = [f for f in ("num_tokens", "token_dim", "num_queries", "latent_dim") if getattr(ae, f) != getattr(dyn, f)]
        if mismatch:
            raise ValueError(f"autoencoder and dynamics disagree on {mismatch}")
        self.autoencoder, self.dynamics = autoencoder.eval(), dynamics.eval()

    @property
    def config(self) -> LatentFlowConfig:
        return self.dynamics.config

    @torch.no_grad()
    def predict(self, z_t: torch.Tensor, a: torch.Tensor, *, steps: int | None = None, generator: torch.Generator | None = None,
                temperature: float = 1.0, noise: torch.Tensor | None = None) -> torch.Tensor:
        """``z_t (B, N, D)``, ``a (B, K, A)`` → predicted ``z_{t+k} (B, N, D)``; ``noise (B, Q, C)``, when given,
        is the flow's starting noise (already scaled: ``temperature`` is not applied to it)."""
        u = self.dynamics.sample_latent(z_t, a, steps=steps, generator=generator, temperature=temperature, noise=noise)
        return self.autoencoder.decode(z_t, u)
