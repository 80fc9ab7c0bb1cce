"""Tab 2, Latent actions (``/encode_pair``, ``/transfer``): what a residual latent action holds."""
from __future__ import annotations

import gradio as gr
import numpy as np

from app.episodes import showcase_fit
from app.errors import guarded
from app.frames import EPISODE, frame_picker, pair_picker, pick_frame, pick_pair
from app.images import grid, heatmap_overlay, upscale
from app.latents import apply_latent, encode_pair, latent_image, patch_error, project, standardise
from app.packs import require_pack
from app.state import Pair
from app.widgets import figure
from rla.metrics import token_l1

INTRO = """A **residual latent action** is a small code `u` (Q tokens × C numbers) that the RLA autoencoder
squeezes out of the *difference* between the feature tokens of two frames. Its decoder rebuilds the
later frame from the earlier one plus `u` in a single pass. Encode a pair below, check the
reconstruction, then apply the same latent action to a different frame: does the motion transfer?"""


def _explained(l1_rec: float, l1_copy: float) -> str:
    if l1_copy <= 1e-9:
        return " · the two frames are identical"
    share = 1 - l1_rec / l1_copy
    if share < 0:
        return " · worse than copying *before*: this pack's autoencoder is undertrained for this pair"
    return f" · {100 * share:.0f}% of the change explained"


def _label(picked, other) -> str:
    if picked.episode is None:
        return "your uploaded pair"
    ep_id, task = str(picked.episode.episode_id), picked.episode.task
    return f"{ep_id if ep_id.startswith(task) else f'{task} · {ep_id}'} · t={picked.t}→{other.t}"


