"""The interface every frozen feature encoder implements.

An encoder turns uint8 RGB frames ``(B, H, W, 3)`` into patch tokens ``z`` of shape
``(B, N, D)``. Frames of another size are resized (bilinear, antialiased) to the encoder's
square ``image_size`` first, so callers may pass frames of any size.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def as_uint8_frames(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Validate frames and return them as a uint8 tensor ``(B, H, W, 3)``.

    Accepts one frame ``(H, W, 3)`` or a batch ``(B, H, W, 3)``; grayscale ``(…, H, W)`` /
    ``(…, H, W, 1)`` is repeated to RGB and RGBA is dropped to RGB. Raises ``ValueError`` with
    the offending shape or dtype otherwise.
    """
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    if x.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 RGB in [0, 255], got dtype {x.dtype}")
    if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] not in (1, 3, 4)):
        x = x.unsqueeze(-1)  # grayscale (H, W) or (B, H, W)
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise ValueError(f"frames must have shape (B, H, W, 3) or (H, W, 3), got {tuple(x.shape)}")
    if x.shape[-1] == 1:
        x = x.expand(*x.shape[:-1], 3)
    elif x.shape[-1] == 4:
        x = x[..., :3]
    if min(x.shape[1], x.shape[2]) < 8:
        raise ValueError(f"frames are too small to encode ({x.shape[1]}x{x.shape[2]} px); need at least 8x8")
    return x.contiguous()


def _bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Float images ``(B, C, H, W)`` at ``size`` (bilinear, antialiased when shrinking); as they are when already that size."""
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


def resize_frames(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` → float ``(B, 3, size, size)`` in [0, 1]."""
    return _bilinear(x.permute(0, 3, 1, 2).float().div_(255.0), (size, size)).clamp_(0.0, 1.0)


def resize_uint8(frames: np.ndarray | torch.Tensor, size: int | tuple[int, int]) -> np.ndarray | torch.Tensor:
    """uint8 frames ``(..., H, W, 3)`` at ``size`` (an int: square; else ``(height, width)``), still uint8.

    Bilinear and antialiased, like :func:`resize_frames`; arrays come back as arrays, tensors as
    tensors, and frames already at ``size`` come back as they are.
    """
    hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    x = torch.as_tensor(frames)
    if tuple(x.shape[-3:-1]) == hw:
        return frames
    assert x.dtype == torch.uint8 and x.ndim >= 3 and x.shape[-1] == 3, f"expected uint8 (..., H, W, 3), got {x.dtype} {tuple(x.shape)}"
    y = _bilinear(x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).float(), hw)
    y = y.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).reshape(*x.shape[:-3], *hw, 3).contiguous()
    return y.numpy() if isinstance(frames, np.ndarray) else y


class FeatureEncoder(nn.Module, ABC):
    """A frozen image → patch-token encoder.

    Attributes:
        image_size: square input size in pixels.
        patch_size: pixels per patch side.
        dim: token dimension ``D``.
        invertible: whether :meth:`decode` maps tokens back to pixels exactly.
    """

    image_size: int
    patch_size: int
    dim: int
    invertible: bool = False

    @property
    def grid(self) -> tuple[int, int]:
        """Token grid ``(rows, cols)``; ``N = rows * cols``."""
        g = self.image_size // self.patch_size
        return (g, g)

    @property
    def num_tokens(self) -> int:
        rows, cols = self.grid
        return rows * cols

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """A stable string (name + revision + image size) that keys feature caches."""

    @abstractmethod
    def encode(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 frames ``(B, H, W, 3)`` → tokens ``(B, N, D)`` float32."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Tokens ``(B, N, D)`` → uint8 frames ``(B, H, W, 3)``; only for invertible encoders."""
        raise NotImplementedError(
            f"{type(self).__name__} is not invertible: decode its tokens with a trained "
            "feature→RGB decoder (rla.rgb_decoder.RGBDecoder)"
        )
