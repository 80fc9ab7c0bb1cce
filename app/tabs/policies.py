"""Tab, Policies (``/policy_results``, ``/run_policy``): World Action Model policies scored in ManiSkill.

Stored results: every ``eval*.json`` under ``assets/policies`` (written by
``training.evaluate_policy``), summarised per task and arm with the hierarchical bootstrap CI and
drawn as bars with error bars and one dot per training seed. Live: 1–5 real ManiSkill episodes of
a chosen policy, the expert or zero actions, on validation reset seeds (never the reported test
seeds); one env per task is kept per process and one run goes at a time. Where the simulator is
unavailable (not installed, no renderer, a public deployment) or too slow, the tab shows the
stored results and says why.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np
import plotly.graph_objects as go

from app.errors import guarded, user_error
from app.images import content_key, publish
from app.packs import REPO_ROOT
from app.plots import _LAYOUT, empty_figure
from app.widgets import plot_panel

log = logging.getLogger("rla.app")
POLICIES_DIR = REPO_ROOT / "assets" / "policies"
MAX_EPISODES = 5
LIVE_SEED_OFFSET = 900  # live episodes reset from policy_val seeds start + 900 + i: never the reported test seeds
MAX_SECONDS_PER_STEP = 2.0  # slower than this (a Space without a GPU renderer) and the run stops with the reason
ARM_COLOURS = {"wam": "#4f46e5", "bc": "#e8710a", "expert": "#0f9d58", "zero": "#9aa0a6"}
REFERENCES = [("scripted expert (sees the true state)", "expert"), ("zero actions (the arm holds still)", "zero")]
INTRO = """**World Action Model** policies in the real simulator. A behaviour-cloning policy learns actions from a few
labelled episodes; the WAM adds a head that predicts the RLA of the coming frames, which it can learn from many
**action-less** videos too. Bars: success over training seeds × test episodes with the 95 % bootstrap CI (training
seeds, then episodes); dots: each training seed. The live run below executes a policy in ManiSkill on validation
seeds: **five episodes say little about a success rate** (a 50 % policy scores 0–5 of 5 by chance), so judge rates
by the stored results."""


# ---- pure functions ------------------------------------------------------------------------------

def stored_summary(root: str | Path = POLICIES_DIR) -> dict:
    """The summary (:func:`rla.policy.results.summarize`) of every result file under ``root``; unreadable files are skipped."""
    from rla.policy.results import find_results, load_result, summarize

    results, skipped = [], []
    for path in find_results(root):
        try:
            results.append(load_result(path))
        except ValueError as err:
            skipped.append(str(err))
    summary = summarize(results, n_boot=1000) if results else {"arms": [], "differences": []}
    summary["skipped"] = skipped
    return summary


def results_figure(summary: dict, split: str = "test") -> go.Figure:
    """Bars (mean success, error bars = 95 % CI) per task and arm, one dot per training seed."""
    rows = [r for r in summary["arms"] if r["split"] == split]
    if not rows:
        return empty_figure(f"No stored {split} results: run training.evaluate_policy (docs/wam.md)")
    fig = go.Figure()
    labels = [f"{r['task']}<br>{r['arm']}" for r in rows]
    colours = [ARM_COLOURS.get(r["arm"].split("_")[0], "#888") for r in rows]
    mean = np.array([100 * r["mean"] for r in rows])
    fig.add_trace(go.Bar(
        x=labels, y=mean, marker_color=colours, name="success over seeds × episodes",
        error_y=dict(type="data", symmetric=False, array=np.array([100 * r["high"] for r in rows]) - mean,
                     arrayminus=mean - np.array([100 * r["low"] for r in rows]), color="#333", thickness=1.5),
        text=[f"{m:.0f} %" for m in mean], textposition="outside",
        hovertemplate="%{x}: %{y:.1f} %<extra></extra>"))
    xs, ys, hover = [], [], []
    for label, r in zip(labels, rows):
        for seed, rate in zip(r["train_seeds"], r["per_seed"]):
            xs.append(label)
            ys.append(100 * rate)
            hover.append("reference" if seed is None else f"training seed {seed}")
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name="one training seed", text=hover,
                             marker=dict(color="white", size=9, line=dict(color="#111", width=1.5)),
                             hovertemplate="%{text}: %{y:.1f} %<extra></extra>"))
    episodes = sorted({r["episodes_per_seed"] for r in rows})
    fig.update_layout(**{**_LAYOUT, "height": 400, "margin": dict(l=60, r=20, t=50, b=80)},
                      title=dict(text=f"Success in ManiSkill ({split} reset seeds, {'/'.join(map(str, episodes))} episodes per seed)",
                                 font=dict(size=14)),
                      yaxis=dict(title="success %", range=[0, 112]), bargap=0.35)
    return fig


def results_table(summary: dict) -> str:
    """The stored results as markdown (the table of docs/wam.md), or a note that there are none."""
    from rla.policy.results import markdown

    if not summary["arms"]:
        return ("No stored policy results yet. Train and evaluate with the commands in `docs/wam.md`; result files "
                "(`eval*.json`) under `assets/policies/` appear here.")
    note = f"\n\n{len(summary['skipped'])} unreadable result files were skipped." if summary.get("skipped") else ""
    return markdown(summary) + note


def policy_choices(root: str | Path = POLICIES_DIR) -> list[tuple[str, str]]:
    """Dropdown choices: every saved policy (label, folder), then the expert and zero actions."""
    from rla.policy.results import find_policies

    found = [(f"{p['task']} · {p['arm']} · seed {p['seed']}", _relative(p["path"], root)) for p in find_policies(root)]
    return found + REFERENCES  # values are paths relative to ``root``: the page never shows a server path


def _relative(path, root) -> str:
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return Path(path).name


def simulator_unavailable(live: bool = True) -> str | None:
    """Why live episodes cannot run here (``None``: they can)."""
    if not live:
        return "live episodes are switched off in this deployment (public mode): the stored results are shown instead"
    if os.environ.get("SPACE_ID"):
        return "this app runs on a Hugging Face Space, where ManiSkill's CPU renderer is too slow for live episodes"
    try:
        import mani_skill  # noqa: F401
        import sapien  # noqa: F401
    except Exception as err:  # noqa: BLE001 — any import failure means "no simulator here"
        return f"ManiSkill is not installed or does not load here ({type(err).__name__}: {err})"
    return None


class TooSlow(RuntimeError):
    """The simulator steps too slowly for a live run."""


class EnvPool:
    """One ManiSkill env per task, built on first use and kept for the process; one run at a time."""

    def __init__(self):
        self.lock = threading.Lock()
        self._envs: dict[str, object] = {}
        self.broken: str | None = None  # why the simulator failed to start (then it is not tried again)

    def env(self, task: str):
        from rla.policy.rollout import make_policy_env

        if task not in self._envs:
            try:
                self._envs[task] = make_policy_env(task)
            except Exception as err:  # noqa: BLE001 — e.g. no Vulkan driver: report, do not crash
                log.exception("could not start the ManiSkill simulator")
                self.broken = f"the ManiSkill simulator did not start ({type(err).__name__}: {str(err)[:200]})"
                raise RuntimeError(self.broken) from err
        return self._envs[task]


ENVS = EnvPool()  # process-wide, like app.packs.PACKS
_POLICY_CACHE: dict[str, object] = {}


def load_actor(choice: str, task: str, env):
    """The actor for a dropdown value: a policy folder, ``expert`` or ``zero``."""
    from rla.policy.rollout import PolicyActor, ZeroActor

    if choice == "zero":
        return ZeroActor(int(env.action_space.shape[-1]))
    if choice == "expert":
        from rla.experts import ExpertActor

        return ExpertActor(task)
    if choice not in _POLICY_CACHE:
        from rla.policy import Policy

        _POLICY_CACHE.clear()  # keep one policy in memory
        _POLICY_CACHE[choice] = Policy.load(choice)
    return PolicyActor(_POLICY_CACHE[choice])


def run_live(choice: str, task: str, episodes: int, *, progress=None, pool: EnvPool = ENVS,
             max_seconds_per_step: float = MAX_SECONDS_PER_STEP) -> tuple[list, list[np.ndarray]]:
    """Run ``episodes`` episodes; returns their outcomes and the frames of every episode (for the animation)."""
    from rla.data import SEED_RANGES
    from rla.policy.rollout import episode_steps, run_episode

    max_steps = episode_steps(task)
    first = SEED_RANGES["policy_val"][0] + LIVE_SEED_OFFSET
    with pool.lock:
        env = pool.env(task)
        actor = load_actor(choice, task, env)
        outcomes, started = [], time.perf_counter()
        for i in range(episodes):
            def on_step(step, total, i=i):
                if progress:
                    progress((i * total + step) / (episodes * total), desc=f"episode {i + 1} of {episodes}, step {step}")
                taken = i * total + step
                if taken >= 10 and (time.perf_counter() - started) / taken > max_seconds_per_step:
                    raise TooSlow(f"the simulator takes {(time.perf_counter() - started) / taken:.1f} s per step here "
                                  f"(more than {max_seconds_per_step:g} s): too slow for live episodes")
            outcomes.append(run_episode(env, actor, first + i, max_steps, keep_frames=True, on_step=on_step))
    return outcomes, [o.frames for o in outcomes]


def episode_animation(outcomes: list, every: int = 2) -> str:
    """All episodes back to back as one GIF, captioned with the episode, step and success so far."""
    from rla.video import compose, write_gif

    frames = []
    for i, o in enumerate(outcomes):
        picked = list(range(0, len(o.frames), every))
        if picked[-1] != len(o.frames) - 1:
            picked.append(len(o.frames) - 1)
        for t in picked:
            done = t == len(o.frames) - 1
            mark = (" · success" if o.success else " · no success") if done else ""
            frames.append(compose([o.frames[t]], [f"episode {i + 1} · reset seed {o.reset_seed}"], f"step {t}{mark}", tile=256))
    key = content_key(*[f for o in outcomes for f in o.frames[::every]])
    return publish(key, "episodes.gif", lambda p: write_gif(frames, p, fps=10, hold_last=1.0))


def live_summary(label: str, task: str, outcomes: list, max_steps: int) -> str:
    """Success and steps per episode, with the reminder that a handful of episodes is not a rate."""
    wins = sum(o.success for o in outcomes)
    rows = "\n".join(f"| {i + 1} | {o.reset_seed} | {'✓' if o.success else '✗'} | {o.steps} | {o.seconds:.1f} |"
                     for i, o in enumerate(outcomes))
    return (f"**{label}** on **{task}**: {wins} of {len(outcomes)} episodes successful (success at any step within the "
            f"task's {max_steps} steps; an episode stops at its first success).\n\n"
            f"| episode | reset seed | success | steps | seconds |\n|---|---|---|---|---|\n{rows}\n\n"
            f"*{len(outcomes)} episodes say little about a success rate: judge rates by the stored results above.*")


# ---- wiring --------------------------------------------------------------------------------------

def build(ctx, *, root: str | Path = POLICIES_DIR, live: bool = True) -> None:
    from rla.data import TASKS

    summary = stored_summary(root)
    reason = simulator_unavailable(live)
    gr.Markdown(INTRO)
    with gr.Row(equal_height=False):
        with gr.Column(scale=7):
            chart = plot_panel("Stored results", "training.evaluate_policy, test reset seeds", elem_id="policy-chart")
        with gr.Column(scale=5):
            table = gr.Markdown(results_table(summary), elem_id="policy-table")
            refresh = gr.Button("Reload stored results", size="sm")
    gr.Markdown("### Live run in ManiSkill")
    choices = policy_choices(root)
    tasks = [t for t in TASKS if t != "play"]
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=280):
            policy = gr.Dropdown(choices, value=choices[0][1], label="Policy", elem_id="policy-choice")
            task = gr.Dropdown(tasks, value="PullCube", label="Task (for the expert and zero actions; a policy uses its own)")
            episodes = gr.Slider(1, MAX_EPISODES, value=2, step=1, label="Episodes")
            run_btn = gr.Button("Run in the simulator", variant="primary", interactive=reason is None, elem_id="run-policy-btn")
            gr.Markdown(f"Live runs are off here: {reason}." if reason else
                        f"Reset seeds {LIVE_SEED_OFFSET} on in the validation range; one run at a time.", elem_id="policy-sim-note")
        with gr.Column(scale=7):
            animation = gr.Image(label="Episodes", show_label=False, interactive=False, height=330, elem_id="policy-animation")
            status = gr.Markdown("Pick a policy and press **Run in the simulator**.", elem_id="policy-status")
    labels = dict((v, k) for k, v in choices)

    @guarded("load the stored results")
    def show_results():
        s = stored_summary(root)
        return results_figure(s), results_table(s)

    @guarded("run the policy")
    def run(choice, task_name, n, progress=gr.Progress()):
        why = simulator_unavailable(live) or ENVS.broken
        if why:
            raise user_error(f"Live episodes cannot run here: {why}. The stored results above still apply.", "Simulator unavailable")
        valid = {v for _, v in policy_choices(root)}
        if choice not in valid:
            raise user_error("Pick a policy from the list.", "Unknown policy")
        try:
            n = int(n)
        except (TypeError, ValueError):
            raise user_error(f"The number of episodes must be a whole number, got {n!r}.", "Bad input") from None
        if not 1 <= n <= MAX_EPISODES:
            raise user_error(f"Run 1 to {MAX_EPISODES} episodes.", "Bad input")
        if choice not in ("expert", "zero"):
            from rla.policy.results import find_policies

            task_name = next((p["task"] for p in find_policies(root) if _relative(p["path"], root) == choice), task_name)
            choice = str(Path(root) / choice)
        if task_name not in tasks:
            raise user_error(f"Pick a task among {', '.join(tasks)}.", "Unknown task")
        try:
            outcomes, _ = run_live(choice, task_name, n, progress=progress)
        except TooSlow as err:
            raise user_error(f"{err}. The stored results above still apply.", "Simulator too slow") from err
        except RuntimeError as err:
            if ENVS.broken:
                raise user_error(f"Live episodes cannot run here: {ENVS.broken}. The stored results above still apply.",
                                 "Simulator unavailable") from err
            raise
        from rla.policy.rollout import episode_steps

        return episode_animation(outcomes), live_summary(labels.get(choice, choice), task_name, outcomes, episode_steps(task_name))

    refresh.click(show_results, None, [chart, table], api_name="policy_results")
    run_btn.click(run, [policy, task, episodes], [animation, status], api_name="run_policy", concurrency_limit=1)
    ctx.on_load.append((lambda: results_figure(stored_summary(root)), None, [chart]))
