"""What the world-model tab shows for a rollout (frames, change maps, spread, errors, latency) and its export.

Pictures leave as files written once and atomically (:func:`app.images.save_picture`); the error
plot leaves as ready-made plotly JSON (building a ``go.Figure`` with subplots costs ~17 ms).
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass

import numpy as np
import torch
from gradio.components.plot import PlotData

from app.images import content_key, grid, heatmap_overlay, publish, save_picture, upscale
from app.plots import METHOD_COLOURS, empty_figure
from app.predict import RLA
from app.state import Rollout
from rla.encoders.base import resize_uint8
from rla.labels import METHOD_LABELS, METHOD_SHORT, method_label
from rla.metrics import psnr, token_l1
from rla.video import compose_all, describe_actions, write_gif, write_mp4

MAX_COLUMNS = 8  # chunks shown in the filmstrip (the most recent ones)
LARGE = 256  # the side of the single frames shown (latest, real, spread)
EXPORT_FPS = 2.0  # video frames per second: one per chunk, so half a second per chunk


@dataclass
class View:
    latest: np.ndarray | None  # the last predicted frame, upscaled
    real: np.ndarray | None  # the real frame at the same step, upscaled
    filmstrip: np.ndarray | None
    change: np.ndarray | None  # per-patch change maps, predicted vs real
    spread: np.ndarray | None  # per-pixel std over samples; None with one sample
    errors: PlotData
    latency: str
    status: str

    def outputs(self) -> tuple:
        """Values for the tab's outputs: picture files, the plot, two texts."""
        pictures = (save_picture(p) for p in (self.latest, self.real, self.filmstrip, self.change, self.spread))
        return (*pictures, self.errors, self.latency, self.status)


def empty_view(message: str) -> View:
    return View(None, None, None, None, None, _empty_plot("Predict a chunk to see errors against the real frames"), "", message)


