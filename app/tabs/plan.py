"""Tab, Plan (``/plan``, ``/execute_plan``): reach a goal image by planning in a world model (CEM), then try it for real.

The planner (:mod:`rla.planning`) imagines many action sequences with the chosen world model and
keeps the one whose imagined final frame is closest to the goal in token space. For example
episodes the plan can then be executed in ManiSkill from the episode's own reset seed (the
simulator starts once per process, on the first request, and only where ManiSkill is installed).
"""
from __future__ import annotations

import json
import logging
import threading
import time

import gradio as gr
import numpy as np
import torch

from app.episodes import check_index, check_number, compatible, showcase_fit
from app.errors import guarded, user_error
from app.frames import EPISODE, frame_picker, pick_frame
from app.images import content_key, grid, publish, save_picture
from app.packs import require_pack
from app.plots import elite_actions, plan_costs
from app.widgets import figure, plot_panel
from rla.data import frames_digest
from rla.encoders.base import resize_uint8
from rla.labels import METHOD_LABELS
from rla.planning import OBJECT_GOAL, CEMPlanner, PlannerConfig, TaskSimulator, token_cost
from rla.video import compose_all, describe_actions, write_gif, write_mp4

log = logging.getLogger("rla.app")
MAX_CANDIDATES, MAX_ITERATIONS, MAX_HORIZON, MAX_STEPS = 256, 10, 4, 20
MODELS = [(METHOD_LABELS[m], m) for m in ("rla", "regression", "token_flow")]
TILE = 160
INTRO = """Give the world model a **start** and a **goal** image and let it find the actions in between: the
cross-entropy method imagines many action sequences (one action held per chunk), keeps the few whose imagined
final frame is closest to the goal (token distance), refits its guess to them and repeats. Compare world models
as planners: a model that imagines the effect of actions well finds better plans. For example episodes, press
**Execute in the simulator** to run the plan in ManiSkill from the episode's own start and see what really happens.
On the planning benchmark (`docs/planning.md` in the repository) **no world model of the default pack
plans better than a random plan**: the plans move the arm towards its pose in the goal image but rarely touch the cube."""


class Simulators:
    """The ManiSkill env the tab executes plans in: one at a time per process, built on first use, used under a lock."""

    def __init__(self):
        self._lock = threading.Lock()
        self._sim: TaskSimulator | None = None
        self._key: tuple | None = None
        self._unavailable: str | None = None

    def unavailable(self) -> str | None:
        """Why plans cannot be executed here (``None``: they can)."""
        if self._unavailable is None and self._sim is None:
            try:
                import mani_skill  # noqa: F401
                import sapien  # noqa: F401
            except Exception as err:  # noqa: BLE001 — any import failure means "no simulator here"
                self._unavailable = f"ManiSkill is not installed or does not load here ({type(err).__name__}: {err})"
        return self._unavailable

    def run(self, task: str, size: int, control_mode: str, fn):
        """``fn(sim)`` with the env of ``task`` (built if needed, replacing another task's env)."""
        with self._lock:
            key = (task, size, control_mode)
            if self._key != key:
                if self._sim is not None:
                    self._sim.close()
                    self._sim, self._key = None, None
                try:
                    self._sim = TaskSimulator(task, size=size, control_mode=control_mode)
                except Exception as err:  # noqa: BLE001 — e.g. no Vulkan driver: report, do not crash
                    log.exception("could not start the ManiSkill simulator")
                    self._unavailable = f"the ManiSkill simulator did not start ({type(err).__name__}: {str(err)[:200]})"
                    raise RuntimeError(self._unavailable) from err
                self._key = key
            return fn(self._sim)


SIMULATORS = Simulators()  # process-wide, like app.packs.PACKS: a shared resource, not per-user state


def check_plan_settings(candidates, iterations, horizon, elites, steps, foreground, seed) -> PlannerConfig:
    """Widget values → a validated :class:`PlannerConfig` within the tab's caps, or a ``gr.Error``."""
    candidates = check_index(candidates, MAX_CANDIDATES, "number of candidates")
    iterations = check_index(iterations, MAX_ITERATIONS, "number of CEM iterations")
    horizon = check_index(horizon, MAX_HORIZON, "horizon (chunks)")
    steps = check_index(steps, MAX_STEPS, "number of Euler steps")
    elites = check_index(elites, MAX_CANDIDATES, "number of elites")
    seed = check_index(seed, 2**31 - 1, "seed")
    foreground = check_number(foreground, 0, 100, "foreground weight")
    if min(candidates, iterations, horizon, steps, elites) < 1 or candidates < 2:
        raise user_error("Candidates must be at least 2; iterations, horizon, elites and Euler steps at least 1.", "Bad input")
    if elites > candidates:
        raise user_error(f"Elites ({elites}) cannot outnumber the candidates ({candidates}).", "Bad input")
    return PlannerConfig(candidates=candidates, iterations=iterations, horizon=horizon, elites=elites, steps=steps,
                         foreground_weight=foreground, seed=seed)


