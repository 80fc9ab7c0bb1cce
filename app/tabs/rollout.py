"""Tab 1, World model (``/rollout``, ``/undo``, ``/reset``, ``/export``): act in the learned world, chunk by chunk.

The tab opens on a rollout of the first example episode, predicted once when the app starts
(:func:`showcase`); the keyboard drives it like a game (:data:`KEYS_JS`, passed to ``launch(js=...)``).
"""
from __future__ import annotations

import copy
import logging

import gradio as gr

from app.actions import action_sliders, action_vector
from app.episodes import compatible, showcase_fit
from app.errors import guarded, user_error
from app.frames import EPISODE, frame_picker, pick_frame
from app.packs import PACKS, require_pack
from app.predict import check_settings, extend, recorded_chunks, start_rollout, sync_baselines
from app.rollout_view import empty_view, export, render, shown_methods
from app.widgets import figure, plot_panel

log = logging.getLogger("rla.app")

MAX_CHUNKS = 40  # per rollout: bounds the memory a session holds (tokens and frames per chunk and method)
INTRO = """Start from a frame, choose an action (held for one chunk of steps), and let the world model
imagine what the camera sees next: it samples a **latent action** by flow matching, decodes the
future tokens in one pass, and turns them back into pixels. Roll out several chunks to see errors
compound; compare with the baselines; draw several samples to see where the model is unsure."""
SHOWCASE_CHUNKS = 3  # chunks of recorded actions in the rollout the tab opens with

# The keys, as (key, what it does); movement keys hold ±(slider maximum) on one axis for one chunk.
MOVES = (("a", "d"), ("s", "w"), ("q", "e"))  # (minus, plus) for the first three non-gripper action sliders
KEYS_JS = """
() => {
  const MOVES = [['a', 'd'], ['s', 'w'], ['q', 'e']];
  const slider = (i) => document.querySelector(`#action-${i} input[type=range]`);
  const visible = (el) => el && el.offsetParent !== null;
  const axes = () => {  // visible action sliders: the gripper (by its label) and the others, in order
    const out = {move: [], grip: null};
    for (let i = 0; i < 8; i++) {
      const box = document.querySelector(`#action-${i}`);
      if (!visible(box) || !slider(i)) continue;
      if (/gripper/i.test(box.textContent) && out.grip === null) out.grip = i; else out.move.push(i);
    }
    return out;
  };
  const set = (i, v) => {
    const r = slider(i);
    v = Math.min(parseFloat(r.max), Math.max(parseFloat(r.min), v));
    r.value = v;
    r.dispatchEvent(new Event('input', {bubbles: true}));
    r.dispatchEvent(new Event('change', {bubbles: true}));
  };
  const click = (id) => document.querySelector(`#${id}`)?.click();
  const predict = () => {
    const rec = document.querySelector('#wm-recorded input[type=checkbox]');
    if (rec && rec.checked) rec.click();  // keys play your actions, not the recorded ones
    setTimeout(() => click('predict-btn'), 0);  // after the sliders' input events are handled
  };
  document.addEventListener('keydown', (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || !visible(document.querySelector('#predict-btn'))) return;
    const t = ev.target;
    const typing = t && (t.isContentEditable || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' ||
      (t.tagName === 'INPUT' && !['range', 'checkbox', 'radio', 'button'].includes(t.type)));
    if (typing) return;
    const key = ev.key.toLowerCase();
    const ax = axes();
    let done = true;
    const m = MOVES.findIndex((pair) => pair.includes(key));
    if (m >= 0 && m < ax.move.length) {
      ax.move.forEach((i, j) => { if (j < 3) set(i, 0); });
      const r = slider(ax.move[m]);
      set(ax.move[m], key === MOVES[m][1] ? parseFloat(r.max) : parseFloat(r.min));
      predict();
    } else if (key === 'g' && ax.grip !== null && !ev.repeat) {
      const r = slider(ax.grip);
      set(ax.grip, parseFloat(r.value) > 0 ? parseFloat(r.min) : parseFloat(r.max));
      predict();
    } else if (key === ' ' || key === 'enter') {
      if (t && t.tagName === 'BUTTON') return;  // the button's own Space/Enter
      predict();
    } else if ((key === 'z' || key === 'backspace') && !ev.repeat) {
      click('undo-btn');
    } else if (key === 'r' && !ev.repeat) {
      click('reset-btn');
    } else {
      done = false;
    }
    if (done) ev.preventDefault();
  });
}
"""


