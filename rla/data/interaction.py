"""Interaction-focused pair sampling: where in an episode the robot acts on the object.

The paper draws 90 % of its training pairs near robot–object interaction, because most frames of a
manipulation episode show the arm moving through free space. Interaction is read off the recorded
simulator states (:mod:`rla.data.states`): a frame is an interaction frame when the object moves or
the end effector is within ``contact_m`` of it. A start ``t`` is "near interaction" when an
interaction frame lies in ``t … t + horizon``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rla.data.states import load_states


def interaction_frames(tcp: np.ndarray, obj: np.ndarray, contact_m: float = 0.05, move_m: float = 0.002) -> np.ndarray:
    """Boolean ``(T+1,)``: the object moves by more than ``move_m`` to the next frame, or the end
    effector ``tcp (T+1, 3)`` is within ``contact_m`` of the object ``obj (T+1, 3)``."""
    near = np.linalg.norm(tcp - obj, axis=1) < contact_m
    step = np.linalg.norm(np.diff(obj, axis=0), axis=1) > move_m
    return near | np.append(step, False)


def near_interaction(frames: np.ndarray, horizon: int) -> np.ndarray:
    """Float weights ``(T+1,)``: 1 where an interaction frame lies in ``t … t + horizon``."""
    hits = np.flatnonzero(frames)
    out = np.zeros(len(frames))
    for h in hits:
        out[max(0, h - horizon):h + 1] = 1.0
    return out


def start_weights(episodes: Sequence, horizon: int) -> list[np.ndarray]:
    """Near-interaction weights per episode, from each episode's recorded states."""
    out = []
    for e in episodes:
        s = load_states(e)
        out.append(near_interaction(interaction_frames(s.tcp, s.object), horizon))
    return out
