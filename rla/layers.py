"""Transformer building blocks shared by every model: attention, adaLN-modulated blocks, embeddings."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rla.metrics import moving_tokens


class Attention(nn.Module):
    """Multi-head attention; self-attention when ``context`` is None, else cross-attention."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        assert width % heads == 0, f"width {width} must be divisible by heads {heads}"
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.proj = nn.Linear(width, width)

    def project_kv(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values ``(B, H, M, W/H)`` of a context; compute once when it is reused."""
        b, m, _ = context.shape
        k, v = self.kv(context).view(b, m, 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        return k, v

    def forward(self, x: torch.Tensor, context: torch.Tensor | tuple | None = None) -> torch.Tensor:
        """``context`` is a tensor ``(B, M, W)`` or keys/values from :meth:`project_kv`."""
        b, n, w = x.shape  # (B, N, W)
        q = self.q(x).view(b, n, self.heads, -1).transpose(1, 2)  # (B, H, N, W/H)
        k, v = context if isinstance(context, tuple) else self.project_kv(x if context is None else context)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, W/H)
        return self.proj(out.transpose(1, 2).reshape(b, n, w))


class Mlp(nn.Sequential):
    def __init__(self, width: int, ratio: float):
        hidden = int(width * ratio)
        super().__init__(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))


class Block(nn.Module):
    """Pre-norm transformer block with optional cross-attention and adaLN-Zero conditioning.

    With ``cond_dim`` set, a conditioning vector ``c (B, cond_dim)`` produces per-channel shift,
    scale and gate for each sub-layer (as in DiT); the gates start at zero, so a fresh block is
    the identity and deep stacks train stably.
    """

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0, cross: bool = False, cond_dim: int | None = None):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=cond_dim is None)
        self.attn = Attention(width, heads)
        self.cross = Attention(width, heads) if cross else None
        self.norm_cross = nn.LayerNorm(width) if cross else None
        self.norm2 = nn.LayerNorm(width, elementwise_affine=cond_dim is None)
        self.mlp = Mlp(width, mlp_ratio)
        self.modulation = None
        if cond_dim is not None:
            self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 6 * width))
            nn.init.zeros_(self.modulation[1].weight)
            nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None, context: torch.Tensor | None = None) -> torch.Tensor:
        if self.modulation is None:
            x = x + self.attn(self.norm1(x))
            if self.cross is not None:
                x = x + self.cross(self.norm_cross(x), context)
            return x + self.mlp(self.norm2(x))
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(c).unsqueeze(1).chunk(6, dim=-1)  # each (B, 1, W)
        x = x + gate1 * self.attn(self.norm1(x) * (1 + scale1) + shift1)
        if self.cross is not None:
            x = x + self.cross(self.norm_cross(x), context)
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class TimeEmbedding(nn.Module):
    """Scalar flow time ``t (B,)`` → ``(B, width)`` via sinusoidal features and an MLP."""

    def __init__(self, width: int, freq_dim: int = 128):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = 1000.0 * t.float()[:, None] * freqs[None]  # t in [0, 1]: scale like diffusion timesteps
        return self.mlp(torch.cat([args.cos(), args.sin()], dim=-1))


class ActionEncoder(nn.Module):
    """An action chunk ``a (B, K, A)`` → one action vector ``(B, width)``.

    Each step is embedded by an MLP, then a GRU runs over the chunk; its final hidden state is the
    action token. The chunk length is implicit in the GRU's number of steps.
    """

    def __init__(self, action_dim: int, width: int, embed_dim: int = 64):
        super().__init__()
        self.step = nn.Sequential(nn.Linear(action_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))
        self.gru = nn.GRU(embed_dim, width, batch_first=True)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(self.step(a))  # h: (1, B, width)
        return h[0]


def sincos_positions(num_tokens: int, width: int) -> torch.Tensor:
    """2-D sine-cosine position table ``(1, N, width)`` for a square token grid (1-D if not square)."""
    side = int(round(math.sqrt(num_tokens)))
    if side * side != num_tokens or width % 4:
        pos = torch.arange(num_tokens, dtype=torch.float32)
        return _sincos_1d(pos, width)[None]
    ys, xs = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32), indexing="ij")
    return torch.cat([_sincos_1d(ys.flatten(), width // 2), _sincos_1d(xs.flatten(), width // 2)], dim=-1)[None]


def _sincos_1d(pos: torch.Tensor, dim: int) -> torch.Tensor:
    omega = 1.0 / 10_000 ** (torch.arange(dim // 2, dtype=torch.float32) / (dim // 2))
    out = pos[:, None] * omega[None]
    return torch.cat([out.sin(), out.cos()], dim=-1)


def change_weights(z_t: torch.Tensor, z_k: torch.Tensor, boost: float, threshold: float) -> torch.Tensor:
    """Per-token loss weights ``(B, N, 1)``: ``1 + boost`` where the token changes, else 1.

    A token "changes" as :func:`rla.metrics.moving_tokens` says (mean absolute residual above
    ``threshold``). Most of a tabletop frame is static; without this weighting a model learns to
    copy the start frame.
    """
    moving = moving_tokens(z_t, z_k, threshold).float()[..., None]  # (B, N, 1)
    return 1.0 + boost * moving


def token_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """L1 + MSE over tokens ``(B, N, D)``, optionally weighted per token."""
    l1 = (pred - target).abs()
    mse = (pred - target).square()
    if weights is not None:
        norm = weights.sum() * pred.shape[-1]
        l1, mse = (l1 * weights).sum() / norm, (mse * weights).sum() / norm
    else:
        l1, mse = l1.mean(), mse.mean()
    return l1 + mse, {"l1": l1.item(), "mse": mse.item()}
