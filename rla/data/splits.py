"""Train / validation / test splits as data, and the project's reserved reset-seed ranges.

A :class:`Splits` lists the episode ids of each split; a pack records it in ``pack.json`` so that
evaluation, properties, probes and the latent map read exactly the episodes the pack was *not*
trained on. Validation and test episodes are fresh recordings from their own reserved seed
ranges (:data:`SEED_RANGES`), not a fraction carved out of the training recordings::

    splits = Splits.from_roles({"train": train_eps, "val": val_eps, "test": test_eps})
    test = splits.select(load_episodes("data/pipeline"), "test")   # raises if any is missing

Every choice (autoencoder gate, ablations, checkpoints) reads ``val``; only the final evaluation
reads ``test``. ``docs/data.md`` holds the same seed table (a test keeps them in step).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rla.data.episodes import DatasetError, Episode

#: Reserved env reset seeds per purpose, ``[start, stop)``, the same for every task. Recording for a
#: purpose must draw its seeds from its range, so no two purposes ever share an initial state.
SEED_RANGES: dict[str, tuple[int, int]] = {
    "wm_train_clean": (0, 100),  # world-model training: expert episodes
    "expert_check": (100, 200),  # measuring the scripted experts' success (docs/data.md)
    "expert_check_noisy": (1000, 1100),  # ... and with action noise
    "wm_train_noisy": (1100, 2000),  # world-model training: expert + action-noise episodes (mostly failures)
    "wm_train_play": (2000, 3000),  # world-model training: task-agnostic play
    "wm_val": (10_000, 11_000),  # world-model validation: gate, ablations, every choice
    "wm_test": (20_000, 21_000),  # world-model test: the reported evaluation only
    "policy_data": (30_000, 40_000),  # World Action Model / WMRL recordings
    "policy_val": (40_000, 41_000),  # policy pilots and learning curves (never the reported number)
    "policy_test": (41_000, 42_000),  # policy evaluation in the simulator (the reported number)
    "planning": (50_000, 51_000),  # planning benchmark episodes
}
SPLITS = ("train", "val", "test")


def seed_range(purpose: str) -> tuple[int, int]:
    if purpose not in SEED_RANGES:
        raise ValueError(f"unknown seed purpose {purpose!r}; choose one of {sorted(SEED_RANGES)}")
    return SEED_RANGES[purpose]


def check_seeds(purpose: str, first: int, count: int) -> None:
    """Raise ``ValueError`` unless seeds ``first … first + count − 1`` lie in the purpose's range."""
    start, stop = seed_range(purpose)
    if not (start <= first and first + count <= stop):
        raise ValueError(f"seeds {first}…{first + count - 1} are outside the range reserved for {purpose} "
                         f"({start}…{stop - 1}); see rla.data.splits.SEED_RANGES and docs/data.md")


@dataclass
class Splits:
    """Episode ids per split; ``recordings`` says where each split's episodes came from."""

    train: list = field(default_factory=list)  # episode ids the models were trained on
    val: list = field(default_factory=list)  # ids for every choice (gate, ablations)
    test: list = field(default_factory=list)  # ids for the reported evaluation only
    recordings: list = field(default_factory=list)  # dicts: split, task, file, seeds, episodes, noise

    def __post_init__(self):
        self.check_disjoint()

    def check_disjoint(self) -> None:
        """Raise ``ValueError`` if an episode id is in two splits (or twice in one)."""
        seen: dict[str, str] = {}
        for name in SPLITS:
            for eid in getattr(self, name):
                if eid in seen:
                    raise ValueError(f"episode {eid} is in both the {seen[eid]} and the {name} split")
                seen[eid] = name

    @classmethod
    def from_roles(cls, episodes: dict[str, Sequence[Episode]], recordings: list | None = None) -> "Splits":
        """Splits from episodes grouped by split name (``train``, ``val``, ``test``)."""
        unknown = set(episodes) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown split names {sorted(unknown)}; use {SPLITS}")
        return cls(**{name: [e.episode_id for e in episodes.get(name, [])] for name in SPLITS}, recordings=list(recordings or []))

    def select(self, episodes: Sequence[Episode], split: str, *, tasks: Sequence[str] | None = None) -> list[Episode]:
        """The episodes of ``split`` among ``episodes`` (input order kept); raises ``DatasetError``
        naming the missing ids if the data lacks any of them."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        wanted = set(getattr(self, split))
        if tasks is not None:
            by_id = {e.episode_id: e.task for e in episodes}
            wanted = {eid for eid in wanted if by_id.get(eid, eid.split("/")[0]) in set(tasks)}
        found = [e for e in episodes if e.episode_id in wanted]
        missing = wanted - {e.episode_id for e in found}
        if missing:
            raise DatasetError(f"the {split} split lists {len(missing)} episodes the data does not hold "
                               f"(e.g. {sorted(missing)[:3]}): pass the --data folder the pack was built from")
        return found

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path) -> "Splits":
        try:
            return cls(**json.loads(Path(path).read_text()))
        except FileNotFoundError as err:
            raise DatasetError(f"{path}: no such splits file (training.pipeline writes one into its work folder)") from err
        except (json.JSONDecodeError, TypeError) as err:
            raise DatasetError(f"{path} is not a valid splits file: {err}") from err

    def summary(self) -> dict:
        """Episodes per split and task (for tables and the app)."""
        out: dict = {}
        for name in SPLITS:
            counts: dict[str, int] = {}
            for eid in getattr(self, name):
                task = eid.split("/")[0].split("_")[0]
                counts[task] = counts.get(task, 0) + 1
            out[name] = counts
        return out
