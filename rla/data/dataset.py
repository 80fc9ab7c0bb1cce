"""Training pairs, evaluation chunks and the train/val split, over in-memory :class:`Episode` s.

Index conventions: frame ``t`` is the observation before action ``t``; a pair ``(t, k)`` is
frame ``t``, the ``k`` actions ``t … t+k-1`` and frame ``t + k``.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from rla.data.episodes import DatasetError, Episode
from rla.horizons import WORLD_MODEL_K_RANGE


def split_episodes(episodes: Sequence[Episode], val_fraction: float = 0.1, seed: int = 0
                   ) -> tuple[list[Episode], list[Episode]]:
    """Split by episode into ``(train, val)``, stratified by task; deterministic.

    Within each task, episodes are ordered by ``sha256(f"{seed}:{episode_id}")`` and the first
    ``round(val_fraction * n)`` go to val (at least one when the task has two or more episodes and
    ``val_fraction > 0``). The result does not depend on the input order, and adding episodes
    moves few existing ones. Both lists keep the input order.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    by_task: dict[str, list[Episode]] = defaultdict(list)
    for e in episodes:
        by_task[e.task].append(e)
    val_ids: set[str] = set()
    for eps in by_task.values():
        n_val = round(val_fraction * len(eps))
        if val_fraction > 0 and len(eps) >= 2:
            n_val = max(1, n_val)
        ranked = sorted(eps, key=lambda e: hashlib.sha256(f"{seed}:{e.episode_id}".encode()).hexdigest())
        val_ids.update(e.episode_id for e in ranked[:n_val])
    train = [e for e in episodes if e.episode_id not in val_ids]
    val = [e for e in episodes if e.episode_id in val_ids]
    return train, val


def _check_uniform(episodes: Sequence[Episode], what: str) -> None:
    """All episodes must share frame size and action size, or batches cannot stack."""
    shapes = {(e.image_size, e.action_dim, e.control_mode) for e in episodes}
    if len(shapes) > 1:
        by = {}
        for e in episodes:
            by.setdefault((e.image_size, e.action_dim, e.control_mode), e.episode_id)
        raise DatasetError(f"{what}: episodes mix frame sizes / action spaces {sorted(by.items())}; "
                           "build one dataset per robot and resolution (e.g. filter on task)")


def _check_tokens(episodes: Sequence[Episode], tokens: Sequence[torch.Tensor] | None) -> None:
    if tokens is None:
        return
    if len(tokens) != len(episodes):
        raise ValueError(f"tokens: got {len(tokens)} tensors for {len(episodes)} episodes (one (T+1, N, D) each)")
    for e, z in zip(episodes, tokens):
        if z.ndim != 3 or z.shape[0] != e.num_steps + 1:
            raise ValueError(f"tokens of {e.episode_id}: expected ({e.num_steps + 1}, N, D), got {tuple(z.shape)}")