def plan_picture(start, imagined, goal, real=None, tile: int = TILE) -> np.ndarray:
    """Start, the imagined frame after each chunk and the goal in a row; the simulator's frames below when given."""
    h = len(imagined)
    cols = ["start"] + [f"after chunk {i + 1}" for i in range(h)] + ["goal"]
    rows, labels = [[start, *imagined, goal]], ["imagined"]
    if real is not None:
        rows.append([*real, goal])
        labels.append("simulator")
    return grid(rows, labels, cols, tile=tile)


def export_plan(plan: dict, names: list, chunk: int) -> list[str]:
    """The plan as an MP4 and a GIF (imagined frame beside the goal, actions below) and as JSON."""
    record = {k: plan[k] for k in ("format", "pack", "model", "start", "goal", "settings", "cost", "chunk", "action_names")}
    record["actions"] = np.asarray(plan["actions"]).round(6).tolist()
    text = json.dumps(record, indent=1)
    rows = [[plan["start_frame"], plan["goal_frame"]]]
    captions = [f"start → goal with {METHOD_LABELS.get(plan['model'], plan['model'])}, {chunk} steps per chunk"]
    for i, (frame, a) in enumerate(zip(plan["imagined"], plan["actions"])):
        rows.append([frame, plan["goal_frame"]])
        captions.append(f"chunk {i + 1}/{len(plan['actions'])} · imagined\n" + describe_actions(a, names))
    key = content_key("plan-export-v1", text, *[f for r in rows for f in r])
    frames: list = []

    def composed():
        if not frames:
            frames.extend(compose_all(rows, ["imagined", "goal"], captions, tile=256))
        return frames

    stem = f"plan-{plan['model']}-{len(plan['actions'])}chunks"
    return [publish(key, f"{stem}.mp4", lambda p: write_mp4(composed(), p, 2.0)),
            publish(key, f"{stem}.gif", lambda p: write_gif(composed(), p, 2.0)),
            publish(key, f"{stem}.json", lambda p: p.write_text(text))]