def keys_help(info) -> str:
    """The key legend for a pack's action names."""
    names = list(info.action_names) if info else ["action 1", "action 2", "action 3"]
    moves = [n for n in names if n != "gripper"][:3]
    parts = [f"`{lo.upper()}`/`{hi.upper()}` −/+{n}" for (lo, hi), n in zip(MOVES, moves)]
    if "gripper" in names:
        parts.append("`G` open/close the gripper")
    return ("**Keyboard play** (click the page outside a text box first): " + " · ".join(parts) +
            " — each predicts one chunk with that action held · `Space` predict again with the sliders · "
            "`Z` undo · `R` reset. Hold a key to keep going.")


def build(ctx) -> dict:
    """The tab's widgets and events; returns the widgets other parts of the UI update."""
    info = ctx.default_info
    steps_default = ctx.default_steps
    gr.Markdown(INTRO)
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=330):
            start = (ctx.episodes.showcase(1, *showcase_fit(info)) or [None])[0]
            picker = frame_picker(ctx.episodes, "Start frame", key="wm", default_episode=start, image_height=230)
            ctx.on_load.append(picker.fit)
            with gr.Group():
                sliders = action_sliders(info)
                recorded = gr.Checkbox(value=False, label="Use the recorded actions (example episodes)", elem_id="wm-recorded",
                                       info="Replays the episode's own actions, so the real frames are the ground truth.")
            with gr.Row():
                predict_btn = gr.Button("Predict chunk", variant="primary", elem_id="predict-btn")
                rollout_btn = gr.Button("Roll out", variant="secondary", elem_id="rollout-btn")
            chunks = gr.Slider(1, 10, value=3, step=1, label="Chunks per roll-out",
                               info=f"each chunk holds the action for {info.chunk if info else 'K'} steps")
            with gr.Row():
                undo_btn = gr.Button("Undo", size="sm", elem_id="undo-btn")
                reset_btn = gr.Button("Reset", size="sm", elem_id="reset-btn")
                export_btn = gr.Button("Export video", size="sm", elem_id="export-btn")
            gr.Markdown(keys_help(info), elem_id="wm-keys")
            downloads = gr.File(label="Export: MP4 and GIF (predicted, real and baseline frames side by side, actions below) "
                                      "and the actions as JSON", file_count="multiple", interactive=False, elem_id="wm-downloads",
                                visible=False)  # shown by the first export
            with gr.Accordion("Sampling and baselines", open=True):
                steps = gr.Slider(1, 50, value=steps_default, step=1, label="Euler steps",
                                  info="flow-matching integration steps: more is slower and usually sharper")
                samples = gr.Slider(1, 16, value=1, step=1, label="Samples", elem_id="wm-samples",
                                    info="several samples show how unsure the model is (per-pixel spread)")
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
                baselines = gr.Checkbox(value=False, label="Compare with the baselines",
                                        info="direct regression (DINO-WM style) and flow matching in token space, same input")
        with gr.Column(scale=7):
            status = gr.Markdown("Pick a start frame and press **Predict chunk**.", label="Status", elem_id="wm-status")
            with gr.Row():
                latest = figure("Predicted frame", "RLA-WM, after the last chunk", height=260, elem_id="wm-latest")
                real = figure("Real frame", "recorded, at the same step", height=260, elem_id="wm-real")
                spread = figure("Spread over samples", "per-pixel std; bright = unsure (needs Samples ≥ 2)", height=260,
                                elem_id="wm-spread")
            filmstrip = figure("Filmstrip", "the start frame, then the end of each chunk", elem_id="wm-filmstrip")
            change = figure("What changed", "in the last chunk, per patch, on one colour scale: predicted by each model, and real",
                            elem_id="wm-change")
            errors = plot_panel("Error per chunk", "against the real frames, for example-episode starts")
            latency = gr.Markdown(label="Latency", elem_id="wm-latency")

    state = gr.State(None, time_to_live=2 * 3600)  # a rollout idle for two hours is dropped
    outputs = [state, latest, real, filmstrip, change, spread, errors, latency, status]
    inputs = [ctx.pack_state, state, *picker.inputs, *sliders, recorded, chunks, steps, samples, baselines, seed]

    def run(n_chunks):
        @guarded("predict the next chunk")
        def rollout(pack_key, state, source, episode, frame, image, action_1, action_2, action_3, action_4, action_5,
                    action_6, action_7, action_8, recorded, chunks, steps, samples, baselines, seed):
            pack = require_pack(pack_key)
            chunks, steps, samples, seed = check_settings(n_chunks or chunks, steps, samples, seed)
            a = action_vector([action_1, action_2, action_3, action_4, action_5, action_6, action_7, action_8], pack.info)
            picked = pick_frame(ctx.episodes, pack.encoder.image_size, source, episode, frame, image)
            ro = state
            if ro is None or ro.start_key != picked.key or ro.pack_key != pack_key:
                ro = start_rollout(pack, pack_key, ctx.features, picked)
            if ro.num_chunks + chunks > MAX_CHUNKS:
                raise user_error(f"A rollout holds at most {MAX_CHUNKS} chunks; press Undo or Reset to go on.", "Rollout full")
            use_recorded = bool(recorded) and picked.episode is not None
            if recorded and picked.episode is None:
                gr.Warning("Recorded actions exist only for example episodes; using the sliders.")
            elif use_recorded and not compatible(picked.episode, pack):
                gr.Warning(f"This episode's actions ({picked.episode.actions.shape[1]}-D, {_robot(picked.episode)}) do not fit "
                           f"this pack ({pack.info.action_dim}-D {pack.info.control_mode}); using the sliders.")
                use_recorded = False
            if use_recorded:
                todo = recorded_chunks(picked.episode, ro.t0, ro.step, ro.chunk, chunks)
                if len(todo) < chunks:
                    gr.Warning(f"The episode's recorded actions end at step {picked.episode.num_steps}: predicted {len(todo)} of "
                               f"{chunks} chunks. Untick “Use the recorded actions” to go on with the sliders.")
            else:
                todo = [a[None].repeat(ro.chunk, 0)] * chunks
            extend(ro, pack, todo, use_recorded, steps=steps, samples=samples, seed=seed, baselines=bool(baselines))
            return (ro, *render(ro, pack, ctx.features, ctx.episodes, bool(baselines)).outputs())

        return rollout

    # every event that changes the rollout runs one at a time (one group): two calls sent at once by one visitor then
    # extend the rollout one after the other, instead of each extending its own copy and the last one to end winning
    one_at_a_time = {"concurrency_id": "rollout_state", "concurrency_limit": 1}
    predict_btn.click(run(1), inputs, outputs, api_name="predict_chunk", api_visibility="undocumented",
                      trigger_mode="once", **one_at_a_time)  # keys held down click it repeatedly: drop clicks while one is running
    rollout_btn.click(run(None), inputs, outputs, api_name="rollout", **one_at_a_time)

    @guarded("undo")
    def undo(pack_key, state, baselines):
        if state is None or not state.undo():
            gr.Warning("Nothing to undo.")
        return _show(pack_key, state, baselines)

    @guarded("reset")
    def reset(pack_key, state, baselines):
        if state is not None:
            state.reset()
        return _show(pack_key, state, baselines)

    @guarded("compare with the baselines")
    def toggle(pack_key, state, baselines, steps, seed):
        if state is not None and baselines and state.num_chunks:
            pack = require_pack(pack_key)
            _, steps, _, seed = check_settings(1, steps, 1, seed)
            if not pack.baselines:
                gr.Warning("This pack has no baselines to compare with.")
            state.timings.update(sync_baselines(state, pack, steps=steps, seed=seed))
        return _show(pack_key, state, baselines)

    def _show(pack_key, state, baselines):
        if state is None:
            return (None, *empty_view("Pick a start frame and press **Predict chunk**.").outputs())
        pack = require_pack(pack_key)
        return (state, *render(state, pack, ctx.features, ctx.episodes, bool(baselines)).outputs())

    @guarded("export the rollout")
    def export_files(pack_key, state, baselines):
        if state is None or not state.num_chunks:
            raise user_error("Predict at least one chunk first, then export.", "Nothing to export")
        pack = require_pack(pack_key)
        return export(state, pack, ctx.episodes, shown_methods(state, pack, bool(baselines)))

    undo_btn.click(undo, [ctx.pack_state, state, baselines], outputs, api_name="undo", **one_at_a_time)
    reset_btn.click(reset, [ctx.pack_state, state, baselines], outputs, api_name="reset", **one_at_a_time)
    baselines.change(toggle, [ctx.pack_state, state, baselines, steps, seed], outputs, api_visibility="private", **one_at_a_time)
    export_btn.click(export_files, [ctx.pack_state, state, baselines], downloads, api_name="export", concurrency_limit=2).success(
        lambda: gr.update(visible=True), None, downloads, api_visibility="private", queue=False)  # API callers get plain paths

    opening = showcase(ctx.pack_state.value, ctx, start)
    if opening is not None:  # each page opens on the rollout predicted at start-up; its session gets its own copy
        ctx.on_load.append((lambda: (copy.deepcopy(opening[0]), *opening[1]), None, outputs))

    if len(ctx.episodes):
        rows, labels = [], []
        for ep_id in ctx.episodes.showcase(3, *showcase_fit(info)):
            rows.append([EPISODE, ep_id, 0, True, 3])
            labels.append(f"Replay {ctx.episodes.name(ep_id)} for 3 chunks")
        ex = gr.Examples(examples=rows, inputs=[picker.source, picker.episode, picker.t, recorded, chunks], example_labels=labels,
                         label="Examples: one click replays an episode's recorded actions")
        ex.load_input_event.then(run(None), inputs, outputs, api_visibility="private")
    return {"sliders": sliders, "steps": steps, "outputs": outputs}


