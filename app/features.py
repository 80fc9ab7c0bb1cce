"""Frame → token encoding with an on-disk cache shared by every session and process.

Keys are explicit strings, ``f"{encoder.fingerprint}:{sha256(frame)}"`` (never tensors: diskcache
compares keys by their pickled bytes); values are float32 arrays ``(N, D)``.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from app.packs import REPO_ROOT
from rla.data import frames_digest

DEFAULT_CACHE_DIR = REPO_ROOT / "cache" / "app-features"


class FeatureCache:
    """Encodes frames with a pack's encoder, remembering the tokens on disk."""

    def __init__(self, directory: str | Path | None = None, size_limit: int = 2**30):
        import diskcache  # imported here: nothing slow at import time

        self.directory = Path(directory or os.environ.get("RLA_CACHE_DIR") or DEFAULT_CACHE_DIR)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cache = diskcache.Cache(str(self.directory), size_limit=size_limit)

    @staticmethod
    def key(encoder, frame: np.ndarray) -> str:
        return f"{encoder.fingerprint}:{frames_digest(frame)}"

    def encode(self, encoder, frames: np.ndarray) -> tuple[torch.Tensor, float]:
        """uint8 frames ``(B, H, W, 3)`` → (tokens ``(B, N, D)`` float32, milliseconds spent).

        Frames already in the cache are read back; the others are encoded in one batch.
        """
        start = time.perf_counter()
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        keys = [self.key(encoder, f) for f in frames]
        found = [self._cache.get(k) for k in keys]
        missing = [i for i, z in enumerate(found) if z is None]
        if missing:
            z_new = encoder.encode(frames[missing]).float().numpy()  # (M, N, D)
            for i, z in zip(missing, z_new):
                self._cache.set(keys[i], np.ascontiguousarray(z, dtype=np.float32))
                found[i] = z
        tokens = torch.from_numpy(np.stack(found).astype(np.float32, copy=False))
        return tokens, (time.perf_counter() - start) * 1e3

    def clear(self) -> None:
        self._cache.clear()

    def close(self) -> None:
        self._cache.close()
