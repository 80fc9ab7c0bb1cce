"""The example episodes the app offers as start frames, real futures and evaluation data.

Loaded once when the demo is built and read-only afterwards. Each episode duck-types
``rla.data.Episode``: ``frames (T+1, H, W, 3)`` uint8, ``actions (T, A)``, ``success (T,)``,
``foreground (T+1, H, W) | None``, ``task``, ``episode_id``, ``num_steps``, ``succeeded``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from app.errors import user_error
from app.packs import REPO_ROOT

log = logging.getLogger("rla.app")
EXAMPLES_DIR = REPO_ROOT / "assets" / "examples"


class EpisodeStore:
    def __init__(self, episodes: list | None = None, note: str = ""):
        self._episodes = {str(ep.episode_id): ep for ep in (episodes or [])}
        self.note = note  # why there are no episodes, when there are none

    @classmethod
    def from_folder(cls, root: str | Path = EXAMPLES_DIR) -> EpisodeStore:
        """Episodes recorded under ``root`` (via ``rla.data.load_episodes``); empty with a note if none."""
        root = Path(root)
        if not root.is_dir() or not any(root.rglob("*.h5")):
            return cls([], f"No example episodes were found in `{root}` (recorded `.h5` files; see docs/data.md).")
        try:
            from rla.data import load_episodes
        except ImportError:
            return cls([], "The example-episode loader (`rla.data`) is not available in this installation.")
        try:
            episodes = list(load_episodes(root))
        except Exception as err:  # noqa: BLE001 — a broken examples folder must not stop the app
            log.warning("could not load example episodes from %s: %s", root, err)
            return cls([], f"Could not load the example episodes in `{root}`: {err}")
        return cls(episodes, "" if episodes else f"No example episodes were found in `{root}`.")

    def __len__(self) -> int:
        return len(self._episodes)

    def __iter__(self):
        return iter(self._episodes.values())

    @property
    def max_steps(self) -> int:
        """The longest episode's T (slider bounds must admit every episode's frames)."""
        return max((ep.num_steps for ep in self._episodes.values()), default=1)

    @property
    def ids(self) -> list[str]:
        return list(self._episodes)

    def name(self, episode_id: str) -> str:
        """A short name: the id, prefixed with the task unless the id already starts with it."""
        task = self._episodes[episode_id].task
        return episode_id if episode_id.startswith(task) else f"{task} · {episode_id}"

    def label(self, episode_id: str) -> str:
        ep = self._episodes[episode_id]
        return f"{self.name(episode_id)} · {ep.num_steps} steps · {'success' if ep.succeeded else 'failure'}"

    def busiest(self, episode_id: str, k: int) -> int:
        """The ``t`` whose pair ``(t, t + k)`` changes the most pixels: a telling default pair."""
        frames = self.get(episode_id).frames
        k = max(1, min(k, len(frames) - 1))
        change = np.abs(frames[k:].astype(np.int16) - frames[:-k].astype(np.int16)).mean(axis=(1, 2, 3))  # (T+1-k,)
        return int(change.argmax())

    def choices(self) -> list[tuple[str, str]]:
        """(label, episode_id) pairs for a dropdown."""
        return [(self.label(i), i) for i in self._episodes]

    def get(self, episode_id: str | None):
        if not self._episodes:
            raise user_error(f"There are no example episodes. {self.note}", "No episodes")
        if not episode_id:
            raise user_error("Pick an example episode first.", "No episode selected")
        try:
            return self._episodes[str(episode_id)]
        except KeyError:
            raise user_error(f"Unknown episode {episode_id!r}; pick one from the list.", "Unknown episode") from None

    def frame(self, episode_id: str, t) -> tuple[np.ndarray, int]:
        """Frame ``t`` of an episode (``t`` checked against its length) and ``t`` as an int."""
        ep = self.get(episode_id)
        t = check_index(t, ep.num_steps, "frame")
        return ep.frames[t], t

    def showcase(self, n: int = 3, tasks: list | None = None, action_dim: int | None = None) -> list[str]:
        """Up to ``n`` episode ids for examples: one per task first; successful ones, and ones from
        ``tasks`` with ``action_dim``-D actions (what the pack was trained on), preferred."""
        def rank(e):
            foreign = (tasks is not None and e.task not in tasks) or (action_dim is not None and e.actions.shape[1] != action_dim)
            return (foreign, not e.succeeded)

        eps = sorted(self._episodes.values(), key=rank)
        picked, tasks = [], set()
        for ep in eps:
            if ep.task not in tasks:
                picked.append(str(ep.episode_id)), tasks.add(ep.task)
        picked += [str(e.episode_id) for e in eps if str(e.episode_id) not in picked]
        return picked[:n]

    def first(self) -> str | None:
        return next(iter(self._episodes), None)


def showcase_fit(info) -> tuple:
    """``(tasks, action_dim)`` of a ``PackInfo`` for :meth:`EpisodeStore.showcase` (or no preference)."""
    return (list(info.tasks), info.action_dim) if info is not None else (None, None)


def compatible(episode, pack) -> bool:
    """Whether a pack's world models can replay an episode's recorded actions (same action size)."""
    return episode.actions.shape[1] == pack.info.action_dim


def check_number(value, low: float, high: float, what: str) -> float:
    """A number in ``[low, high]`` from a widget value (NaN refused), or a ``gr.Error`` naming ``what``."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise user_error(f"The {what} must be a number from {low:g} to {high:g}, got {value!r}.", "Bad input") from None
    if not low <= f <= high:  # also refuses NaN
        raise user_error(f"The {what} must be from {low:g} to {high:g}, got {value!r}.", "Bad input")
    return f


def check_index(value, last: int, what: str) -> int:
    """An integer in ``[0, last]`` from a widget value, or a ``gr.Error`` naming ``what``."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise user_error(f"The {what} must be a number, got {value!r}.", "Bad input") from None
    if not np.isfinite(f) or f != int(f) or not 0 <= f <= last:
        raise user_error(f"The {what} must be a whole number from 0 to {last}, got {value!r}.", "Bad input")
    return int(f)
