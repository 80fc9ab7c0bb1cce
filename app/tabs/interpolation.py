"""Tab 3, Interpolation (``/interpolate``): walk through latent-action space and decode every point."""
from __future__ import annotations

import gradio as gr
import numpy as np
import torch

from app.episodes import check_index, check_number, showcase_fit
from app.errors import guarded, user_error
from app.frames import EPISODE, pair_picker, pick_pair
from app.images import grid, upscale, write_animation
from app.latents import apply_latent, encode_pair
from app.packs import require_pack
from app.plots import empty_figure, matched_steps
from app.widgets import figure, plot_panel
from rla.interpolate import alphas as make_alphas
from rla.interpolate import interpolate, latent_noise, match_frames, rank_correlation
from rla.labels import PATH_LABELS
from rla.topology import null_paths

NOISE, BETWEEN = "Noise → latent action", "Latent action A → latent action B"
PATH_CHOICES = [("linear", "linear"), ("spherical (slerp)", "spherical")]
INTRO = """The paper's surprising finding: although the autoencoder only ever saw frame *pairs*, its latent space
is **ordered in time**. Decode points on the line from random noise (α = 0) to the latent action of a pair
(α = 1) and the frames look like the real frames *between* the two. For example-episode pairs the real
in-between frames are matched to each decoded point (closest in token space), so you can check the claim —
against two straight lines that know nothing of time (dashed on the plot): the line in token space from
frame t to frame t + k, and the line between the two decoded ends. Only a path that beats both says more than its endpoints.
On the default pack's test split it does not beat the token-space line (`docs/properties.md`): one pair here is an anecdote."""


def build(ctx) -> None:
    gr.Markdown(INTRO)
    has_eps = len(ctx.episodes) > 0
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=330):
            mode = gr.Radio([NOISE, BETWEEN], value=NOISE, label="Interpolate")
            path = gr.Radio(PATH_CHOICES, value="linear", label="Path",
                            info="spherical keeps the norm of Gaussian-like endpoints; linear is the paper's choice")
            first = (ctx.episodes.showcase(1, *showcase_fit(ctx.default_info)) or [None])[0]
            pair = pair_picker(ctx.episodes, key="ip", default_episode=first, default_k=10, image_height=160)
            ctx.on_load.append(pair.fit)
            with gr.Group(visible=False) as second:
                gr.Markdown("**Latent action B** (decoded on frame *before* of A)")
                ep2 = gr.Dropdown(ctx.episodes.choices(), value=ctx.episodes.first(), label="Episode of B", interactive=has_eps)
                with gr.Row():
                    t2 = gr.Slider(0, max(ctx.episodes.max_steps - 1, 1), value=0, step=1, label="B: t")
                    k2 = gr.Slider(1, max(ctx.episodes.max_steps, 2), value=5, step=1, label="B: k")
            with gr.Row():
                points = gr.Slider(3, 24, value=9, step=1, label="Points on the path")
                seed = gr.Number(value=0, precision=0, minimum=0, label="Noise seed")
            alpha = gr.Slider(0, 1, value=0.5, step=0.05, label="α (shown large below)")
            run_btn = gr.Button("Interpolate", variant="primary", elem_id="interpolate-btn")
        with gr.Column(scale=6):
            strip = figure("Path", "decoded points (top) and the closest real frame (bottom)", elem_id="ip-strip")
            with gr.Row():
                animation = figure("Animation", "there and back", height=256, fmt="gif", elem_id="ip-animation")
                at_alpha = figure("At α", "decoded · closest real frame", height=256, scale=2, elem_id="ip-alpha")
            plot = plot_panel("Matched steps", "α against the time step of the closest real frame")
            stats = gr.Markdown(label="Summary")
    mode.change(lambda m: gr.update(visible=m == BETWEEN), mode, second, api_visibility="private", show_progress="hidden")

    def fit_b(episode_id):
        n = ctx.episodes.get(episode_id).num_steps if episode_id in ctx.episodes.ids else 200
        return gr.update(maximum=max(n - 1, 1)), gr.update(maximum=max(n, 2))

    ep2.change(fit_b, ep2, [t2, k2], api_visibility="private", show_progress="hidden")

    @guarded("interpolate")
    def run(pack_key, mode, path, source, episode, t, k, image_a, image_b, episode_b, t_b, k_b, points, seed, alpha):
        pack = require_pack(pack_key)
        n = check_index(points, 64, "number of points")
        seed = check_index(seed, 2**31 - 1, "seed")
        alpha = check_number(alpha, 0.0, 1.0, "α")
        if n < 2:
            raise user_error("Use at least 2 points on the path.", "Bad input")
        if path not in ("linear", "spherical"):
            raise user_error(f"Unknown path {path!r}; choose linear or spherical.", "Bad input")
        before, after = pick_pair(ctx.episodes, pack.encoder.image_size, source, episode, t, k, image_a, image_b)
        enc = encode_pair(pack, ctx.features, before.frame, after.frame)
        u = enc["u"][0]  # (Q, C)
        if mode == NOISE:
            gen = torch.Generator().manual_seed(seed)
            start = latent_noise(u, mean=pack.dynamics.u_mean, std=pack.dynamics.u_std, generator=gen)
            start_name = "noise"
        elif mode == BETWEEN:
            b0, b1 = pick_pair(ctx.episodes, pack.encoder.image_size, EPISODE, episode_b, t_b, k_b, None, None)
            start, u = u, encode_pair(pack, ctx.features, b0.frame, b1.frame)["u"][0]  # α = 0 is A, α = 1 is B
            start_name = "A"
        else:
            raise user_error(f"Unknown mode {mode!r}.", "Bad input")
        al = make_alphas(n)
        pts = interpolate(start, u, torch.cat([al, torch.tensor([alpha])]), path)  # (n + 1, Q, C)
        z_dec, frames = apply_latent(pack, enc["z_a"], pts)
        real, offset = _real_frames(ctx, before, after, mode, episode_b, t_b, k_b)
        matched, z_real = None, None
        if real is not None:
            z_real, _ = ctx.features.encode(pack.encoder, real)
            idx, _ = match_frames(z_dec, z_real)
            matched = idx.numpy()
        cols = [f"α={a:.2f}" if n <= 8 else f"{a:.2f}" for a in al.tolist()]
        tile = 128 if n <= 8 else 96 if n <= 14 else 72
        rows, labels = [list(frames[:n])], ["decoded"]
        if matched is not None:
            rows.append([real[i] for i in matched[:n]])
            labels.append("closest real")
            if n <= 6:
                cols = [f"{c} · t={offset + int(i)}" for c, i in zip(cols, matched[:n])]
        picture = grid(rows, labels, cols, tile=tile)
        big = [upscale(frames[n], 256)] + ([upscale(real[matched[n]], 256)] if matched is not None else [])
        labels = [f"decoded, α={alpha:.2f}"] + ([f"closest real: t={offset + int(matched[n])}"] if matched is not None else [])
        at_picture = grid([big], [], labels, tile=256)
        gif = write_animation(list(frames[:n]))
        if matched is not None:
            steps = offset + matched[:n]
            nulls = {PATH_LABELS[name]: offset + match_frames(line, z_real)[0].numpy()
                     for name, line in null_paths(z_real[0], z_real[-1], z_dec[0], z_dec[n - 1], al).items()}
            fig = matched_steps(al.numpy(), steps, len(real) - 1, offset, nulls=nulls)
            text = (f"Path from **{start_name}** (α = 0) to **{'B' if mode == BETWEEN else 'the latent action'}** (α = 1), {path}. "
                    + rho_summary(al.numpy(), steps, nulls))
        else:
            fig = empty_figure("Matching needs the real in-between frames: pick an example-episode pair")
            text = f"Path from **{start_name}** (α = 0), {path}. Uploaded pairs have no real in-between frames to match."
        return picture, gif, at_picture, fig, text

    inputs = [ctx.pack_state, mode, path, *pair.inputs, ep2, t2, k2, points, seed, alpha]
    outputs = [strip, animation, at_alpha, plot, stats]
    run_btn.click(run, inputs, outputs, api_name="interpolate")
    alpha.release(run, inputs, outputs, api_visibility="private", show_progress="minimal")
    if has_eps:
        ids = ctx.episodes.showcase(2, *showcase_fit(ctx.default_info))
        rows = [[NOISE, "linear", EPISODE, i, ctx.episodes.busiest(i, 10), 10] for i in ids]
        rows.append([NOISE, "spherical", EPISODE, ids[0], ctx.episodes.busiest(ids[0], 15), 15])
        labels = [f"noise → {ctx.episodes.name(r[3])} t={r[4]}→{r[4] + r[5]}, {r[1]}" for r in rows]
        ex = gr.Examples(examples=rows, inputs=[mode, path, pair.source, pair.episode, pair.t, pair.k], example_labels=labels,
                         label="Examples: one click interpolates")
        ex.load_input_event.then(run, inputs, outputs, api_visibility="private")