def _tile(frame: np.ndarray) -> int:
    """Filmstrip and change-map tiles: the frame's own size, doubled until it is at least 128 px."""
    side = min(frame.shape[:2])
    return side * max(1, -(-128 // side))


def real_frames(ro: Rollout, store) -> list[np.ndarray | None]:
    """The recorded frame at the end of each chunk, where the start frame came from an episode."""
    if ro.episode_id is None:
        return [None] * ro.num_chunks
    ep = store.get(ro.episode_id)
    ends = np.cumsum([len(a) for a in ro.actions]) + ro.t0
    return [ep.frames[e] if e <= ep.num_steps else None for e in ends]


def shown_methods(ro: Rollout, pack, show_baselines: bool) -> list[str]:
    """RLA-WM, then the pack's baselines that have predicted this rollout (when they are shown)."""
    return [RLA] + ([m for m in pack.baselines if m in ro.tokens] if show_baselines else [])


def render(ro: Rollout | None, pack, features, store, show_baselines: bool) -> View:
    if ro is None:
        return empty_view("Pick a start frame and press **Predict chunk**.")
    methods = shown_methods(ro, pack, show_baselines)
    real = real_frames(ro, store)
    have = [i for i, f in enumerate(real) if f is not None]
    z_real = {}
    if have:
        z, _ = features.encode(pack.encoder, np.stack([real[i] for i in have]))
        z_real = dict(zip(have, z))
    ends = list(np.cumsum([len(a) for a in ro.actions]))
    return View(
        latest=upscale(ro.frames[RLA][-1], LARGE) if ro.num_chunks else None,
        real=upscale(real[-1], LARGE) if ro.num_chunks and real[-1] is not None else None,
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
        labels.append(METHOD_SHORT.get(m, m))
    if ro.episode_id is not None:
        rows.insert(1, [ro.start_frame] + real[first:])
        labels.insert(1, "real")
    return grid(rows, labels, cols, tile=_tile(ro.start_frame))


def _change_maps(ro: Rollout, real, z_real, methods, pack) -> np.ndarray:
    """|tokens after − tokens before| per patch for the last chunk, on a shared colour scale."""
    grid_shape = pack.encoder.grid
    i = ro.num_chunks - 1
    panels, labels = [], []
    for m in methods:
        before = ro.tokens[m][i - 1] if i > 0 else ro.start_tokens
        panels.append((ro.frames[m][i], np.abs(ro.tokens[m][i] - before).mean(-1).reshape(grid_shape)))
        labels.append(METHOD_SHORT.get(m, m))
    if real[i] is not None:
        prev = ro.start_tokens if i == 0 else z_real.get(i - 1)
        if prev is not None:
            panels.append((real[i], np.abs(z_real[i].numpy() - np.asarray(prev)).mean(-1).reshape(grid_shape)))
            labels.append("real")
    vmax = max(float(p[1].max()) for p in panels) or 1.0
    tile = _tile(ro.start_frame)
    tiles = [heatmap_overlay(upscale(f, tile), c, vmax) for f, c in panels]
    return grid([tiles], [], labels, tile=tile)


def _spread(ro: Rollout) -> np.ndarray | None:
    """Per-pixel spread over the last chunk's samples; ``None`` with one sample (the status says so)."""
    if not ro.num_chunks or ro.spread[-1] is None:
        return None
    s = ro.spread[-1]
    return heatmap_overlay(upscale(ro.frames[RLA][-1], LARGE), s, max(float(s.max()), 1e-6), alpha=0.85)


def _errors(ro: Rollout, real, z_real, methods, ends) -> PlotData:
    idx = [i for i, f in enumerate(real) if f is not None]
    if not idx:
        why = "uploaded start frame: there are no real frames to compare with" if ro.episode_id is None else \
            "no real frames: the rollout went past the end of the episode" if ro.num_chunks else "predict a chunk to see its error"
        return _empty_plot(why.capitalize())
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
        true_img = torch.from_numpy(resize_uint8(np.stack([real[i] for i in idx]), frames[0].shape[:2]))
        errors[m] = {"token_l1": token_l1(z_pred, z_true).tolist(), "psnr": psnr(pred_img, true_img).tolist()}
    return error_plot([int(ends[i]) for i in idx], errors)


def _empty_plot(message: str) -> PlotData:
    return PlotData(type="plotly", plot=_empty_json(message))


@functools.lru_cache(maxsize=32)
def _empty_json(message: str) -> str:
    return empty_figure(message).to_json()


_AXIS = dict(gridcolor="#e5e9f0", linecolor="#cbd2dc", zerolinecolor="#cbd2dc", automargin=True)


def error_plot(steps: list[int], errors: dict[str, dict[str, list[float]]]) -> PlotData:
    """Per-chunk errors against the real frames, ``errors[method][metric]`` over ``steps``, as plotly JSON.

    Two panels side by side: token L1 (lower is better) and PSNR in dB (higher is better). The
    figure is written as JSON directly: plotly's validating ``go.Figure`` and ``make_subplots``
    cost ~17 ms a call here, this 0.04 ms.
    """
    traces = []
    for method, metrics in errors.items():
        base = method.split("@")[0]
        line = {"color": METHOD_COLOURS.get(base, "#888")} | ({"dash": "dot"} if base == "copy" else {})
        for col, metric in ((1, "token_l1"), (2, "psnr")):
            traces.append({"type": "scatter", "mode": "lines+markers", "x": steps, "y": metrics[metric], "name": method_label(method),
                           "line": line, "legendgroup": method, "showlegend": col == 1,
                           "xaxis": "x" if col == 1 else "x2", "yaxis": "y" if col == 1 else "y2"})
    x = {**_AXIS, "title": {"text": "steps from the start frame"}, "tickvals": steps}
    titles = [{"text": text, "x": x0, "y": 1.0, "xref": "paper", "yref": "paper", "xanchor": "center", "yanchor": "bottom",
               "showarrow": False, "font": {"size": 13}}
              for text, x0 in (("Token L1 to the real frame ↓", 0.22), ("PSNR of the decoded frame (dB) ↑", 0.78))]
    layout = {"height": 360, "margin": {"l": 50, "r": 20, "t": 40, "b": 100}, "paper_bgcolor": "white", "plot_bgcolor": "white",
              "font": {"color": "#2a3f5f"}, "legend": {"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
              "xaxis": {**x, "domain": [0, 0.44], "anchor": "y"}, "yaxis": {**_AXIS, "anchor": "x"},
              "xaxis2": {**x, "domain": [0.56, 1], "anchor": "y2"}, "yaxis2": {**_AXIS, "anchor": "x2"}, "annotations": titles}
    return PlotData(type="plotly", plot=json.dumps({"data": traces, "layout": layout}))


def _latency(ro: Rollout, methods) -> str:
    t = ro.timings
    if "chunks" not in t:
        return f"**Latency** · encode {t.get('encode', 0):.0f} ms"
    n = max(1, t["chunks"])
    parts = [f"encode {t.get('encode', 0):.0f} ms"]
    for m in methods:
        if m in t:
            parts.append(f"{METHOD_LABELS.get(m, m)}: predict {t[m]['predict'] / n:.0f} ms + "
                         f"decode {t[m]['decode'] / n:.0f} ms")
    spread = "" if t["samples"] > 1 else " · *the spread needs 2 or more samples*"
    return (f"**Latency per chunk** ({t['steps']} Euler steps, {t['samples']} sample{'s' if t['samples'] > 1 else ''}) · "
            + " · ".join(parts) + spread)


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


# ---- export --------------------------------------------------------------------------------------

def video_rows(ro: Rollout, pack, store, methods: list[str]) -> tuple[list[list], list[str], list[str]]:
    """The rollout as :mod:`rla.video` rows: the start, then one row per chunk; RLA-WM, real, then the baselines."""
    real = real_frames(ro, store) if ro.episode_id is not None else None
    labels = ["RLA-WM (predicted)"] + (["real (recorded)"] if real is not None else []) + [METHOD_SHORT.get(m, m) for m in methods[1:]]
    where = "uploaded frame" if ro.episode_id is None else f"{store.label(ro.episode_id)}, t = {ro.t0}"
    rows = [[ro.start_frame] * len(labels)]
    captions = [f"start: {where}\n{pack.info.chunk} steps per chunk, each held for its chunk"]
    step = 0
    names = list(pack.info.action_names)
    for i, a in enumerate(ro.actions):
        row = [ro.frames[RLA][i]] + ([real[i]] if real is not None else []) + [ro.frames[m][i] for m in methods[1:]]
        rows.append(row)
        kind = "recorded" if ro.recorded[i] else "your"
        captions.append(f"chunk {i + 1}/{ro.num_chunks} · steps {step + 1}–{step + len(a)} · {kind} actions\n"
                        + describe_actions(a, names))
        step += len(a)
    return rows, labels, captions


def actions_record(ro: Rollout, pack, store) -> dict:
    """What was predicted and how, as plain JSON: the start, the actions per chunk and their settings."""
    start = {"episode": ro.episode_id, "t": ro.t0, "task": store.get(ro.episode_id).task} if ro.episode_id is not None \
        else {"upload_sha256": ro.start_key.removeprefix("upload:")}
    chunks, step = [], 0
    for i, a in enumerate(ro.actions):
        chunks.append({"index": i, "first_step": step + 1, "last_step": step + len(a), "recorded": bool(ro.recorded[i]),
                       "samples": int(ro.samples[i]), **ro.settings[i], "actions": np.asarray(a, dtype=float).round(6).tolist()})
        step += len(a)
    info = pack.info
    return {"format": "rla-explorer rollout v1", "pack": ro.pack_key, "encoder": pack.encoder.fingerprint,
            "control_mode": info.control_mode, "action_names": list(info.action_names), "chunk": int(info.chunk),
            "start": start, "methods": [RLA, *sorted(m for m in ro.tokens if m != RLA)], "chunks": chunks}


def export(ro: Rollout, pack, store, methods: list[str]) -> list[str]:
    """The rollout as an MP4, a GIF (predicted, real and baseline frames side by side, actions below) and its actions as JSON.

    Returns the three file paths (written once per content, atomically: see :func:`app.images.publish`).
    """
    rows, labels, captions = video_rows(ro, pack, store, methods)
    record = json.dumps(actions_record(ro, pack, store), indent=1)
    key = content_key("export-v1", EXPORT_FPS, record, labels, captions, *[f for r in rows for f in r if f is not None])
    frames: list = []

    def composed() -> list[np.ndarray]:
        if not frames:
            frames.extend(compose_all(rows, labels, captions, tile=max(LARGE, _tile(ro.start_frame))))
        return frames

    stem = _slug(f"rollout-{ro.episode_id or 'upload'}-t{ro.t0 or 0}-{ro.num_chunks}chunks")
    return [publish(key, f"{stem}.mp4", lambda p: write_mp4(composed(), p, EXPORT_FPS)),
            publish(key, f"{stem}.gif", lambda p: write_gif(composed(), p, EXPORT_FPS)),
            publish(key, f"{stem}.json", lambda p: p.write_text(record))]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:120]
