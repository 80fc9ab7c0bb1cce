"""Prediction-quality evaluation (the paper's Table 1 protocol) for every world model of a pack.

From a real start frame, each method rolls out ``num_chunks`` autoregressive chunks of recorded
actions; each chunk end is scored against the real frame there. The headline number is the
final frame. Scores:

- ``token_l1``: L1 between predicted and real tokens; ``token_l1_moving`` only over tokens whose
  real value changed since the start frame (most of a tabletop frame never changes, and
  whole-frame scores reward a model that copies the start frame);
- ``ssim``/``psnr`` of the decoded RGB, whole frame and ``_fg`` on the foreground (robot and task
  objects, from the recorded segmentation, or the changed patches when none was recorded);
- ``lpips`` when AlexNet weights are available locally, else ``None``.

``copy`` is the trivial floor that predicts the start frame for every chunk. ``rla_true_latent``
is the RLA-WM ceiling: the autoencoder decodes the latent action of the real next frame (it is
no world model, it sees the future), so the gap between it and ``rla@S`` is the dynamics' share
of the error, and its own gap to the real frames the autoencoder's.
"""
from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from rla.cost import measure_cost
from rla.metrics import load_lpips, lpips_distance, psnr, ssim, token_l1

METRICS = ("token_l1", "token_l1_moving", "ssim", "ssim_fg", "psnr", "psnr_fg", "lpips")


class CopyWorldModel:
    """The floor: predicts that nothing changes."""

    stochastic = False

    def predict(self, z_t, a, *, steps=None, generator=None):
        return z_t.clone()


class TrueLatentRollout:
    """The ceiling of RLA-WM: each chunk decodes the autoencoder's latent of the real next frame."""

    stochastic = False

    def __init__(self, autoencoder, z_real: torch.Tensor):
        self.autoencoder, self.z_real = autoencoder, z_real  # z_real: (B, C, N, D)

    def rollout(self, z_0, action_chunks, *, steps=None, generator=None):
        z, out = z_0, []
        for c in range(action_chunks.shape[1]):
            z = self.autoencoder.decode(z, self.autoencoder.encode(z, self.z_real[:, c]))
            out.append(z)
        return torch.stack(out, dim=1)


def _stack(items: list[dict]) -> dict:
    out = {k: torch.as_tensor(np.stack([np.asarray(it[k]) for it in items])) for k in ("frame_0", "actions", "frames")}
    fg = [it.get("foreground") for it in items]
    out["foreground"] = torch.as_tensor(np.stack(fg)) if all(f is not None for f in fg) else None
    return out