def showcase(pack_key: str | None, ctx, episode_id: str | None) -> tuple | None:
    """The rollout the tab opens with: the episode's recorded actions from its first frame, predicted once per process.

    Returns ``(rollout, outputs without the state)`` or ``None`` (no pack, no fitting episode, or it failed).
    """
    if pack_key is None or episode_id is None:
        return None
    try:
        pack = PACKS.get(pack_key)
        picked = pick_frame(ctx.episodes, pack.encoder.image_size, EPISODE, episode_id, 0, None)
        if not compatible(picked.episode, pack):
            return None
        ro = start_rollout(pack, pack_key, ctx.features, picked)
        todo = recorded_chunks(picked.episode, 0, 0, ro.chunk, SHOWCASE_CHUNKS)
        if not todo:
            return None
        extend(ro, pack, todo, True, steps=pack.world_model.config.sample_steps, samples=1, seed=0, baselines=False)
        return ro, render(ro, pack, ctx.features, ctx.episodes, False).outputs()
    except Exception:  # noqa: BLE001 — the opening rollout is a nicety: the tab works without it
        log.exception("could not predict the opening rollout")
        return None


def _robot(ep) -> str:
    return getattr(ep, "control_mode", "") or "another robot"


def reset_outputs(message: str) -> tuple:
    """Values for ``outputs`` after the session switches packs."""
    return (None, *empty_view(message).outputs())


