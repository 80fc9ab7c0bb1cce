"""Tab 2, Latent actions (``/encode_pair``, ``/transfer``): what a residual latent action holds."""
from __future__ import annotations

import functools

import gradio as gr
import numpy as np

from app.episodes import showcase_fit
from app.errors import guarded
from app.frames import EPISODE, frame_picker, pair_picker, pick_frame, pick_pair
from app.images import grid, heatmap_overlay, upscale
from app.latents import apply_latent, encode_pair, latent_image, patch_error, project
from app.packs import require_pack
from app.state import Pair
from app.widgets import figure
from rla.data.episodes import DatasetError
from rla.data.states import load_states
from rla.metrics import token_l1
from rla.pack import PackError, resolve_pack
from rla.probes import LinearProbes

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


PROBE_ROWS = {"tcp": "end-effector displacement (cm, x y z)", "object": "object displacement (cm, x y z)"}


def pack_probes(pack_key: str) -> tuple[LinearProbes | None, str]:
    """The pack's fitted probes (``probes.npz``, written by ``training.probe``), or ``None`` and why not."""
    try:
        path = resolve_pack(pack_key) / "probes.npz"
    except PackError as err:
        return None, f"No probes: {err}"
    if not path.is_file():
        return None, ("**Probes**: this pack has no `probes.npz`, so nothing is read off `u`. Fit them with "
                      "`python -m training.probe --pack PACK --data DATA --out FILE` (or `training.properties`).")
    return _load_probes(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _load_probes(path: str, mtime_ns: int) -> tuple[LinearProbes | None, str]:  # keyed on mtime: a refit file is reread
    try:
        return LinearProbes.load(path), ""
    except ValueError as err:
        return None, f"**Probes**: could not read them: {err}"


def _vec(v: np.ndarray, scale: float = 1.0, digits: int = 1) -> str:
    return " ".join(f"{x * scale:+.{digits}f}" for x in np.ravel(v))


def probe_table(probes: LinearProbes, u: np.ndarray, episode, t: int | None, k: int | None) -> str:
    """Markdown: what each probe reads off ``u (Q, C)`` beside the recorded value (when the pair is from an episode)."""
    r2 = probes.info.get("r2", {})
    head = (f"**Read off u by linear probes** (ridge, fitted on test pairs k = {probes.k} apart; held-out R² by episode: "
            + ", ".join(f"{name} {r2[name]:.2f}" for name in probes.targets if name in r2) + "; see `docs/properties.md`)")
    if k is not None and k != probes.k:
        return f"{head}\n\nThe probes read pairs {probes.k} steps apart: set k = {probes.k} to read this pair."
    read = probes.read(u)
    truth: dict = {}
    note = "" if episode is not None else f"\n\nUploaded pair: nothing recorded to compare with (read as if k = {probes.k})."
    if episode is not None:
        truth["action"] = np.asarray(episode.actions[t:t + k])
        try:
            states = load_states(episode)
            truth |= {name: states.displacement(name, t, t + k) for name in PROBE_ROWS}
        except DatasetError:
            note = "\n\nThis episode has no recorded simulator states: only the actions are compared."
    rows = ["| | read off u | recorded |", "|---|---|---|"]
    for name, label in PROBE_ROWS.items():
        if name in read:
            rows.append(f"| {label} | {_vec(read[name], 100)} | {_vec(truth[name], 100) if name in truth else '—'} |")
    if "action" in read:
        a_hat = read["action"]  # (K, A)
        rows.append(f"| action chunk, mean over the {len(a_hat)} steps | {_vec(a_hat.mean(0), digits=2)} | "
                    f"{_vec(truth['action'].mean(0), digits=2) if 'action' in truth else '—'} |")
        if "action" in truth:
            err = float(np.abs(a_hat - truth["action"]).mean())
            rows.append(f"| action chunk, mean abs error per step and dim | {err:.2f} | "
                        f"reading all-zero actions: {float(np.abs(truth['action']).mean()):.2f} |")
    return head + "\n\n" + "\n".join(rows) + note


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
            probe_view = gr.Markdown(label="Read off u", elem_id="la-probes")
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
            f"**‖u‖** {float(enc['u'].norm()):.2f} · in training-std units {float(pack.dynamics.standardize(enc['u']).norm()):.2f}"
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

    @guarded("read the probes")
    def read_probes(pack_key, source, episode, t, k, image_a, image_b):
        pack = require_pack(pack_key)
        before, after = pick_pair(ctx.episodes, pack.encoder.image_size, source, episode, t, k, image_a, image_b)
        probes, why = pack_probes(pack_key)
        if probes is None:
            return why
        u = encode_pair(pack, ctx.features, before.frame, after.frame)["u"][0].numpy()  # (Q, C)
        if probes.targets[next(iter(probes.targets))].x_mean.size != u.size:
            return f"This pack's probes.npz was fitted on latent actions of another size ({u.size} numbers here): refit it with `training.probe`."
        horizon = None if before.episode is None else after.t - before.t
        return probe_table(probes, u, before.episode, before.t, horizon)

    encoded = encode_btn.click(encode, [ctx.pack_state, *pair.inputs], [ctx.pair_state, strip, code, stats], api_name="encode_pair")
    encoded.success(read_probes, [ctx.pack_state, *pair.inputs], [probe_view], api_name="read_probes")
    if len(ctx.episodes):
        ids = ctx.episodes.showcase(3, *showcase_fit(ctx.default_info))
        rows = [[EPISODE, i, ctx.episodes.busiest(i, 10), 10] for i in ids]
        ex = gr.Examples(examples=rows, inputs=[pair.source, pair.episode, pair.t, pair.k],
                         example_labels=[f"{ctx.episodes.name(r[1])}, t={r[2]} → {r[2] + r[3]}" for r in rows],
                         label="Examples: one click encodes a pair")
        ex.load_input_event.then(encode, [ctx.pack_state, *pair.inputs], [ctx.pair_state, strip, code, stats],
                                 api_visibility="private").success(read_probes, [ctx.pack_state, *pair.inputs], [probe_view],
                                                                api_visibility="private")
    transfer_btn.click(transfer, [ctx.pack_state, *pair.inputs, *target.inputs], [transfer_strip, transfer_stats], api_name="transfer")
