"""On-disk cache of encoder tokens per episode, so each frame is encoded once per encoder.

Layout: ``<root>/<encoder dir>/<sha256 of the frames>.safetensors`` holding one tensor
``tokens`` (T+1, N, D) (float16 by default) and metadata (fingerprint, episode id, shape). The
key is ``f"{encoder.fingerprint}/{sha256(frames bytes + shape)}"``: a re-recorded episode with
other pixels gets a new entry, a renamed file with the same pixels hits. The encoder directory
is the fingerprint made path-safe plus a short hash of the exact fingerprint.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from rla.data.episodes import Episode


def frames_digest(frames: np.ndarray) -> str:
    """sha256 of a frame stack's shape, dtype and bytes."""
    h = hashlib.sha256(f"{frames.shape}:{frames.dtype}".encode())
    h.update(np.ascontiguousarray(frames).tobytes())
    return h.hexdigest()


class FeatureCache:
    """Tokens of whole episodes, keyed by encoder fingerprint and frame content.

    Attributes:
        hits, misses: episodes served from disk / encoded since construction.
        frames_encoded: frames passed to ``encoder.encode`` since construction.
    """

    def __init__(self, root: str | Path, dtype: torch.dtype = torch.float16, batch_size: int = 64):
        self.root = Path(root)
        self.dtype = dtype  # storage dtype; tokens are returned as float32
        self.batch_size = batch_size  # frames per encode call
        self.hits = 0
        self.misses = 0
        self.frames_encoded = 0

    def key(self, episode: Episode, encoder) -> str:
        return f"{encoder.fingerprint}/{frames_digest(episode.frames)}"

    def path(self, episode: Episode, encoder) -> Path:
        fp = encoder.fingerprint
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", fp)[:80]
        enc_dir = f"{safe}-{hashlib.sha256(fp.encode()).hexdigest()[:8]}"
        return self.root / enc_dir / f"{frames_digest(episode.frames)}.safetensors"

    def episode_tokens(self, episode: Episode, encoder) -> torch.Tensor:
        """Tokens ``(T+1, N, D)`` float32 of every frame of ``episode``; encodes on a miss."""
        path = self.path(episode, encoder)
        expected = (episode.num_steps + 1, encoder.num_tokens, encoder.dim)
        if path.is_file():
            try:
                z = load_file(path)["tokens"]
            except Exception:  # a torn write or foreign file: re-encode below
                z = None
            if z is not None and tuple(z.shape) == expected:
                self.hits += 1
                return z.float()
        self.misses += 1
        chunks = []
        for i in range(0, len(episode.frames), self.batch_size):
            batch = episode.frames[i:i + self.batch_size]  # (b, H, W, 3) uint8
            chunks.append(encoder.encode(batch).detach().cpu())
            self.frames_encoded += len(batch)
        z = torch.cat(chunks)
        if tuple(z.shape) != expected:
            raise ValueError(f"encoder {encoder.fingerprint} returned {tuple(z.shape)} for {episode.episode_id}, "
                             f"expected {expected} (num_tokens, dim)")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        save_file({"tokens": z.to(self.dtype).contiguous()}, tmp,
                  metadata={"fingerprint": encoder.fingerprint, "episode_id": episode.episode_id,
                            "shape": str(tuple(z.shape))})
        os.replace(tmp, path)  # atomic: readers never see a partial file
        return z.to(self.dtype).float()  # what a later hit returns, bit for bit

    def tokens(self, episodes: Sequence[Episode], encoder) -> list[torch.Tensor]:
        """:meth:`episode_tokens` of every episode, for ``PairDataset(tokens=...)``."""
        return [self.episode_tokens(e, encoder) for e in episodes]
