"""What the world-model tab shows for a rollout: frames, change maps, spread, errors, latency."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image

from app.images import grid, heatmap_overlay, placeholder, upscale
from app.plots import METHOD_LABELS, empty_figure, error_curve
from app.predict import RLA
from app.state import Rollout
from rla.metrics import psnr, token_l1

MAX_COLUMNS = 8  # chunks shown in the filmstrip (the most recent ones)
SHORT = {"rla": "RLA-WM", "regression": "regression", "token_flow": "token flow"}


@dataclass
class View:
    latest: np.ndarray | None  # the last predicted frame, upscaled
    real: np.ndarray | None  # the real frame at the same step, upscaled
    filmstrip: np.ndarray | None
    change: np.ndarray | None  # per-patch change maps, predicted vs real
    spread: np.ndarray | None  # per-pixel std over samples
    errors: go.Figure
    latency: str
    status: str

    def outputs(self) -> tuple:
        return self.latest, self.real, self.filmstrip, self.change, self.spread, self.errors, self.latency, self.status


def empty_view(message: str) -> View:
    return View(None, None, None, None, None, empty_figure("Predict a chunk to see errors against the real frames"), "", message)


def _resize(frame: np.ndarray, shape: tuple) -> np.ndarray:
    if frame.shape[:2] == shape[:2]:
        return frame
    return np.asarray(Image.fromarray(frame).resize((shape[1], shape[0]), Image.Resampling.BILINEAR))


def real_frames(ro: Rollout, store) -> list[np.ndarray | None]:
    """The recorded frame at the end of each chunk, where the start frame came from an episode."""
    if ro.episode_id is None:
        return [None] * ro.num_chunks
    ep = store.get(ro.episode_id)
    ends = np.cumsum([len(a) for a in ro.actions]) + ro.t0
    return [ep.frames[e] if e <= ep.num_steps else None for e in ends]


def render(ro: Rollout | None, pack, features, store, show_baselines: bool) -> View:
    if ro is None:
        return empty_view("Pick a start frame and press **Predict chunk**.")
    methods = [RLA] + ([m for m in pack.baselines if m in ro.tokens] if show_baselines else [])
    real = real_frames(ro, store)
    have = [i for i, f in enumerate(real) if f is not None]
    z_real = {}
    if have:
        z, _ = features.encode(pack.encoder, np.stack([real[i] for i in have]))
        z_real = dict(zip(have, z))
    ends = list(np.cumsum([len(a) for a in ro.actions]))
    return View(
        latest=upscale(ro.frames[RLA][-1], 256) if ro.num_chunks else None,
        real=upscale(real[-1], 256) if ro.num_chunks and real[-1] is not None else None,
        filmstrip=_filmstrip(ro, real, methods, ends),
        change=_change_maps(ro, real, z_real, methods, pack) if ro.num_chunks else None,
        spread=_spread(ro),
        errors=_errors(ro, real, z_real, methods, ends),
        latency=_latency(ro, methods),
        status=_status(ro, store, real),
    )


def _filmstrip(ro: Rollout, real, methods, ends) -> np.ndarray:
    first = max(0, ro.num_chunks - MAX_COLUMNS)
    cols = [f"start (t={ro.t0})" if ro.t0 is not None else "start"] + [f"+{e} steps" for e in ends[first:]]
    rows, labels = [], []
    for m in methods:
        rows.append([ro.start_frame] + ro.frames.get(m, [])[first:])
        labels.append(SHORT.get(m, m))
    if ro.episode_id is not None:
        rows.insert(1, [ro.start_frame] + real[first:])
        labels.insert(1, "real")
    return grid(rows, labels, cols, tile=160 if len(cols) > 5 else 192)


def _change_maps(ro: Rollout, real, z_real, methods, pack) -> np.ndarray:
    """|tokens after − tokens before| per patch for the last chunk, on a shared colour scale."""
    grid_shape = pack.encoder.grid
    i = ro.num_chunks - 1
    panels, labels = [], []
    for m in methods:
        before = ro.tokens[m][i - 1] if i > 0 else ro.start_tokens
        panels.append((ro.frames[m][i], np.abs(ro.tokens[m][i] - before).mean(-1).reshape(grid_shape)))
        labels.append(SHORT.get(m, m))
    if real[i] is not None:
        prev = ro.start_tokens if i == 0 else z_real.get(i - 1)
        if prev is not None:
            panels.append((real[i], np.abs(z_real[i].numpy() - np.asarray(prev)).mean(-1).reshape(grid_shape)))
            labels.append("real")
    vmax = max(float(p[1].max()) for p in panels) or 1.0
    tiles = [heatmap_overlay(upscale(f, 192), c, vmax) for f, c in panels]
    return grid([tiles], [], labels, tile=192)


def _spread(ro: Rollout) -> np.ndarray | None:
    if not ro.num_chunks:
        return None
    if ro.spread[-1] is None:
        return placeholder(256, "one sample:\nset Samples to 2 or more\nto see the spread")
    s = ro.spread[-1]
    return heatmap_overlay(upscale(ro.frames[RLA][-1], 256), s, max(float(s.max()), 1e-6), alpha=0.85)


def _errors(ro: Rollout, real, z_real, methods, ends) -> go.Figure:
    idx = [i for i, f in enumerate(real) if f is not None]
    if not idx:
        why = "uploaded start frame: there are no real frames to compare with" if ro.episode_id is None else \
            "no real frames: the rollout went past the end of the episode" if ro.num_chunks else "predict a chunk to see its error"
        return empty_figure(why.capitalize())
    errors = {}
    z_true = torch.stack([z_real[i] for i in idx])  # (C, N, D)
    for m in [*methods, "copy"]:
        if m == "copy":
            z_pred = torch.from_numpy(ro.start_tokens)[None].expand_as(z_true)
            frames = [ro.start_frame] * len(idx)
        else:
            z_pred = torch.from_numpy(np.stack([ro.tokens[m][i] for i in idx]))
            frames = [ro.frames[m][i] for i in idx]
        pred_img = torch.from_numpy(np.stack(frames))
        true_img = torch.from_numpy(np.stack([_resize(real[i], frames[0].shape) for i in idx]))
        errors[m] = {"token_l1": token_l1(z_pred, z_true).tolist(), "psnr": psnr(pred_img, true_img).tolist()}
    return error_curve([int(ends[i]) for i in idx], errors)


def _latency(ro: Rollout, methods) -> str:
    t = ro.timings
    if "chunks" not in t:
        return f"**Latency** · encode {t.get('encode', 0):.0f} ms"
    n = max(1, t["chunks"])
    parts = [f"encode {t.get('encode', 0):.0f} ms"]
    for m in methods:
        if m in t:
            parts.append(f"{METHOD_LABELS.get(m, m) if m != RLA else 'RLA-WM'}: predict {t[m]['predict'] / n:.0f} ms + "
                         f"decode {t[m]['decode'] / n:.0f} ms")
    return (f"**Latency per chunk** ({t['steps']} Euler steps, {t['samples']} sample{'s' if t['samples'] > 1 else ''}) · "
            + " · ".join(parts))


def _status(ro: Rollout, store, real) -> str:
    where = "your uploaded frame" if ro.episode_id is None else f"{store.label(ro.episode_id)}, frame t = {ro.t0}"
    if not ro.num_chunks:
        return f"**Start:** {where}. Set the actions and press **Predict chunk**."
    used = "recorded" if all(ro.recorded) else "your" if not any(ro.recorded) else "mixed recorded and your"
    text = f"**Start:** {where} · **{ro.num_chunks} chunk{'s' if ro.num_chunks > 1 else ''}** ({ro.step} steps) predicted with {used} actions."
    if ro.episode_id is not None and not all(ro.recorded):
        text += " The real frames follow the *recorded* actions, not the slider ones."
    if ro.episode_id is not None and real[-1] is None:
        text += " The rollout has gone past the end of the episode."
    return text
