"""The RLA autoencoder: residual ``z_{t+k} − z_t`` → compact latent action ``u`` → ``z_{t+k}``.

Encoder: the residual tokens, projected to ``width``, with ``Q`` learnable query tokens
prepended, go through a transformer; the outputs at the query positions, projected to ``C``
dimensions, are the residual latent action ``u (B, Q, C)``.

Decoder: the ``z_t`` tokens with ``u`` (projected back to ``width``) prepended go through a
second transformer; a zero-initialised output layer predicts ``z_{t+k} − z_t``, so an untrained
decoder returns ``z_t`` exactly and the decoder predicts ``z_{t+k}`` in one forward pass.
"""
# No `from __future__ import annotations`: the Hub mixin reads the `config` annotation.
from dataclasses import dataclass

import torch
from torch import nn

from rla.hub import HubModule
from rla.layers import Block, change_weights, sincos_positions, token_loss


@dataclass
class AutoencoderConfig:
    num_tokens: int = 64  # N, patch tokens per frame
    token_dim: int = 768  # D, encoder token dimension
    width: int = 256  # transformer width
    encoder_depth: int = 4  # blocks in the residual encoder
    decoder_depth: int = 4  # blocks in the decoder
    heads: int = 4  # attention heads
    mlp_ratio: float = 4.0  # MLP hidden size / width
    num_queries: int = 8  # Q, latent-action tokens
    latent_dim: int = 32  # C, dimensions per latent-action token
    change_boost: float = 10.0  # extra loss weight on tokens that change (0 = plain loss)
    change_threshold: float = 0.05  # mean |residual| above which a token counts as changing

    def __post_init__(self):
        for name in ("num_tokens", "token_dim", "width", "encoder_depth", "decoder_depth", "heads", "num_queries", "latent_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"AutoencoderConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.width % self.heads:
            raise ValueError(f"AutoencoderConfig.width ({self.width}) must be divisible by heads ({self.heads})")
        if self.change_boost < 0:
            raise ValueError(f"AutoencoderConfig.change_boost must be >= 0, got {self.change_boost}")


class RLAAutoencoder(HubModule):
    config_class = AutoencoderConfig

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        self.config = c = config
        self.register_buffer("pos", sincos_positions(c.num_tokens, c.width), persistent=False)
        # encoder: residual → latent action
        self.residual_in = nn.Linear(c.token_dim, c.width)
        self.queries = nn.Parameter(torch.randn(1, c.num_queries, c.width) * 0.02)
        self.encoder = nn.ModuleList(Block(c.width, c.heads, c.mlp_ratio) for _ in range(c.encoder_depth))
        self.encoder_norm = nn.LayerNorm(c.width)
        self.to_latent = nn.Linear(c.width, c.latent_dim)
        # decoder: (z_t, latent action) → z_{t+k}
        self.tokens_in = nn.Linear(c.token_dim, c.width)
        self.from_latent = nn.Linear(c.latent_dim, c.width)
        self.latent_pos = nn.Parameter(torch.randn(1, c.num_queries, c.width) * 0.02)
        self.decoder = nn.ModuleList(Block(c.width, c.heads, c.mlp_ratio) for _ in range(c.decoder_depth))
        self.decoder_norm = nn.LayerNorm(c.width)
        self.out = nn.Linear(c.width, c.token_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def _check_tokens(self, z: torch.Tensor, name: str) -> None:
        c = self.config
        assert z.ndim == 3 and z.shape[1:] == (c.num_tokens, c.token_dim), (
            f"{name} must be (B, {c.num_tokens}, {c.token_dim}), got {tuple(z.shape)}"
        )

    def encode(self, z_t: torch.Tensor, z_k: torch.Tensor) -> torch.Tensor:
        """Latent action between two frames: ``(B, N, D), (B, N, D) → u (B, Q, C)``."""
        self._check_tokens(z_t, "z_t")
        self._check_tokens(z_k, "z_k")
        x = self.residual_in(z_k - z_t) + self.pos  # (B, N, W)
        x = torch.cat([self.queries.expand(x.shape[0], -1, -1), x], dim=1)  # (B, Q + N, W)
        for block in self.encoder:
            x = block(x)
        return self.to_latent(self.encoder_norm(x[:, : self.config.num_queries]))  # (B, Q, C)

    def decode(self, z_t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Future tokens from the current ones and a latent action: ``(B, N, D), (B, Q, C) → (B, N, D)``."""
        c = self.config
        self._check_tokens(z_t, "z_t")
        assert u.shape[1:] == (c.num_queries, c.latent_dim), f"u must be (B, {c.num_queries}, {c.latent_dim}), got {tuple(u.shape)}"
        x = torch.cat([self.from_latent(u) + self.latent_pos, self.tokens_in(z_t) + self.pos], dim=1)  # (B, Q + N, W)
        for block in self.decoder:
            x = block(x)
        return z_t + self.out(self.decoder_norm(x[:, c.num_queries :]))

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Training loss on ``batch["z_t"], batch["z_k"]`` (both ``(B, N, D)``)."""
        z_t, z_k = batch["z_t"], batch["z_k"]
        pred = self.decode(z_t, self.encode(z_t, z_k))
        weights = change_weights(z_t, z_k, self.config.change_boost, self.config.change_threshold) if self.config.change_boost else None
        return token_loss(pred, z_k, weights)
