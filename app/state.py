"""Per-session state, kept in ``gr.State`` (one copy per browser tab or API client session).

Only plain data lives here (numpy arrays, strings, numbers): models are shared read-only
through :data:`app.packs.PACKS`, never stored in a session.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Rollout:
    """A start frame and the chunks predicted from it so far, for every method that ran."""

    pack_key: str  # the pack that made the predictions
    start_key: str  # identifies the start frame (episode@t or upload hash)
    start_frame: np.ndarray  # (H, W, 3) uint8
    start_tokens: np.ndarray  # (N, D) float32
    chunk: int  # K, actions per chunk
    episode_id: str | None = None  # example episode the start frame comes from
    t0: int | None = None  # its time step
    actions: list = field(default_factory=list)  # per chunk: (K, A) float32
    recorded: list = field(default_factory=list)  # per chunk: whether the recorded actions were used
    tokens: dict = field(default_factory=dict)  # method → per chunk (N, D) float32
    frames: dict = field(default_factory=dict)  # method → per chunk (H, W, 3) uint8
    spread: list = field(default_factory=list)  # per chunk: per-pixel std over samples (H, W) or None
    samples: list = field(default_factory=list)  # per chunk: number of RLA samples drawn
    settings: list = field(default_factory=list)  # per chunk: {"steps": Euler steps, "seed": seed} it was predicted with
    timings: dict = field(default_factory=dict)  # the last call: {"encode": ms, "<method>": {"predict": ms, "decode": ms}}

    @property
    def num_chunks(self) -> int:
        return len(self.actions)

    @property
    def step(self) -> int:
        """Environment steps predicted so far."""
        return sum(len(a) for a in self.actions)

    def last_tokens(self, method: str) -> np.ndarray:
        seq = self.tokens.get(method, [])
        return seq[-1] if seq else self.start_tokens

    def undo(self) -> bool:
        """Drop the last chunk; ``False`` when there was none."""
        if not self.actions:
            return False
        self.actions.pop(), self.recorded.pop(), self.spread.pop(), self.samples.pop(), self.settings.pop()
        for seq in (*self.tokens.values(), *self.frames.values()):
            if len(seq) > len(self.actions):
                seq.pop()
        return True

    def reset(self) -> None:
        """Back to the start frame."""
        self.actions, self.recorded, self.spread, self.samples, self.settings = [], [], [], [], []
        self.tokens, self.frames, self.timings = {}, {}, {}


@dataclass
class Pair:
    """The last frame pair a session encoded (shown projected in the latent-space tab)."""

    pack_key: str
    u: np.ndarray  # (Q, C) the residual latent action
    label: str  # e.g. "PullCube · ep 3 · t=10→20" or "your upload"
    xy: np.ndarray | None = None  # (2,) its place on the pack's latent map
