"""Train the feature → RGB decoder for a non-invertible encoder (DINOv2/DINOv3).

    python -m training.train_rgb_decoder --data data/pipeline --encoder vit_small_patch14_dinov2.lvd142m --image-size 224 --out runs/rgb --minutes 30

Frames of the recorded episodes are encoded once (feature cache) and the decoder learns to
reconstruct them: L1 + 0.2·(1 − SSIM), + 0.2·LPIPS when AlexNet weights are on disk.
Writes ``OUT/rgb_decoder/`` (model.safetensors + config.json) and ``OUT/loss.csv``.
"""
from __future__ import annotations

import argparse

import torch
from torch import nn

from rla.encoders.base import resize_uint8
from rla.metrics import load_lpips
from rla.rgb_decoder import RGBDecoder, RGBDecoderConfig
from training.common import add_common_args, load_splits, train_config, write_json
from training.loop import fit


class FrozenLPIPS:
    """The LPIPS term of the decoder's loss, held outside the decoder's module tree.

    Set as ``decoder.lpips``, a plain attribute (this is not an ``nn.Module``): ``decoder.train()``
    never switches LPIPS' dropout on, the optimizer never sees its parameters, and neither the
    resumable checkpoint nor ``model.safetensors`` holds it. Gradients still reach the images.
    """

    def __init__(self, net: nn.Module):
        self.net = net.eval().requires_grad_(False)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, S, S)`` in [-1, 1] → distances ``(B, 1, 1, 1)``."""
        return self.net.to(pred.device).eval()(pred, target)  # follows the decoder to its device


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    args = parser.parse_args(argv)
    encoder, train, val = load_splits(args)
    rows, cols = encoder.grid
    cfg = RGBDecoderConfig(grid=rows, token_dim=encoder.dim, image_size=encoder.image_size)
    torch.manual_seed(args.seed)
    decoder = RGBDecoder(cfg)
    lpips_net = load_lpips()
    decoder.lpips = FrozenLPIPS(lpips_net) if lpips_net is not None else None
    tokens = torch.cat(train.tokens)  # (F, N, D)
    frames = resize_uint8(torch.cat([torch.as_tensor(ep.frames) for ep in train.episodes]), cfg.image_size)  # (F, S, S, 3)
    tc = train_config(args, max_minutes=30.0, batch_size=32, lr=1e-3)

    def sample(gen: torch.Generator) -> dict:
        idx = torch.randint(len(tokens), (tc.batch_size,), generator=gen)
        return {"z": tokens[idx], "images": frames[idx]}

    summary = fit(decoder, sample, tc, args.out, name="rgb_decoder")
    decoder = getattr(decoder, "module", decoder).eval()
    decoder.save_pretrained(args.out / "rgb_decoder")
    from rla.metrics import psnr, ssim

    z_val = torch.cat(val.tokens)[:256]
    real = resize_uint8(torch.cat([torch.as_tensor(ep.frames) for ep in val.episodes])[:256], cfg.image_size)
    pred = decoder.decode(z_val)
    report = {"train": summary, "heldout_ssim": ssim(pred, real).mean().item(), "heldout_psnr": psnr(pred, real).mean().item(),
              "encoder": encoder.fingerprint}
    write_json(args.out / "rgb_decoder_eval.json", report)
    print(f"held-out SSIM {report['heldout_ssim']:.3f}, PSNR {report['heldout_psnr']:.2f} dB")
    return report


if __name__ == "__main__":
    from training.common import cli

    cli(main)