class PairDataset(Dataset):
    """Random-horizon training pairs ``(frame_t, actions[t:t+k], frame_{t+k})``.

    Item ``i`` is one start ``(episode, t)``; its horizon ``k`` is drawn uniformly from
    ``k_range`` (inclusive, clipped to the steps left) with a generator seeded by
    ``(seed, epoch, i)``, so items are reproducible; call :meth:`set_epoch` to redraw.

    Item dict: ``frame_t``, ``frame_k`` (H, W, 3) uint8 — or ``z_t``, ``z_k`` (N, D) when
    ``tokens`` (one ``(T+1, N, D)`` tensor per episode) is given — ``actions`` (k, A) float32,
    ``k``, ``qpos_t`` (J,), ``success`` (bool, after the last action), ``task``,
    ``episode_id``, ``t``.
    """

    def __init__(self, episodes: Sequence[Episode], k_range: tuple[int, int] = WORLD_MODEL_K_RANGE, seed: int = 0,
                 tokens: list[torch.Tensor] | None = None):
        k_min, k_max = k_range
        if not 1 <= k_min <= k_max:
            raise ValueError(f"k_range must satisfy 1 <= min <= max, got {k_range}")
        if not episodes:
            raise DatasetError("PairDataset: no episodes given")
        for e in episodes:
            if e.num_steps < k_min:
                raise DatasetError(f"{e.source or e.episode_id}: episode {e.episode_id} has {e.num_steps} steps, "
                                   f"shorter than the minimum horizon k={k_min}")
        _check_uniform(episodes, "PairDataset")
        _check_tokens(episodes, tokens)
        self.episodes = list(episodes)
        self.tokens = tokens
        self.k_range = (k_min, k_max)
        self.seed = seed
        self.epoch = 0
        starts = [np.stack([np.full(e.num_steps - k_min + 1, i), np.arange(e.num_steps - k_min + 1)], 1)
                  for i, e in enumerate(self.episodes)]
        self._index = np.concatenate(starts)  # (num_items, 2): episode index, t
        self.focus: list[np.ndarray] | None = None
        self.focus_fraction = 0.0

    def set_focus(self, weights: Sequence[np.ndarray], fraction: float) -> None:
        """Draw ``fraction`` of each batch's starts with probability ∝ ``weights[e][t]`` (e.g.
        :func:`rla.data.interaction.start_weights`), the rest uniformly."""
        if not 0 <= fraction <= 1:
            raise ValueError(f"focus fraction must be in [0, 1], got {fraction}")
        if len(weights) != len(self.episodes):
            raise ValueError(f"got {len(weights)} weight arrays for {len(self.episodes)} episodes")
        self.focus, self.focus_fraction = [np.asarray(w, dtype=np.float64) for w in weights], fraction

    def set_epoch(self, epoch: int) -> None:
        """Redraw every item's horizon (DataLoader workers see the change on the next epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> dict:
        ei, t = (int(v) for v in self._index[i])
        e = self.episodes[ei]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        k = int(rng.integers(self.k_range[0], min(self.k_range[1], e.num_steps - t) + 1))
        return self._item(ei, t, k)

    def _item(self, ei: int, t: int, k: int) -> dict:
        e = self.episodes[ei]
        item = dict(actions=torch.from_numpy(e.actions[t:t + k]), k=k, qpos_t=torch.from_numpy(e.qpos[t]),
                    success=bool(e.success[t + k - 1]), task=e.task, episode_id=e.episode_id, t=t)
        if self.tokens is None:
            item["frame_t"] = torch.from_numpy(e.frames[t])
            item["frame_k"] = torch.from_numpy(e.frames[t + k])
        else:
            item["z_t"] = self.tokens[ei][t].float()
            item["z_k"] = self.tokens[ei][t + k].float()
        return item

    def sample_batch(self, batch_size: int, k: int | None = None, generator: torch.Generator | None = None) -> dict:
        """A batch whose items share ONE horizon ``k``, so action chunks stack.

        ``k`` (drawn uniformly from ``k_range`` when None) must fit at least one episode;
        starts are uniform over all valid ``(episode, t)`` with ``t + k <= T``.

        Returns:
            ``frame_t``/``frame_k`` (B, H, W, 3) uint8 or ``z_t``/``z_k`` (B, N, D) float32,
            ``actions`` (B, k, A), ``k`` int, ``qpos_t`` (B, J), ``success`` (B,) bool,
            ``t`` (B,) long, ``task`` and ``episode_id`` lists of B strings.
        """
        if k is None:
            k = int(torch.randint(self.k_range[0], self.k_range[1] + 1, (1,), generator=generator))
        steps = torch.tensor([e.num_steps for e in self.episodes])
        valid = (steps - k + 1).clamp_min(0)  # starts per episode
        if int(valid.sum()) == 0:
            raise DatasetError(f"sample_batch: no episode has {k} steps (longest has {int(steps.max())})")
        ei = torch.multinomial(valid.double(), batch_size, replacement=True, generator=generator)
        t = (torch.rand(batch_size, generator=generator) * valid[ei]).long()
        if self.focus is not None and self.focus_fraction > 0:
            ei, t = self._focused(ei, t, valid, generator)
        items = [self._item(int(a), int(b), k) for a, b in zip(ei, t)]
        batch = {key: torch.stack([it[key] for it in items]) for key in items[0]
                 if isinstance(items[0][key], torch.Tensor)}
        batch.update(k=k, success=torch.tensor([it["success"] for it in items]), t=t,
                     task=[it["task"] for it in items], episode_id=[it["episode_id"] for it in items])
        return batch


    def _focused(self, ei, t, valid, generator):
        """Replace a ``focus_fraction`` of the starts by draws weighted with ``self.focus``."""
        w = torch.cat([torch.as_tensor(f[:v]) for f, v in zip(self.focus, valid.tolist())])
        if float(w.sum()) <= 0:
            return ei, t
        ends = torch.cumsum(valid, 0)
        flat = torch.multinomial(w, len(ei), replacement=True, generator=generator)
        ei_f = torch.searchsorted(ends, flat, right=True)
        t_f = flat - (ends[ei_f] - valid[ei_f])
        pick = torch.rand(len(ei), generator=generator) < self.focus_fraction
        return torch.where(pick, ei_f, ei), torch.where(pick, t_f, t)


class ChunkEvalSet(Dataset):
    """Fixed-chunk evaluation: a start frame, ``num_chunks`` chunks of ``chunk`` actions, and the
    real frames at each chunk end (the paper's ManiSkill protocol is 3 × 10 = 30 steps).

    ``start``: an int start frame for every episode; ``"random"`` for one start per episode drawn
    from a generator seeded by ``(seed, episode_id)`` (reproducible, independent of episode
    order); or ``"all"`` for every window starting at ``0, stride, 2·stride, …`` that fits (the
    evaluation protocol: many windows per episode, grouped by episode for the bootstrap).
    Episodes shorter than ``start + num_chunks * chunk`` raise.

    Item dict: ``frame_0`` (H, W, 3) uint8, ``actions`` (n, k, A) float32, ``frames``
    (n, H, W, 3) uint8 at ``t0 + k, t0 + 2k, …``, ``foreground`` (n, H, W) bool or None,
    ``task``, ``episode_id``, ``t0``.
    """

    def __init__(self, episodes: Sequence[Episode], num_chunks: int = 3, chunk: int = 10,
                 start: int | str = 0, seed: int = 0, stride: int = 10):
        if num_chunks < 1 or chunk < 1 or stride < 1:
            raise ValueError(f"num_chunks, chunk and stride must be >= 1, got {num_chunks}, {chunk}, {stride}")
        if not (start in ("random", "all") or (isinstance(start, int) and start >= 0)):
            raise ValueError(f"start must be a frame index >= 0, 'random' or 'all', got {start!r}")
        horizon = num_chunks * chunk
        self.episodes = list(episodes)
        self.num_chunks, self.chunk = num_chunks, chunk
        self.windows: list[tuple[int, int]] = []  # (episode index, t0)
        for i, e in enumerate(self.episodes):
            first = start if isinstance(start, int) else 0
            if e.num_steps < first + horizon:
                raise DatasetError(f"{e.source or e.episode_id}: episode {e.episode_id} has {e.num_steps} steps; "
                                   f"evaluation from t0={first} needs {first + horizon} ({num_chunks} x {chunk})")
            if start == "random":
                h = int(hashlib.sha256(f"{seed}:{e.episode_id}".encode()).hexdigest()[:8], 16)
                self.windows.append((i, int(np.random.default_rng(h).integers(0, e.num_steps - horizon + 1))))
            elif start == "all":
                self.windows += [(i, t0) for t0 in range(0, e.num_steps - horizon + 1, stride)]
            else:
                self.windows.append((i, start))

    @property
    def starts(self) -> list[int]:
        return [t0 for _, t0 in self.windows]

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, i: int) -> dict:
        ei, t0 = self.windows[i]
        e = self.episodes[ei]
        n, k = self.num_chunks, self.chunk
        ends = [t0 + k * (j + 1) for j in range(n)]
        return dict(
            frame_0=torch.from_numpy(e.frames[t0]),
            actions=torch.from_numpy(e.actions[t0:t0 + n * k].reshape(n, k, -1)),
            frames=torch.from_numpy(e.frames[ends]),
            foreground=torch.from_numpy(e.foreground[ends]) if e.foreground is not None else None,
            task=e.task, episode_id=e.episode_id, t0=t0,
        )
