"""An encoder that needs no weights: the image cut into non-overlapping pixel patches.

A 128 px frame with 16 px patches gives 64 tokens of 16·16·3 = 768 values in [-1, 1].
Encoding at the native size is exactly invertible (``decode(encode(x)) == x``), so world
models trained on these tokens need no learned image decoder. This is what the offline
default model pack is built on.
"""
from __future__ import annotations

import numpy as np
import torch

from rla.encoders.base import FeatureEncoder, as_uint8_frames, resize_frames


class PixelPatchEncoder(FeatureEncoder):
    invertible = True

    def __init__(self, image_size: int = 128, patch_size: int = 16):
        super().__init__()
        if image_size <= 0 or patch_size <= 0 or image_size % patch_size:
            raise ValueError(f"image_size ({image_size}) must be a positive multiple of patch_size ({patch_size})")
        self.image_size = image_size
        self.patch_size = patch_size
        self.dim = patch_size * patch_size * 3

    @property
    def fingerprint(self) -> str:
        return f"pixel_patch:p{self.patch_size}:{self.image_size}px"

    @torch.no_grad()
    def encode(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = as_uint8_frames(images)
        if x.shape[1:3] == (self.image_size, self.image_size):
            x = x.float().div_(255.0).permute(0, 3, 1, 2)  # exact path, no resampling
        else:
            x = resize_frames(x, self.image_size)
        x = x.mul_(2.0).sub_(1.0)  # (B, 3, S, S) in [-1, 1]
        b, p, g = x.shape[0], self.patch_size, self.image_size // self.patch_size
        x = x.reshape(b, 3, g, p, g, p).permute(0, 2, 4, 3, 5, 1)  # (B, gr, gc, p, p, 3)
        return x.reshape(b, g * g, p * p * 3).contiguous()

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 3 or z.shape[1:] != (self.num_tokens, self.dim):
            raise ValueError(f"expected tokens (B, {self.num_tokens}, {self.dim}), got {tuple(z.shape)}")
        b, p, g = z.shape[0], self.patch_size, self.image_size // self.patch_size
        x = z.float().reshape(b, g, g, p, p, 3).permute(0, 1, 3, 2, 4, 5).reshape(b, g * p, g * p, 3)
        return ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
