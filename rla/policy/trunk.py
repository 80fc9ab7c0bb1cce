"""Image trunks: what the policy sees of a frame, as tokens ``(B, M, W)``.

``TokenTrunk`` projects the pack's own patch tokens (cheap on a CPU: the encoder runs once per
frame and is cached); ``ResNetTrunk`` is the authors' trunk, a timm ResNet-18 trained from
scratch with GroupNorm whose last feature map (4 × 4 at 128 px) becomes 16 tokens.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rla.encoders.base import as_uint8_frames, resize_frames
from rla.layers import sincos_positions


class TokenTrunk(nn.Module):
    """Patch tokens ``z (B, N, D)`` → ``(B, N, W)``: a linear projection plus 2-D sine-cosine positions."""

    def __init__(self, num_tokens: int, token_dim: int, width: int):
        super().__init__()
        self.num_tokens, self.token_dim = num_tokens, token_dim
        self.proj = nn.Linear(token_dim, width)
        self.register_buffer("pos", sincos_positions(num_tokens, width), persistent=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        assert z.ndim == 3 and z.shape[1:] == (self.num_tokens, self.token_dim), (
            f"tokens must be (B, {self.num_tokens}, {self.token_dim}), got {tuple(z.shape)}")
        return self.proj(z.float()) + self.pos


class ResNetTrunk(nn.Module):
    """uint8 frames ``(B, H, W, 3)`` → ``((S/32)², W)`` tokens from a ResNet-18 built from scratch.

    GroupNorm replaces BatchNorm (as in the authors' policy: batch statistics would mix labelled and
    action-less samples); no pretrained weights are loaded, so nothing is downloaded.
    """

    def __init__(self, image_size: int, width: int):
        super().__init__()
        import timm
        from timm.layers import GroupNorm

        self.image_size = image_size
        self.backbone = timm.create_model("resnet18", pretrained=False, num_classes=0, global_pool="", norm_layer=GroupNorm)
        self.proj = nn.Linear(self.backbone.num_features, width)
        self.num_tokens = (image_size // 32) ** 2
        self.register_buffer("pos", sincos_positions(self.num_tokens, width), persistent=False)

    def forward(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = resize_frames(as_uint8_frames(images).to(self.proj.weight.device), self.image_size) * 2 - 1  # (B, 3, S, S)
        f = self.backbone(x)  # (B, 512, S/32, S/32)
        return self.proj(f.flatten(2).transpose(1, 2)) + self.pos  # (B, M, W)
