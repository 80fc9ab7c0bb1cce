"""Action widgets: one slider per action dimension, in the pack's units, and their validation."""
from __future__ import annotations

import math

import gradio as gr
import numpy as np

from app.errors import user_error

MAX_ACTIONS = 8  # sliders built; a pack uses the first ``action_dim``


def action_sliders(info) -> list[gr.Slider]:
    """``MAX_ACTIONS`` sliders configured for a pack's action space (the extra ones hidden)."""
    return [gr.Slider(**slider_config(info, i), key=f"action-{i}", elem_id=f"action-{i}", min_width=120) for i in range(MAX_ACTIONS)]


def slider_config(info, i: int) -> dict:
    """Slider ``i``'s settings for a pack's ``PackInfo`` (or ``None``: no pack loaded)."""
    if info is None or i >= info.action_dim:
        return dict(minimum=-1, maximum=1, value=0.0, step=0.05, label=f"action {i + 1}", visible=False)
    name, lo, hi = info.action_names[i], float(info.action_low), float(info.action_high)
    return dict(minimum=lo, maximum=hi, value=0.0, step=(hi - lo) / 40, label=name, visible=True,
                info=_unit_hint(name, info.control_mode))


def slider_updates(info) -> list[dict]:
    """One ``gr.update`` per slider for a newly loaded pack."""
    return [gr.update(**slider_config(info, i)) for i in range(MAX_ACTIONS)]


def _unit_hint(name: str, control_mode: str) -> str | None:
    if control_mode.startswith("pd_ee_delta") and name in ("dx", "dy", "dz"):
        return "end-effector step, ±1 = ±10 cm per step"
    if name == "gripper":
        return "−1 closed … +1 open"
    return None


def action_vector(values, info) -> np.ndarray:
    """Slider values → a float32 action ``(A,)`` in the pack's bounds.

    Non-numbers and NaN/inf are refused with ``gr.Error``; values outside the bounds are clipped
    with a ``gr.Warning``.
    """
    if info.action_dim > MAX_ACTIONS:
        raise user_error(f"This pack has {info.action_dim} action dimensions; the app shows at most {MAX_ACTIONS}.", "Unsupported pack")
    out = []
    for i in range(info.action_dim):
        v = values[i] if i < len(values) else 0.0
        name = info.action_names[i]
        try:
            f = float(0.0 if v is None else v)
        except (TypeError, ValueError):
            raise user_error(f"Action {name} must be a number, got {v!r}.", "Bad action") from None
        if not math.isfinite(f):
            raise user_error(f"Action {name} must be a finite number, got {v!r}.", "Bad action")
        out.append(f)
    a = np.asarray(out, dtype=np.float32)
    lo, hi = float(info.action_low), float(info.action_high)
    if (a < lo).any() or (a > hi).any():
        bad = ", ".join(f"{n}={x:g}" for n, x in zip(info.action_names, a) if not lo <= x <= hi)
        gr.Warning(f"Actions outside [{lo:g}, {hi:g}] were clipped: {bad}.")
        a = a.clip(lo, hi)
    return a
