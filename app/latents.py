"""Latent actions of frame pairs: encode, decode onto any frame, draw, place on the latent map."""
from __future__ import annotations

import threading

import numpy as np
import torch

from app.images import diverging
from rla.latent_map import map_features, map_latents


@torch.no_grad()
def encode_pair(pack, features, before: np.ndarray, after: np.ndarray) -> dict:
    """Tokens of both frames and the residual latent action between them.

    Returns ``{"z_a": (1, N, D), "z_b": (1, N, D), "u": (1, Q, C), "encode_ms": float}``.
    """
    z, ms = features.encode(pack.encoder, np.stack([before, after]))
    z_a, z_b = z[:1], z[1:]
    return {"z_a": z_a, "z_b": z_b, "u": pack.autoencoder.encode(z_a, z_b), "encode_ms": ms}


@torch.no_grad()
def apply_latent(pack, z_t: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """Decode ``u (P, Q, C)`` on ``z_t (1, N, D)``: tokens ``(P, N, D)`` and frames ``(P, H, W, 3)``."""
    z = pack.autoencoder.decode(z_t.expand(u.shape[0], -1, -1), u)
    return z, pack.to_images(z).numpy()


def latent_image(pack, u: torch.Tensor, width: int = 480) -> np.ndarray:
    """A latent action ``(1, Q, C)`` as a Q-row × C-column picture (blue < 0 < red, in training std units)."""
    z = pack.dynamics.standardize(u)[0].numpy()  # (Q, C), in units of the training latents' spread
    img = diverging(z, 3.0)
    cell = max(4, min(48, width // z.shape[1]))
    return img.repeat(cell, 0).repeat(cell, 1)


def project(pack, u: torch.Tensor) -> np.ndarray | None:
    """Place ``u (B, Q, C)`` on the pack's latent map: ``(B, 2)``, or ``None`` without a map.

    The map holds *standardised* latent actions (:func:`rla.latent_map.map_features`).
    """
    if pack.latent_map is None:
        return None
    return pack.latent_map.project(map_features(pack.dynamics, u))


def map_latent(pack, i: int) -> torch.Tensor:
    """Point ``i`` of the latent map back as a raw latent action ``(1, Q, C)``."""
    return map_latents(pack.dynamics, pack.latent_map.latents[i : i + 1])


def patch_error(pack, z_pred: torch.Tensor, z_true: torch.Tensor) -> np.ndarray:
    """Mean |error| per patch ``(rows, cols)`` between two token sets ``(1, N, D)``."""
    return (z_pred - z_true).abs().mean(-1)[0].reshape(pack.encoder.grid).numpy()


_EXAMPLE_POINTS: dict = {}  # pack id → example-episode pairs on its map (derived, read-only; like app.packs.PACKS)
_EXAMPLE_LOCK = threading.Lock()


@torch.no_grad()
def example_points(pack, pack_key: str, episodes, stride: int = 5) -> dict | None:
    """The example episodes' pairs ``(t, t + chunk)`` every ``stride`` steps, placed on the pack's map.

    Returns ``{"coords": (E, 2), "meta": {task, episode_id, t, k, success}}`` (computed once per pack and
    process), or ``None`` without a map or episodes. Episodes too short for one chunk are left out.
    """
    if pack.latent_map is None or not len(episodes):
        return None
    with _EXAMPLE_LOCK:
        if pack_key in _EXAMPLE_POINTS:
            return _EXAMPLE_POINTS[pack_key]
        k = int(pack.info.chunk)
        us, meta = [], {"task": [], "episode_id": [], "t": [], "k": [], "success": []}
        for ep in episodes:
            ts = list(range(0, ep.num_steps - k + 1, stride))
            if not ts:
                continue
            idx = sorted(set(ts) | {t + k for t in ts})
            z = dict(zip(idx, pack.encoder.encode(ep.frames[idx])))  # only the frames the pairs use
            us.append(pack.autoencoder.encode(torch.stack([z[t] for t in ts]), torch.stack([z[t + k] for t in ts])))
            meta["task"] += [ep.task] * len(ts)
            meta["episode_id"] += [str(ep.episode_id)] * len(ts)
            meta["t"] += ts
            meta["k"] += [k] * len(ts)
            meta["success"] += [bool(ep.success[t + k - 1]) for t in ts]
        points = None
        if us:
            points = {"coords": project(pack, torch.cat(us)), "meta": {key: np.asarray(v) for key, v in meta.items()}}
        _EXAMPLE_POINTS[pack_key] = points
        return points
