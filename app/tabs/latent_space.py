"""Tab 4, Latent space (``/umap``): the pack's 2-D map of training latent actions, and your pair on it."""
from __future__ import annotations

import gradio as gr
import numpy as np

from app.errors import guarded, user_error
from app.images import grid
from app.latents import apply_latent, example_points, map_latent
from app.packs import require_pack
from app.plots import empty_figure, latent_scatter
from app.widgets import figure, plot_panel

COLOURINGS = {  # choice → (meta key, categorical)
    "time in episode": ("t", False),
    "task": ("task", True),
    "episode": ("episode_id", True),
    "success": ("success", True),
    "horizon k": ("k", False),
}
INTRO = """Every dot is the latent action of one training pair, placed in 2-D (UMAP, fitted when the pack was
built); the diamonds are pairs from the example episodes, placed on the same map. Colour by time, task,
episode or outcome to see what the code has organised itself by. Your last encoded pair (from **Latent
actions**) is the ★. Click a diamond (or type a point number) to see its frames."""

# Clicking a point on the plotly map writes its index into the "Point" box and presses "Show point".
CLICK_JS = """
() => {
  const hook = () => {
    const plot = document.querySelector('#latent-map .js-plotly-plot');
    if (!plot || plot.__rlaHooked || !plot.on) return;
    plot.__rlaHooked = true;
    plot.on('plotly_click', (ev) => {
      const p = ev.points && ev.points[0];
      if (!p || p.customdata === undefined) return;
      const box = document.querySelector('#latent-point input');
      if (!box) return;
      box.value = p.customdata;
      box.dispatchEvent(new Event('input', {bubbles: true}));
      setTimeout(() => document.querySelector('#latent-show-btn')?.click(), 50);
    });
  };
  new MutationObserver(hook).observe(document.body, {childList: true, subtree: true});
}
"""


def _text(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "success" if v else "failure"
    return str(v)


def build(ctx) -> gr.Tab | None:
    gr.Markdown(INTRO)
    with gr.Row(equal_height=False):
        with gr.Column(scale=7):
            plot = plot_panel("Latent map", "hover for details, click a point to see its frames", elem_id="latent-map")
        with gr.Column(scale=3, min_width=280):
            colour = gr.Radio(list(COLOURINGS), value="time in episode", label="Colour by")
            with gr.Row():
                point = gr.Number(value=-1, precision=0, label="Point #", elem_id="latent-point", minimum=-1,
                                  info="−1: none; click the map or type a number")
                show_btn = gr.Button("Show point", elem_id="latent-show-btn")
            frames = figure("Point frames", "before · after · decoded from its latent", elem_id="ls-frames")
            about_point = gr.Markdown(label="Point")

    @guarded("draw the latent map")
    def draw(pack_key, pair, colour_by, index):
        pack = require_pack(pack_key)
        lmap = pack.latent_map
        if lmap is None:
            return empty_figure("This pack has no latent map (build one with training/ when making the pack)"), None, \
                "No latent map in this pack."
        if colour_by not in COLOURINGS:
            raise user_error(f"Colour by one of {list(COLOURINGS)}, not {colour_by!r}.", "Bad input")
        key, categorical = COLOURINGS[colour_by]
        ex = example_points(pack, pack_key, ctx.episodes)
        n_train = len(lmap.coords)
        coords = lmap.coords if ex is None else np.concatenate([lmap.coords, ex["coords"]])
        meta = lmap.meta if ex is None else {k: np.concatenate([np.asarray(lmap.meta[k]), ex["meta"][k]])
                                             for k in ex["meta"] if k in lmap.meta}
        if key not in meta:
            gr.Warning(f"This latent map records no {colour_by!r}; colouring by point index.")
            colour, categorical = np.arange(len(coords)), False
        else:
            colour = np.array([_text(v) for v in meta[key]]) if categorical else np.asarray(meta[key], dtype=float)
        hover = [("example · " if i >= n_train else "") + _hover(meta, i) for i in range(len(coords))]
        sel = _index(index, len(coords))
        mine = pair.xy if pair is not None and pair.pack_key == pack_key and pair.xy is not None else None
        fig = latent_scatter(coords, colour, colour_by, hover, n_train=n_train, mine=mine,
                             mine_label=pair.label if mine is not None else "", selected=sel, categorical=categorical)
        picture, text = _point(ctx, pack, meta, sel, n_train) if sel is not None else (None, _mine_text(pair, mine))
        return fig, picture, text

    inputs = [ctx.pack_state, ctx.pair_state, colour, point]
    outputs = [plot, frames, about_point]
    colour.change(draw, inputs, outputs, api_visibility="private")
    show_btn.click(draw, inputs, outputs, api_name="umap")
    point.submit(draw, inputs, outputs, api_visibility="private")
    return draw, inputs, outputs


def _index(value, m: int) -> int | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise user_error(f"Point # must be a whole number, got {value!r}.", "Bad input") from None
    if not np.isfinite(f) or f != int(f):
        raise user_error(f"Point # must be a whole number, got {value!r}.", "Bad input")
    if f < 0:
        return None
    if f >= m:
        raise user_error(f"Point # must be from 0 to {m - 1} (or −1 for none), got {int(f)}.", "Bad input")
    return int(f)


def _hover(meta: dict, i: int) -> str:
    parts = [f"#{i}"]
    if "task" in meta:
        parts.append(str(meta["task"][i]))
    if "episode_id" in meta:
        parts.append(str(meta["episode_id"][i]))
    if "t" in meta:
        parts.append(f"t={int(meta['t'][i])}" + (f"→{int(meta['t'][i]) + int(meta['k'][i])}" if "k" in meta else ""))
    if "success" in meta:
        parts.append(_text(meta["success"][i]))
    return " · ".join(parts)


def _mine_text(pair, mine) -> str:
    if mine is None:
        return "Encode a pair in **Latent actions** to see where it lands (★)."
    return f"★ {pair.label} at ({mine[0]:.2f}, {mine[1]:.2f})."


def _point(ctx, pack, meta: dict, i: int, n_train: int):
    """Point ``i``'s frames: before, after and the after-frame decoded from its latent action."""
    desc = ("example-episode pair " if i >= n_train else "") + _hover(meta, i)
    if not {"episode_id", "t", "k"} <= set(meta):
        return None, f"Point {desc}: the map records no episode/time, so its frames cannot be shown."
    ep_id, t, k = str(meta["episode_id"][i]), int(meta["t"][i]), int(meta["k"][i])
    if ep_id not in ctx.episodes.ids:
        return None, (f"Point {desc}: it comes from the training episode `{ep_id}`, which is not among the example "
                      "episodes shipped with the app, so its frames cannot be shown. The ◆ points are example-episode "
                      "pairs: click one of those to see its frames.")
    ep = ctx.episodes.get(ep_id)
    if t + k > ep.num_steps:
        return None, f"Point {desc}: t + k is past the end of the example episode."
    z, _ = ctx.features.encode(pack.encoder, ep.frames[[t, t + k]])
    u = map_latent(pack, i) if i < n_train else pack.autoencoder.encode(z[:1], z[1:])
    _, decoded = apply_latent(pack, z[:1], u)
    picture = grid([[ep.frames[t], ep.frames[t + k], decoded[0]]], [], ["before", "after", "decoded"], tile=150)
    return picture, f"Point {desc}."
