"""Choosing frames: from an example episode (episode + time step) or an uploaded image.

:func:`frame_picker` builds the widgets and keeps their preview in sync; :func:`pick_frame`
turns the widget values into a frame inside a callback.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np

from app.episodes import EpisodeStore, check_index
from app.errors import user_error
from app.images import ImageInput, image_input, read_image

EPISODE, UPLOAD = "Example episode", "Upload"
SOURCES = [EPISODE, UPLOAD]


@dataclass
class Picked:
    frame: np.ndarray  # (H, W, 3) uint8
    episode: object | None  # the example episode, when the frame comes from one
    t: int | None  # its time step

    @property
    def key(self) -> str:
        """Identifies the frame for session bookkeeping."""
        from rla.data import frames_digest

        return f"{self.episode.episode_id}@{self.t}" if self.episode is not None else f"upload:{frames_digest(self.frame)}"


def pick_frame(store: EpisodeStore, size: int, source: str, episode_id, t, image) -> Picked:
    """The frame the widgets point at; ``gr.Error`` for a missing or invalid choice."""
    if source == EPISODE:
        frame, t = store.frame(episode_id, t)
        return Picked(frame, store.get(episode_id), t)
    if source == UPLOAD:
        if image is None:
            raise user_error("Upload an image first, or switch the source to “Example episode”.", "Missing image")
        return Picked(read_image(image, size), None, None)
    raise user_error(f"Unknown frame source {source!r}; choose one of {SOURCES}.", "Bad input")


def pick_pair(store: EpisodeStore, size: int, source: str, episode_id, t, k, image_a, image_b) -> tuple[Picked, Picked]:
    """Two frames: ``t`` and ``t + k`` of an episode, or two uploads."""
    if source == EPISODE:
        ep = store.get(episode_id)
        t = check_index(t, ep.num_steps - 1, "start frame")
        k = check_index(k, ep.num_steps, "horizon k")
        if k < 1 or t + k > ep.num_steps:
            raise user_error(f"The horizon k must be from 1 to {ep.num_steps - t} for frame {t} of this episode, got {k}.", "Bad input")
        return Picked(ep.frames[t], ep, t), Picked(ep.frames[t + k], ep, t + k)
    if source == UPLOAD:
        if image_a is None or image_b is None:
            raise user_error("Upload both frames (before and after), or switch the source to “Example episode”.", "Missing image")
        return Picked(read_image(image_a, size), None, None), Picked(read_image(image_b, size), None, None)
    raise user_error(f"Unknown frame source {source!r}; choose one of {SOURCES}.", "Bad input")


@dataclass
class FramePicker:
    source: gr.Radio
    episode: gr.Dropdown
    t: gr.Slider
    image: ImageInput
    fit: tuple  # (fn, inputs, outputs): fits the sliders to the chosen episode; run it on page load

    @property
    def inputs(self) -> list:
        return [self.source, self.episode, self.t, self.image]


def _episode_len(store: EpisodeStore, episode_id) -> int:
    try:
        return store.get(episode_id).num_steps
    except gr.Error:
        return 0


def frame_picker(store: EpisodeStore, label: str = "Start frame", t_label: str = "Time step t", key: str = "",
                 default_episode: str | None = None, default_t: int = 0, image_height: int = 256) -> FramePicker:
    """Source radio, episode dropdown, time-step slider and an image that previews the choice."""
    has_eps = len(store) > 0
    episode = default_episode or store.first()
    last = _episode_len(store, episode)
    source = gr.Radio(SOURCES, value=EPISODE if has_eps else UPLOAD, label=f"{label} from", key=f"{key}-source")
    ep = gr.Dropdown(store.choices(), value=episode, label="Example episode", interactive=has_eps,
                     info=None if has_eps else store.note, key=f"{key}-episode")
    # bounds admit every episode (API callers never trigger the per-episode update below); callbacks check the episode
    t = gr.Slider(0, max(store.max_steps, 1), value=min(default_t, last), step=1, label=t_label, interactive=has_eps, key=f"{key}-t")
    preview = store.frame(episode, min(default_t, last))[0] if has_eps else None
    image = image_input(value=preview, label=label, height=image_height, sources=["upload", "clipboard"],
                       key=f"{key}-image")

    def show(episode_id, t_value):
        n = _episode_len(store, episode_id)
        if n == 0:
            return gr.update(), gr.update(), gr.update()
        t_value = int(min(max(0, t_value or 0), n))
        return gr.update(maximum=n, value=t_value), store.frame(episode_id, t_value)[0], EPISODE

    ep.change(show, [ep, t], [t, image, source], api_visibility="private", show_progress="hidden")
    t.release(show, [ep, t], [t, image, source], api_visibility="private", show_progress="hidden")
    image.upload(lambda: UPLOAD, None, source, api_visibility="private", show_progress="hidden")
    return FramePicker(source, ep, t, image, (show, [ep, t], [t, image, source]))


@dataclass
class PairPicker:
    source: gr.Radio
    episode: gr.Dropdown
    t: gr.Slider
    k: gr.Slider
    image_a: ImageInput
    image_b: ImageInput
    fit: tuple  # as FramePicker.fit

    @property
    def inputs(self) -> list:
        return [self.source, self.episode, self.t, self.k, self.image_a, self.image_b]


def pair_picker(store: EpisodeStore, key: str, default_episode: str | None = None, default_t: int | None = None,
                default_k: int = 10, image_height: int = 200) -> PairPicker:
    """Widgets for a frame pair: frames ``t`` and ``t + k`` of an episode, or two uploads.

    ``default_t=None`` starts at the episode's busiest pair (:meth:`EpisodeStore.busiest`).
    """
    has_eps = len(store) > 0
    episode = default_episode or store.first()
    if has_eps and default_t is None:
        default_t = store.busiest(episode, default_k)
    default_t = default_t or 0
    last = _episode_len(store, episode)
    k0 = max(1, min(default_k, last - default_t)) if has_eps else 1
    source = gr.Radio(SOURCES, value=EPISODE if has_eps else UPLOAD, label="Frame pair from", key=f"{key}-source")
    ep = gr.Dropdown(store.choices(), value=episode, label="Example episode", interactive=has_eps,
                     info=None if has_eps else store.note, key=f"{key}-episode")
    with gr.Row():
        t = gr.Slider(0, max(store.max_steps - 1, 1), value=default_t, step=1, label="t (before)", interactive=has_eps, key=f"{key}-t")
        k = gr.Slider(1, max(store.max_steps, 2), value=k0, step=1, label="k (after = t + k)", interactive=has_eps, key=f"{key}-k")
    with gr.Row():
        a = image_input(value=store.frame(episode, default_t)[0] if has_eps else None, label="Before", height=image_height,
                       sources=["upload", "clipboard"], key=f"{key}-a")
        b = image_input(value=store.frame(episode, default_t + k0)[0] if has_eps else None, label="After", height=image_height,
                       sources=["upload", "clipboard"], key=f"{key}-b")

    def show(episode_id, t_value, k_value):
        n = _episode_len(store, episode_id)
        if n == 0:
            return (gr.update(),) * 5
        t_value = int(min(max(0, t_value or 0), n - 1))
        k_value = int(min(max(1, k_value or 1), n - t_value))
        return (gr.update(maximum=n - 1, value=t_value), gr.update(maximum=n, value=k_value),
                store.frame(episode_id, t_value)[0], store.frame(episode_id, t_value + k_value)[0], EPISODE)

    outs = [t, k, a, b, source]
    ep.change(show, [ep, t, k], outs, api_visibility="private", show_progress="hidden")
    t.release(show, [ep, t, k], outs, api_visibility="private", show_progress="hidden")
    k.release(show, [ep, t, k], outs, api_visibility="private", show_progress="hidden")
    a.upload(lambda: UPLOAD, None, source, api_visibility="private", show_progress="hidden")
    b.upload(lambda: UPLOAD, None, source, api_visibility="private", show_progress="hidden")
    return PairPicker(source, ep, t, k, a, b, (show, [ep, t, k], outs))