def _rho(alpha, steps) -> float:
    return rank_correlation(alpha[1:-1], steps[1:-1])  # interior points only


def _fmt(rho: float) -> str:
    return f"{rho:.2f}" if np.isfinite(rho) else "undefined"


def rho_summary(alpha: np.ndarray, steps: np.ndarray, nulls: dict) -> str:
    """ρ(α, matched step) on the interior points for the decoded path and each null, and what it means."""
    rho = _rho(alpha, steps)
    others = {name: _rho(alpha, s) for name, s in nulls.items()}
    parts = " · ".join(f"{name}: ρ = {_fmt(r)}" for name, r in others.items())
    beats = np.isfinite(rho) and all(rho > (r if np.isfinite(r) else 0.0) for r in others.values())  # undefined = no order
    return (f"Rank correlation between α and the matched time step on the {max(len(alpha) - 2, 0)} interior points "
            f"(the endpoints are left out: they decode close to the pair's own frames and would pin ρ): **RLA ρ = {_fmt(rho)}** · {parts}. "
            + ("On this pair the decoded path follows time more closely than both straight lines. " if beats else
               "On this pair the decoded path does **not** order time better than a straight line that knows nothing of time. ")
            + "One pair is an anecdote: the test-split numbers with CIs are in `docs/properties.md`.")


def _real_frames(ctx, before, after, mode, episode_b, t_b, k_b):
    """Real frames the decoded points are matched against, and the time step of the first one."""
    if before.episode is None:
        return None, 0
    end = after.t
    if mode == BETWEEN and str(episode_b) == str(before.episode.episode_id) and int(t_b) == before.t:
        end = max(end, before.t + int(k_b))  # A and B start at the same frame: span both horizons
    end = min(end, before.episode.num_steps)
    return before.episode.frames[before.t: end + 1], before.t