def build(ctx) -> None:
    gr.Markdown(INTRO)
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=330):
            shows = ctx.episodes.showcase(2, *showcase_fit(ctx.default_info))
            pair = pair_picker(ctx.episodes, key="la", default_episode=(shows or [None])[0], default_k=10)
            ctx.on_load.append(pair.fit)
            encode_btn = gr.Button("Encode latent action", variant="primary", elem_id="encode-btn")
        with gr.Column(scale=6):
            strip = figure("Reconstruction", "before · after · decoded from (before, u) · error per patch", elem_id="la-strip")
            with gr.Row():
                code = figure("Latent action u", "rows: Q tokens, columns: C dims; blue < 0 < red, in training std",
                              height=200, elem_id="la-code")
                stats = gr.Markdown(label="Numbers")
    gr.Markdown("### Apply the latent action to another frame")
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=330):
            other = shows[-1] if shows else None
            target = frame_picker(ctx.episodes, "Target frame", key="la-target", default_episode=other,
                                  default_t=ctx.episodes.busiest(other, 10) if other else 0, image_height=200)
            ctx.on_load.append(target.fit)
            transfer_btn = gr.Button("Apply latent action", variant="primary", elem_id="transfer-btn")
        with gr.Column(scale=6):
            transfer_strip = figure("Transferred", "the source pair, and the target decoded with its u", elem_id="la-transfer")
            transfer_stats = gr.Markdown(label="Transfer")

    @guarded("encode the latent action")
    def encode(pack_key, source, episode, t, k, image_a, image_b):
        pack = require_pack(pack_key)
        before, after = pick_pair(ctx.episodes, pack.encoder.image_size, source, episode, t, k, image_a, image_b)
        enc = encode_pair(pack, ctx.features, before.frame, after.frame)
        z_rec, rec = apply_latent(pack, enc["z_a"], enc["u"])
        err = patch_error(pack, z_rec, enc["z_b"])
        moved = patch_error(pack, enc["z_a"], enc["z_b"])
        vmax = max(float(moved.max()), float(err.max()), 1e-6)
        tiles = [before.frame, after.frame, rec[0], heatmap_overlay(upscale(after.frame, 192), err, vmax)]
        picture = grid([tiles], [], ["before", "after", "reconstruction", "error per patch"])
        xy = project(pack, enc["u"])
        q, c = enc["u"].shape[1:]
        n, d = enc["z_a"].shape[1:]
        l1_rec = token_l1(z_rec, enc["z_b"]).item()
        l1_copy = token_l1(enc["z_a"], enc["z_b"]).item()
        lines = [
            f"**Compression** · {n}×{d} = {n * d:,} token numbers per frame → u has {q}×{c} = {q * c} numbers ({n * d / (q * c):.0f}× smaller)",
            f"**Reconstruction** token L1 **{l1_rec:.4f}** · if nothing moved (copy *before*): {l1_copy:.4f}"
            + _explained(l1_rec, l1_copy),
            f"**‖u‖** {float(enc['u'].norm()):.2f} · in training-std units {float(standardise(pack, enc['u']).norm()):.2f}"
            f" (a typical training latent: about {np.sqrt(q * c):.0f})",
            f"**On the latent map** at ({xy[0, 0]:.2f}, {xy[0, 1]:.2f}): see the *Latent space* tab" if xy is not None
            else "This pack has no latent map.",
        ]
        state = Pair(pack_key, enc["u"][0].numpy(), _label(before, after), None if xy is None else xy[0])
        return state, picture, latent_image(pack, enc["u"]), "\n\n".join(lines)

    @guarded("apply the latent action")
    def transfer(pack_key, source, episode, t, k, image_a, image_b, target_source, target_episode, target_t, target_image):
        pack = require_pack(pack_key)
        before, after = pick_pair(ctx.episodes, pack.encoder.image_size, source, episode, t, k, image_a, image_b)
        tgt = pick_frame(ctx.episodes, pack.encoder.image_size, target_source, target_episode, target_t, target_image)
        enc = encode_pair(pack, ctx.features, before.frame, after.frame)
        z_c, _ = ctx.features.encode(pack.encoder, tgt.frame[None])
        z_out, out = apply_latent(pack, z_c, enc["u"])
        horizon = (after.t - before.t) if before.episode is not None else None
        real = None
        if tgt.episode is not None and horizon is not None and tgt.t + horizon <= tgt.episode.num_steps:
            real = tgt.episode.frames[tgt.t + horizon]
        blank = np.full_like(tgt.frame, 255)
        rows = [[before.frame, after.frame, blank], [tgt.frame, out[0], real]]
        picture = grid(rows, ["source pair", "applied"], ["before / target", "after / target + u", "real, k steps later"])
        lines = [f"Applied the latent action of **{_label(before, after)}** to the target frame."]
        if real is not None:
            z_real, _ = ctx.features.encode(pack.encoder, real[None])
            lines.append(f"Token L1 to the real frame {horizon} steps later: **{token_l1(z_out, z_real).item():.4f}** "
                         f"(copying the target: {token_l1(z_c, z_real).item():.4f}). The real frame follows the "
                         "episode's own actions, which need not match the source pair's motion.")
        elif tgt.episode is None or horizon is None:
            lines.append("No real frame to compare with: the pair or the target was uploaded.")
        else:
            lines.append("No real frame to compare with: the target episode ends before t + k.")
        return picture, "\n\n".join(lines)

    encode_btn.click(encode, [ctx.pack_state, *pair.inputs], [ctx.pair_state, strip, code, stats], api_name="encode_pair")
    if len(ctx.episodes):
        ids = ctx.episodes.showcase(3, *showcase_fit(ctx.default_info))
        rows = [[EPISODE, i, ctx.episodes.busiest(i, 10), 10] for i in ids]
        ex = gr.Examples(examples=rows, inputs=[pair.source, pair.episode, pair.t, pair.k],
                         example_labels=[f"{ctx.episodes.name(r[1])}, t={r[2]} → {r[2] + r[3]}" for r in rows],
                         label="Examples: one click encodes a pair")
        ex.load_input_event.then(encode, [ctx.pack_state, *pair.inputs], [ctx.pair_state, strip, code, stats],
                                 api_visibility="private")
    transfer_btn.click(transfer, [ctx.pack_state, *pair.inputs, *target.inputs], [transfer_strip, transfer_stats], api_name="transfer")