def build(ctx) -> None:
    info = ctx.default_info
    gr.Markdown(INTRO)
    first = (ctx.episodes.showcase(1, *showcase_fit(info)) or [None])[0]
    last = ctx.episodes.get(first).num_steps if first else 0
    with gr.Row(equal_height=False):
        with gr.Column(scale=4, min_width=330):
            start = frame_picker(ctx.episodes, "Start frame", key="plan-start", default_episode=first, default_t=0, image_height=180)
            goal = frame_picker(ctx.episodes, "Goal frame", t_label="Time step t of the goal", key="plan-goal", default_episode=first,
                                default_t=last, image_height=180)
            ctx.on_load.extend([start.fit, goal.fit])
            model = gr.Radio(MODELS, value="rla", label="World model to plan in", elem_id="plan-model")
            with gr.Accordion("CEM settings", open=False):
                candidates = gr.Slider(2, MAX_CANDIDATES, value=64, step=1, label="Candidates per iteration",
                                       info="action sequences imagined at once (one batched prediction per chunk)")
                iterations = gr.Slider(1, MAX_ITERATIONS, value=4, step=1, label="CEM iterations")
                horizon = gr.Slider(1, MAX_HORIZON, value=2, step=1, label="Horizon (chunks)",
                                    info=f"each chunk holds one action for {info.chunk if info else 'K'} steps")
                elites = gr.Slider(1, 64, value=8, step=1, label="Elites", info="the best candidates the next guess is fitted to")
                steps = gr.Slider(1, MAX_STEPS, value=3, step=1, label="Euler steps", info="per prediction (flow models)")
                foreground = gr.Slider(0, 20, value=0, step=0.5, label="Foreground weight",
                                       info="extra weight on patches that differ between start and goal (0: all patches equal)")
                seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
            with gr.Row():
                plan_btn = gr.Button("Plan", variant="primary", elem_id="plan-btn")
                exec_btn = gr.Button("Execute in the simulator", variant="secondary", elem_id="plan-execute-btn")
        with gr.Column(scale=7):
            status = gr.Markdown("Pick a start and a goal frame and press **Plan**.", elem_id="plan-status")
            picture = figure("Plan", "the start, what the world model imagines after each chunk of the plan, and the goal",
                             elem_id="plan-picture")
            with gr.Row():
                costs = plot_panel("Cost per CEM iteration", "token distance of the imagined final frame to the goal",
                                   elem_id="plan-costs")
                elite_plot = plot_panel("Elite actions", "the last iteration's elites and the plan, per chunk",
                                        elem_id="plan-elites")
            sim_picture = figure("In the simulator", "the plan executed in ManiSkill (example episodes)", elem_id="plan-sim")
            sim_status = gr.Markdown(elem_id="plan-sim-status")
            downloads = gr.File(label="Download the plan (MP4, GIF, actions as JSON)", file_count="multiple", interactive=False,
                                elem_id="plan-downloads")
    plan_state = gr.State(None, time_to_live=2 * 3600)

    @guarded("plan")
    def plan(pack_key, s_source, s_episode, s_t, s_image, g_source, g_episode, g_t, g_image, model_name, candidates, iterations,
             horizon, elites, steps, foreground, seed, progress=gr.Progress()):
        pack = require_pack(pack_key)
        models = pack.world_models()
        if model_name not in models:
            raise user_error(f"This pack has no world model {model_name!r}; it has {', '.join(models)}.", "Unknown world model")
        cfg = check_plan_settings(candidates, iterations, horizon, elites, steps, foreground, seed)
        size = pack.encoder.image_size
        s = pick_frame(ctx.episodes, size, s_source, s_episode, s_t, s_image)
        g = pick_frame(ctx.episodes, size, g_source, g_episode, g_t, g_image)
        progress(0.0, desc="encoding start and goal")
        z, encode_ms = ctx.features.encode(pack.encoder, np.stack([resize_uint8(s.frame, size), resize_uint8(g.frame, size)]))
        z_start, z_goal = z[:1], z[1:]
        planner = CEMPlanner.for_pack(pack, model_name, cfg)
        t0 = time.perf_counter()
        result = planner.plan(z_start, z_goal, generator=torch.Generator().manual_seed(cfg.seed),
                              callback=lambda i, n: progress(i / n, desc=f"CEM iteration {i} of {n}"))
        plan_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        imagined = list(pack.to_images(result.tokens).numpy())  # (H, h, w, 3)
        decode_ms = (time.perf_counter() - t0) * 1e3
        info = pack.info
        stay = float(token_cost(z_start, z_goal)[0])
        state = {
            "format": "rla-explorer plan v1", "pack": pack_key, "model": model_name, "cost": result.cost, "chunk": int(info.chunk),
            "action_names": list(info.action_names), "settings": {k: v for k, v in cfg.__dict__.items()},
            "start": _where(s), "goal": _where(g), "actions": result.actions.numpy(), "imagined": imagined,
            "start_frame": resize_uint8(s.frame, size), "goal_frame": resize_uint8(g.frame, size), "goal_tokens": z_goal.numpy(),
            "episode_id": None if s.episode is None else str(s.episode.episode_id), "t": s.t,
        }
        note = _sim_note({**state, "episode": s.episode}, pack)
        label = METHOD_LABELS.get(model_name, model_name)
        text = (f"Planned **{result.horizon} chunks** ({result.horizon * info.chunk} steps) with **{label}**: "
                f"{cfg.candidates} candidates × {cfg.iterations} iterations, {cfg.elites} elites, {cfg.steps} Euler steps, seed {cfg.seed}. "
                f"Token distance of the imagined final frame to the goal: **{result.cost:.4f}** (the first iteration's candidates: "
                f"{result.mean_costs[0]:.4f} on average; the start frame itself: {stay:.4f}). "
                f"Planning took {plan_s:.1f} s ({result.predict_calls} predict calls), encoding {encode_ms:.0f} ms, "
                f"decoding {decode_ms:.0f} ms. Plan: " + " · ".join(
                    f"chunk {i + 1}: {describe_actions(a, info.action_names)}" for i, a in enumerate(result.actions.numpy())))
        hold = result.elites[:, :, 0].numpy()  # (E, H, A): one action held per chunk
        return (state, save_picture(plan_picture(state["start_frame"], imagined, state["goal_frame"])),
                plan_costs(result.best_costs, result.elite_costs, result.mean_costs, result.cost, model_name),
                elite_actions(hold, result.actions[:, 0].numpy(), list(info.action_names), info.action_low, info.action_high),
                text, None, note, export_plan(state, list(info.action_names), int(info.chunk)))

    @guarded("execute the plan in the simulator")
    def execute(pack_key, state, progress=gr.Progress()):
        if state is None:
            raise user_error("Press **Plan** first: there is no plan to execute yet.", "No plan")
        pack = require_pack(pack_key)
        if state["pack"] != pack_key:
            raise user_error("The model pack changed since this plan was made: press **Plan** again.", "Stale plan")
        ep = ctx.episodes.get(state["episode_id"]) if state["episode_id"] is not None else None
        note = _cannot_execute({**state, "episode": ep}, pack)
        if note:
            return None, note
        progress(0.05, desc="starting the simulator (the first time takes a while)")
        t, actions = int(state["t"]), np.asarray(state["actions"])

        def run(sim):
            first = sim.reset(ep.seed)
            if t:
                progress(0.3, desc=f"replaying the episode's first {t} recorded actions")
                first = sim.step(ep.actions[:t])
            before = sim.object_goal_distance() if sim.task in OBJECT_GOAL else None
            frames = [first]
            for i, a in enumerate(actions):
                progress(0.5 + 0.5 * i / len(actions), desc=f"executing chunk {i + 1} of {len(actions)}")
                frames.append(sim.step(a))
            after = sim.object_goal_distance() if sim.task in OBJECT_GOAL else None
            return frames, before, after, sim.success

        try:
            frames, before, after, success = SIMULATORS.run(ep.task, int(ep.frames.shape[1]), pack.info.control_mode, run)
        except RuntimeError as err:
            return None, f"**The plan could not be executed:** {err}."
        size = pack.encoder.image_size
        z_real, _ = ctx.features.encode(pack.encoder, resize_uint8(np.stack(frames), size))
        real_cost = float(token_cost(z_real[-1:], torch.from_numpy(state["goal_tokens"]))[0])
        replay_err = float(np.abs(frames[0].astype(np.int16) - ep.frames[t].astype(np.int16)).mean())
        text = (f"Executed **{len(actions)} chunks** in ManiSkill ({ep.task}, reset seed {ep.seed}"
                + (f", the episode's first {t} recorded actions replayed first" if t else "") + "). "
                f"Token distance of the real final frame to the goal: **{real_cost:.4f}** (imagined: {state['cost']:.4f}). "
                f"The replayed start differs from the recorded frame by {replay_err:.1f}/255 per pixel.")
        if before is not None:
            text += f" Object-to-goal distance: {before * 100:.1f} cm before, **{after * 100:.1f} cm after**."
        text += " Task solved at the end." if success else " Task not solved at the end."
        real = list(resize_uint8(np.stack(frames), size))
        return save_picture(plan_picture(state["start_frame"], state["imagined"], state["goal_frame"], real)), text

    inputs = [ctx.pack_state, *start.inputs, *goal.inputs, model, candidates, iterations, horizon, elites, steps, foreground, seed]
    outputs = [plan_state, picture, costs, elite_plot, status, sim_picture, sim_status, downloads]
    plan_btn.click(plan, inputs, outputs, api_name="plan", concurrency_limit=2)
    exec_btn.click(execute, [ctx.pack_state, plan_state], [sim_picture, sim_status], api_name="execute_plan", concurrency_limit=1)

    if first:
        ids = ctx.episodes.showcase(2, *showcase_fit(info))
        rows = [[EPISODE, i, 0, EPISODE, i, ctx.episodes.get(i).num_steps, m] for i in ids for m in ("rla", "regression")][:3]
        labels = [f"{ctx.episodes.name(r[1])}: first → last frame, {dict((v, k) for k, v in MODELS)[r[6]]}" for r in rows]
        ex = gr.Examples(examples=rows, inputs=[start.source, start.episode, start.t, goal.source, goal.episode, goal.t, model],
                         example_labels=labels, label="Examples: one click plans from an episode's first frame to its last")
        ex.load_input_event.then(plan, inputs, outputs, api_visibility="private")