def _resize_frames(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` → uint8 at ``size`` (bilinear, antialiased)."""
    if tuple(x.shape[1:3]) == tuple(size):
        return x
    y = F.interpolate(x.permute(0, 3, 1, 2).float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def _resize_mask(m: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(m[:, None].float(), size=size, mode="nearest")[:, 0] > 0.5


def methods_of(pack, rla_steps: Iterable[int]) -> dict:
    """The methods to compare: ``rla@S`` per step count, the baselines, and the copy floor."""
    methods = {f"rla@{s}": (pack.world_model, s) for s in rla_steps}
    for name, model in pack.baselines.items():
        methods[name] = (model, None)
    methods["copy"] = (CopyWorldModel(), None)
    return methods


@torch.no_grad()
def evaluate_pack(pack, items: list[dict], *, rla_steps=(1, 3, 10, 30), seed: int = 0, cost: bool = True,
                  progress: Callable[[float, str], None] | None = None) -> dict:
    """Score every method of ``pack`` on evaluation items.

    Args:
        items: dicts with ``frame_0 (H, W, 3)`` uint8, ``actions (C, K, A)``, ``frames (C, H, W, 3)``
            (the real frames at each chunk end) and ``foreground (C, H, W)`` bool or ``None``.
        rla_steps: Euler step counts to evaluate the RLA world model at.
        progress: optional callback ``(fraction, message)``.
    Returns:
        ``{"protocol": …, "methods": {name: {"final": {metric: mean}, "per_chunk": {metric: [mean]}, "cost": …}}}``.
    """
    if not items:
        raise ValueError("no evaluation items: pass at least one episode long enough for the chunks")
    batch = _stack(items)
    b, c = batch["actions"].shape[:2]
    actions = batch["actions"].float()
    z_0 = pack.encoder.encode(batch["frame_0"])  # (B, N, D)
    z_real = pack.encoder.encode(batch["frames"].flatten(0, 1)).view(b, c, *z_0.shape[1:])  # (B, C, N, D)
    threshold = pack.autoencoder.config.change_threshold
    moving = (z_real - z_0[:, None]).abs().mean(-1) > threshold  # (B, C, N)
    lpips_model = load_lpips()
    methods = methods_of(pack, rla_steps)
    methods["rla_true_latent"] = (TrueLatentRollout(pack.autoencoder, z_real), None)
    results = {}
    for i, (name, (model, steps)) in enumerate(methods.items()):
        if progress:
            progress(i / len(methods), f"rolling out {name}")
        z_pred = _rollout(model, z_0, actions, steps, seed)  # (B, C, N, D)
        pred_img = pack.to_images(z_pred.flatten(0, 1))  # (B*C, h, w, 3)
        size = tuple(pred_img.shape[1:3])
        real_img = _resize_frames(batch["frames"].flatten(0, 1), size)
        fg = _foreground(batch["foreground"], moving, pack.encoder.grid, size, b, c)
        per_chunk = {
            "token_l1": token_l1(z_pred.flatten(0, 1), z_real.flatten(0, 1)),
            "token_l1_moving": token_l1(z_pred.flatten(0, 1), z_real.flatten(0, 1), moving.flatten(0, 1)),
            "ssim": ssim(pred_img, real_img), "ssim_fg": ssim(pred_img, real_img, fg),
            "psnr": psnr(pred_img, real_img), "psnr_fg": psnr(pred_img, real_img, fg),
            "lpips": lpips_distance(lpips_model, pred_img, real_img) if lpips_model is not None else None,
        }
        entry = {"final": {}, "per_chunk": {}, "per_episode_final": {}}
        for metric, values in per_chunk.items():
            if values is None:
                entry["final"][metric], entry["per_chunk"][metric] = None, None
                continue
            v = values.view(b, c).float()
            entry["per_chunk"][metric] = v.mean(0).tolist()
            entry["final"][metric] = v[:, -1].mean().item()
            entry["per_episode_final"][metric] = v[:, -1].tolist()
        entry["steps"] = steps
        has_cost = cost and name not in ("copy", "rla_true_latent")
        entry["cost"] = measure_cost(model, z_0[:1], actions[:1, 0], steps=steps, repeats=10).to_dict() if has_cost else None
        results[name] = entry
    if progress:
        progress(1.0, "done")
    return {
        "protocol": {"num_chunks": c, "chunk": int(actions.shape[2]), "episodes": len(items),
                     "encoder": pack.encoder.fingerprint, "lpips": lpips_model is not None, "seed": seed,
                     "foreground": "segmentation" if batch["foreground"] is not None else "changed patches"},
        "methods": results,
    }


def _rollout(model, z_0, actions, steps, seed):
    gen = torch.Generator().manual_seed(seed)
    if isinstance(model, CopyWorldModel):
        return z_0[:, None].expand(-1, actions.shape[1], -1, -1).clone()
    return model.rollout(z_0, actions, steps=steps, generator=gen)


def _foreground(fg, moving, grid, size, b, c):
    """Foreground masks ``(B*C, h, w)``: segmentation if recorded, else the changed patches."""
    if fg is not None:
        return _resize_mask(fg.flatten(0, 1).bool(), size)
    patches = moving.flatten(0, 1).view(b * c, *grid)
    return _resize_mask(patches, size)
