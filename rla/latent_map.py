"""A 2-D map of latent actions: fitted offline with UMAP, queried online without it.

``fit_latent_map`` runs umap-learn (slow to import and fit: done once, when a pack is built).
The saved map holds the latents, their 2-D coordinates and metadata; new latent actions are
placed by inverse-distance-weighted interpolation of their nearest neighbours' coordinates,
so the app never imports umap and never unpickles a fitted model.

The map holds latent actions *standardised* with the world model's statistics (whitened when it
whitens), flattened: :func:`map_features` puts latent actions there, :func:`map_latents` brings
points back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class LatentMap:
    latents: np.ndarray  # (M, Q*C) float32, flattened latent actions
    coords: np.ndarray  # (M, 2) float32, UMAP coordinates
    meta: dict[str, np.ndarray] = field(default_factory=dict)  # per point: task, episode_id, t, k, success, …

    def __post_init__(self):
        if self.latents.ndim != 2 or self.coords.shape != (self.latents.shape[0], 2):
            raise ValueError(f"latent map needs latents (M, F) and coords (M, 2), got {self.latents.shape} and {self.coords.shape}")
        for key, values in self.meta.items():
            if len(values) != len(self.latents):
                raise ValueError(f"latent map metadata {key!r} has {len(values)} entries for {len(self.latents)} points")

    def project(self, u: np.ndarray, neighbours: int = 10) -> np.ndarray:
        """2-D coordinates ``(B, 2)`` for latent actions ``u (B, Q, C)`` or ``(B, Q*C)``."""
        x = np.asarray(u, dtype=np.float32).reshape(len(u), -1)
        if x.shape[1] != self.latents.shape[1]:
            raise ValueError(f"latent size {x.shape[1]} does not match this map's {self.latents.shape[1]}")
        d = np.sqrt(((x[:, None, :] - self.latents[None]) ** 2).sum(-1))  # (B, M)
        k = min(neighbours, len(self.latents))
        idx = np.argpartition(d, k - 1, axis=1)[:, :k]
        w = 1.0 / (np.take_along_axis(d, idx, 1) + 1e-6)
        w /= w.sum(1, keepdims=True)
        return (self.coords[idx] * w[..., None]).sum(1)

    def save(self, path: str | Path) -> None:
        arrays = {"latents": self.latents, "coords": self.coords}
        arrays.update({f"meta_{k}": np.asarray(v) for k, v in self.meta.items()})
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> LatentMap:
        with np.load(path, allow_pickle=False) as f:
            meta = {k[5:]: f[k] for k in f.files if k.startswith("meta_")}
            return cls(latents=f["latents"], coords=f["coords"], meta=meta)


def map_features(dynamics, u) -> np.ndarray:
    """Latent actions ``u (B, Q, C)`` (a tensor) as the map holds them: ``(B, Q*C)`` float32, standardised by ``dynamics``."""
    return dynamics.standardize(u.detach()).reshape(len(u), -1).cpu().numpy().astype(np.float32, copy=False)


def map_latents(dynamics, x: np.ndarray):
    """Map points ``x (B, Q*C)`` back as raw latent actions ``(B, Q, C)`` (a tensor): the inverse of :func:`map_features`."""
    import torch

    x = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(-1, *dynamics.u_mean.shape)
    return dynamics.unstandardize(x)


def fit_latent_map(latents: np.ndarray, meta: dict[str, np.ndarray], seed: int = 0, neighbours: int = 15) -> LatentMap:
    """Fit UMAP on flattened latent actions ``(M, Q*C)`` (standardise them first)."""
    import umap  # slow import (numba): only here, offline

    x = np.asarray(latents, dtype=np.float32).reshape(len(latents), -1)
    reducer = umap.UMAP(n_neighbors=min(neighbours, len(x) - 1), min_dist=0.1, random_state=seed, n_jobs=1)
    coords = reducer.fit_transform(x).astype(np.float32)
    return LatentMap(latents=x, coords=coords, meta=meta)