def _where(picked) -> dict:
    if picked.episode is None:
        return {"upload_sha256": frames_digest(picked.frame)}
    return {"episode": str(picked.episode.episode_id), "t": int(picked.t), "task": picked.episode.task}


def _cannot_execute(state: dict, pack) -> str | None:
    """Why this plan cannot run in the simulator (``None``: it can)."""
    if state["episode_id"] is None:
        return ("The simulator can only execute plans that start from an **example episode**: it needs the episode's reset seed, "
                "and an uploaded image has none.")
    from rla.data.tasks import TASKS

    ep = state["episode"]
    if getattr(ep, "seed", None) is None or ep.task not in TASKS:
        return (f"The simulator cannot replay episode `{state['episode_id']}`: it has no recorded ManiSkill task and reset seed "
                "(only episodes recorded by `training.collect` do).")
    if not compatible(ep, pack) or getattr(ep, "control_mode", pack.info.control_mode) != pack.info.control_mode:
        return (f"Episode `{state['episode_id']}` was recorded with another robot or controller than this pack's "
                f"({pack.info.action_dim}-D `{pack.info.control_mode}`), so the plan cannot be executed for it.")
    reason = SIMULATORS.unavailable()
    if reason:
        return f"**The simulator is not available here:** {reason}. The plan above is what the world model imagines."
    return None


def _sim_note(state: dict, pack) -> str:
    note = _cannot_execute(state, pack)
    return note or "Press **Execute in the simulator** to run this plan in ManiSkill from the episode's own start."
