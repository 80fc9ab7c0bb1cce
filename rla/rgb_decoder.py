"""Feature → RGB decoder for encoders that are not invertible (DINO).

Patch tokens ``(B, N, D)`` are laid out on their grid and upsampled by a small convolutional
decoder (conv + upsample stages) to ``image_size``. Trained with L1 + 0.2·(1 − SSIM), and
+ 0.2·LPIPS when AlexNet weights are available, as in the paper's UNet decoder.
"""
# No `from __future__ import annotations`: the Hub mixin reads the `config` annotation.
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rla.hub import HubModule
from rla.metrics import ssim_map_float


@dataclass
class RGBDecoderConfig:
    grid: int = 16  # tokens per side (N = grid²)
    token_dim: int = 384  # D
    image_size: int = 224  # output size in pixels
    channels: int = 128  # channels of the first stage, halved per upsampling stage (min 32)
    ssim_weight: float = 0.2
    lpips_weight: float = 0.2

    def __post_init__(self):
        if self.grid < 1 or self.token_dim < 1 or self.image_size < self.grid:
            raise ValueError(f"invalid RGBDecoderConfig: {self}")


class RGBDecoder(HubModule):
    config_class = RGBDecoderConfig

    def __init__(self, config: RGBDecoderConfig):
        super().__init__()
        self.config = c = config
        self.stem = nn.Conv2d(c.token_dim, c.channels, 1)
        stages, ch = [], c.channels
        for _ in range(max(0, math.ceil(math.log2(c.image_size / c.grid)))):
            nxt = max(32, ch // 2)
            stages += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(ch, nxt, 3, padding=1), nn.GroupNorm(8, nxt), nn.SiLU(),
                       nn.Conv2d(nxt, nxt, 3, padding=1), nn.SiLU()]
            ch = nxt
        self.body = nn.Sequential(*stages)
        self.head = nn.Conv2d(ch, 3, 3, padding=1)
        self.lpips = None  # set by the training script when LPIPS weights are available

    def forward_images(self, z: torch.Tensor) -> torch.Tensor:
        """Tokens ``(B, N, D)`` → images ``(B, 3, S, S)`` in [0, 1]."""
        c = self.config
        assert z.ndim == 3 and z.shape[1:] == (c.grid * c.grid, c.token_dim), f"z must be (B, {c.grid ** 2}, {c.token_dim}), got {tuple(z.shape)}"
        x = z.transpose(1, 2).reshape(z.shape[0], c.token_dim, c.grid, c.grid)
        x = self.head(self.body(self.stem(x)))
        if x.shape[-1] != c.image_size:
            x = F.interpolate(x, size=(c.image_size, c.image_size), mode="bilinear", align_corners=False)
        return torch.sigmoid(x)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Tokens ``(B, N, D)`` → uint8 frames ``(B, S, S, 3)``."""
        return (self.forward_images(z) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Loss for ``batch["z"] (B, N, D)`` against ``batch["images"]`` uint8 ``(B, S, S, 3)``."""
        pred = self.forward_images(batch["z"])
        target = batch["images"].permute(0, 3, 1, 2).float() / 255
        l1 = (pred - target).abs().mean()
        s = ssim_map_float(pred, target).mean()
        loss = l1 + self.config.ssim_weight * (1 - s)
        logs = {"l1": l1.item(), "ssim": s.item()}
        if self.lpips is not None:
            lp = self.lpips(pred * 2 - 1, target * 2 - 1).mean()
            loss = loss + self.config.lpips_weight * lp
            logs["lpips"] = lp.item()
        return loss, logs

