"""Tab, Policies (``/policy_results``, ``/run_policy``, ``/imagine_wmrl``): WAM and WMRL policies.

Stored results: every ``eval*.json`` under ``assets/policies`` (written by
``training.evaluate_policy``), summarised per task and arm with the hierarchical bootstrap CI and
drawn as bars with error bars and one dot per training seed. Live: 1–5 real ManiSkill episodes of
a chosen policy, the expert or zero actions, on validation reset seeds (never the reported test
seeds); one env per task is kept per process and one run goes at a time. Where the simulator is
unavailable (not installed, no renderer, a public deployment) or too slow, the tab shows the
stored results and says why.

WMRL in imagination: a WMRL policy (``rla.wmrl.WMRLPolicy``) and the frozen initial policy inside
it, rolled out side by side in the pack's world model (``rla.imagined_env``) from a frame of an
example episode, with the same world-model noise, the recorded frames beneath and the imagined
reward of every chunk.
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
import torch

from app.errors import guarded, user_error
from app.images import content_key, grid, publish
from app.packs import REPO_ROOT, require_pack
from app.plots import _LAYOUT, empty_figure
from app.widgets import figure, plot_panel

log = logging.getLogger("rla.app")
POLICIES_DIR = REPO_ROOT / "assets" / "policies"
MAX_EPISODES = 5
LIVE_SEED_OFFSET = 900  # live episodes reset from policy_val seeds start + 900 + i: never the reported test seeds
MAX_SECONDS_PER_STEP = 2.0  # slower than this (a Space without a GPU renderer) and the run stops with the reason
ARM_COLOURS = {"wam": "#4f46e5", "bc": "#e8710a", "bc_nostate": "#c2410c", "wmrl": "#d81b60", "expert": "#0f9d58", "zero": "#9aa0a6"}
MAX_IMAGINED_CHUNKS = 6  # chunk-steps of the imagined comparison (WMRL trains on imagined episodes of at most 6)
REFERENCES = [("scripted expert (sees the true state)", "expert"), ("zero actions (the arm holds still)", "zero")]
INTRO = """**World Action Model** and **WMRL** policies in the real simulator. A behaviour-cloning policy learns actions from a few
labelled episodes; the WAM adds a head that predicts the RLA of the coming frames, which it can learn from many
**action-less** videos too. WMRL fine-tunes a behaviour-cloning policy that sees no joint positions (`bc_nostate`) with
reinforcement learning inside the world model (see *WMRL in imagination* below). Bars: success over training seeds × test
episodes with the 95 % bootstrap CI (training seeds, then episodes; for WMRL the seeds are RL seeds, all started from
one initial policy); dots: each training seed. The live run below executes a policy in ManiSkill on validation
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
    summary = summarize(results) if results else {"arms": [], "differences": []}
    summary["skipped"] = skipped
    return summary


def results_figure(summary: dict, split: str = "test") -> go.Figure:
    """Bars (mean success, error bars = 95 % CI) per task and arm, one dot per training seed."""
    rows = [r for r in summary["arms"] if r["split"] == split]
    if not rows:
        return empty_figure(f"No stored {split} results: run training.evaluate_policy (docs/wam.md)")
    fig = go.Figure()
    labels = [f"{r['task']}<br>{r['arm']}" for r in rows]
    colours = [arm_colour(r["arm"]) for r in rows]
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


def arm_colour(arm: str) -> str:
    """The arm's colour (``bc_nostate`` has its own; other ``<arm>_<variant>`` take the arm's)."""
    return ARM_COLOURS.get(arm, ARM_COLOURS.get(arm.split("_")[0], "#888"))


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
    return PolicyActor(load_policy(choice))


def load_policy(folder: str):
    """A saved BC / WAM or WMRL policy (``rla.wmrl.load_any_policy``); the last one is kept in memory."""
    if folder not in _POLICY_CACHE:
        from rla.wmrl import load_any_policy

        _POLICY_CACHE.clear()  # keep one policy in memory
        _POLICY_CACHE[folder] = load_any_policy(folder)
    return _POLICY_CACHE[folder]


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
            f"*{len(outcomes)} {'episode says' if len(outcomes) == 1 else 'episodes say'} little about a success rate: "
            "judge rates by the stored results above.*")


# ---- WMRL in imagination ----------------------------------------------------------------------------

NO_WMRL = ("No WMRL policy was found under `assets/policies/<task>/wmrl/seed<k>/` yet. Train one with "
           "`python -m training.train_wmrl` (the commands are in `docs/wmrl.md`); its folder appears here after a reload of the app.")


def wmrl_choices(root: str | Path = POLICIES_DIR) -> list[tuple[str, str]]:
    """Dropdown choices (label, folder relative to ``root``) of the saved WMRL policies."""
    from rla.policy.results import find_policies

    return [(f"{p['task']} · {p['arm']} · RL seed {p['seed']}", _relative(p["path"], root))
            for p in find_policies(root) if p["policy_kind"] == "wmrl"]


def stored_env_config(folder: str | Path) -> dict:
    """The ``env_config`` a WMRL run recorded in its ``run.json`` (empty without one)."""
    import json

    run = Path(folder) / "run.json"
    return (json.loads(run.read_text()).get("env_config") or {}) if run.is_file() else {}


def latest_start(folder: str | Path, episode) -> int:
    """The last start frame of ``episode`` that leaves room for one step of the WMRL run in ``folder``
    (the actions per step of its ``run.json``; the default env's without one)."""
    from rla.imagined_env import ImaginedEnvConfig

    return max(0, len(episode.actions) - int(stored_env_config(folder).get("actions_per_step", ImaginedEnvConfig().actions_per_step)))


def wmrl_env_config(folder: str | Path, execute: int):
    """The imagined env a WMRL run trained in (its ``run.json``), at most :data:`MAX_IMAGINED_CHUNKS` chunk-steps long."""
    from dataclasses import replace

    from rla.imagined_env import ImaginedEnvConfig

    stored = stored_env_config(folder)
    config = ImaginedEnvConfig(**stored) if stored else ImaginedEnvConfig(actions_per_step=execute)
    if config.actions_per_step != execute:
        raise ValueError(f"{folder}: the imagined env ran {config.actions_per_step} actions per step, the policy executes {execute}")
    return replace(config, max_chunk_steps=MAX_IMAGINED_CHUNKS, observation="tokens")


def comparison_picture(result: dict, start_frame: np.ndarray, recorded: list[np.ndarray | None], tile: int = 96) -> np.ndarray:
    """Rows: the initial policy's imagined frames, WMRL's, the recorded ones; one column per chunk after the start."""
    cols = [f"start · t={result['t0']}"] + [f"{i + 1} · t={t}" for i, t in enumerate(result["t"])]  # chunk · time (fits a tile)
    rows = [[start_frame, *result["frames"]["initial"]], [start_frame, *result["frames"]["wmrl"]], [start_frame, *recorded]]
    return grid(rows, ["initial", "WMRL", "recorded"], cols, tile=tile)


def reward_figure(result: dict) -> go.Figure:
    """Imagined reward per chunk, the initial policy's and WMRL's side by side."""
    fig = go.Figure()
    x = [f"chunk {i + 1}" for i in range(len(result["t"]))]
    for name, label, arm in (("initial", "initial policy", "bc_nostate"), ("wmrl", "WMRL", "wmrl")):
        r = result["reward"][name]
        fig.add_trace(go.Bar(x=x, y=r, name=f"{label} (return {sum(r):.3f})", marker_color=arm_colour(arm),
                             hovertemplate="%{x}: %{y:.4f}<extra>" + label + "</extra>"))
    fig.update_layout(**{**_LAYOUT, "height": 300, "margin": dict(l=60, r=20, t=50, b=40), "legend": dict(orientation="h", y=-0.15)},
                      barmode="group", yaxis=dict(title="reward"),
                      title=dict(text="Imagined reward per chunk: −5 · mean |imagined − recorded tokens| (higher is closer)",
                                 font=dict(size=13)))
    return fig


def comparison_summary(result: dict, *, label: str, episode: str, notes: list[str] = ()) -> str:
    """Returns, the per-chunk rewards and residuals as markdown, with what they do and do not say."""
    ri, rw = result["reward"]["initial"], result["reward"]["wmrl"]
    rows = "\n".join(f"| {i + 1} | {t} | {a:.4f} | {b:.4f} | {b - a:+.4f} | {res:.4f} |"
                     for i, (t, a, b, res) in enumerate(zip(result["t"], ri, rw, result["residual"])))
    extra = "".join(f"\n\n⚠ {n}" for n in notes)
    return (f"**{label}** from frame {result['t0']} of `{episode}`: imagined return **{sum(rw):.3f}** (WMRL) vs "
            f"**{sum(ri):.3f}** (its initial policy) over {len(ri)} chunks, in {result['seconds']:.2f} s.\n\n"
            f"| chunk | t | reward, initial | reward, WMRL | WMRL − initial | mean \\|residual\\| |\n|---|---|---|---|---|---|\n{rows}\n\n"
            "*Both policies see their own imagined frames under the same world-model noise, so only their actions differ. "
            "The reward is the training signal WMRL maximised, not success: a higher imagined return need not mean more "
            "successes in the simulator (the stored results above say that). Mean |residual| is in normalised action units; "
            "below 0.02 the WMRL policy barely differs from its initial policy.*" + extra)


def pack_notes(pack, folder: str | Path) -> list[str]:
    """Warnings when the pack is not the one the WMRL policy trained in."""
    import json

    run = Path(folder) / "run.json"
    trained = json.loads(run.read_text()).get("pack_autoencoder_sha256") if run.is_file() else None
    here = pack.info.manifest.get("models", {}).get("autoencoder", {}).get("sha256")
    if trained and here and trained != here:
        return [f"This policy was trained in another pack's world model (autoencoder {trained[:12]}…, this pack's {here[:12]}…): "
                "its imagined rewards here are not the ones it was trained on."]
    return []


def run_imagined(pack, features, episode, folder: str | Path, t0: int, seed: int = 0) -> tuple[np.ndarray, go.Figure, str, dict]:
    """Everything the WMRL view shows for one start: the picture, the reward plot, the summary (and the raw result)."""
    from rla.encoders.base import resize_uint8
    from rla.imagined_env import Recording
    from rla.wmrl import WMRLPolicy, imagined_comparison

    wmrl = load_policy(str(folder))
    if not isinstance(wmrl, WMRLPolicy):
        raise ValueError(f"{folder} is not a WMRL policy")
    c = wmrl.base.config
    if (c.num_tokens, c.token_dim) != (pack.encoder.num_tokens, pack.encoder.dim) or c.action_dim != pack.info.action_dim:
        raise ValueError(f"the policy observes {c.num_tokens}x{c.token_dim} tokens and acts in {c.action_dim}-D; this pack makes "
                         f"{pack.encoder.num_tokens}x{pack.encoder.dim} tokens for {pack.info.action_dim}-D actions: "
                         "load the pack it was trained with")
    config = wmrl_env_config(folder, wmrl.execute)
    frames = resize_uint8(np.asarray(episode.frames), pack.encoder.image_size)  # (T+1, H, W, 3)
    tokens, _ = features.encode(pack.encoder, frames)
    recording = Recording(str(episode.episode_id), tokens.float(), torch.as_tensor(np.asarray(episode.actions), dtype=torch.float32))
    result = imagined_comparison(pack.world_model, wmrl, recording, int(t0), config, seed=int(seed), to_images=pack.to_images,
                                 action_low=pack.info.action_low, action_high=pack.info.action_high)
    recorded = [frames[t] if t < len(frames) else None for t in result["t"]]
    picture = comparison_picture(result, frames[int(t0)], recorded)
    from rla.policy.results import policy_info

    info = policy_info(folder, resolve_base=False)
    notes = pack_notes(pack, folder)
    if info["task"] and getattr(episode, "task", info["task"]) != info["task"]:
        notes.append(f"This is a {episode.task} episode; the policy was trained on {info['task']}.")
    label = f"{info['task']} · {info['arm']} · RL seed {info['train_seed']}"
    summary = comparison_summary(result, label=label, episode=str(episode.episode_id), notes=notes)
    return picture, reward_figure(result), summary, result


# ---- wiring --------------------------------------------------------------------------------------

def build(ctx, *, root: str | Path = POLICIES_DIR, live: bool = True) -> None:
    from rla.data import TASKS

    summary = stored_summary(root)
    reason = simulator_unavailable(live)
    gr.Markdown(INTRO)
    chart = plot_panel("Stored results", "training.evaluate_policy, test reset seeds", elem_id="policy-chart")
    table = gr.Markdown(results_table(summary), elem_id="policy-table")  # full width: the tables have 7-8 columns
    refresh = gr.Button("Reload stored results", size="sm")
    gr.Markdown("### Live run in ManiSkill")
    choices = policy_choices(root)
    tasks = [t for t in TASKS if t != "play"]
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=280):
            policy = gr.Dropdown(choices, value=choices[0][1], label="Policy", elem_id="policy-choice")
            task = gr.Dropdown(tasks, value="PullCube", label="Task (for the expert and zero actions; a policy uses its own)")
            episodes = gr.Slider(1, MAX_EPISODES, value=2, step=1, label="Episodes", elem_id="policy-episodes")
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
        label = labels.get(choice, choice)  # the dropdown's label or the path relative to the policies folder: never a server path
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

        return episode_animation(outcomes), live_summary(label, task_name, outcomes, episode_steps(task_name))

    refresh.click(show_results, None, [chart, table], api_name="policy_results")
    run_btn.click(run, [policy, task, episodes], [animation, status], api_name="run_policy", concurrency_limit=1)
    build_wmrl(ctx, root)
    ctx.on_load.append((show_results, None, [chart, table]))  # the files as they are when the page opens (evaluations may be running)


def build_wmrl(ctx, root: str | Path = POLICIES_DIR) -> None:
    """The *WMRL in imagination* section: a WMRL policy and its initial policy rolled out in the pack's world model."""
    from rla.policy.results import find_policies

    with gr.Column(elem_id="wmrl-section"):
        gr.Markdown("### WMRL in imagination")
        gr.Markdown("A WMRL policy was fine-tuned with reinforcement learning **inside the world model**: from a recorded frame it "
                    "acts, the world model imagines the next frames, and the reward is how close they stay to the recorded "
                    "successful video. Here it and the initial policy it started from act from the same frame of an example "
                    "episode, each on its own imagined frames, with the same world-model noise, for up to "
                    f"{MAX_IMAGINED_CHUNKS} chunks.")
        choices = wmrl_choices(root)
        tasks = {_relative(p["path"], root): p["task"] for p in find_policies(root) if p["policy_kind"] == "wmrl"}
        episode_choices = ctx.episodes.choices()
        first_task = tasks.get(choices[0][1]) if choices else None
        default_episode = next((i for _, i in episode_choices if ctx.episodes.get(i).task == first_task),
                               episode_choices[0][1] if episode_choices else None)
        ready = bool(choices) and bool(episode_choices)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=280):
                policy = gr.Dropdown(choices, value=choices[0][1] if choices else None, label="WMRL policy", elem_id="wmrl-choice")
                episode = gr.Dropdown(episode_choices, value=default_episode, elem_id="wmrl-episode",
                                      label="Example episode (its frame starts both rollouts; the reward compares with its video)")
                last = latest_start(Path(root) / choices[0][1], ctx.episodes.get(default_episode)) if ready else ctx.episodes.max_steps
                t0 = gr.Slider(0, max(1, last), value=0, step=1, label="Start frame", elem_id="wmrl-start")
                seed = gr.Number(0, precision=0, label="World-model noise seed", minimum=0)
                button = gr.Button("Roll out in imagination", variant="primary", interactive=ready, elem_id="imagine-wmrl-btn")
                gr.Markdown(NO_WMRL if not choices else (ctx.episodes.note or "There are no example episodes.") if not episode_choices
                            else "Uses the session's model pack as the world model: the one the policy trained in, normally.",
                            elem_id="wmrl-note")
            with gr.Column(scale=7):
                picture = figure("Imagined rollouts", "initial policy, WMRL and the recorded frames, one column per chunk",
                                 elem_id="wmrl-picture")
                rewards = gr.Plot(show_label=False, elem_id="wmrl-rewards")
                status = gr.Markdown(NO_WMRL if not choices else "Pick a start and press **Roll out in imagination**.", elem_id="wmrl-status")

    @guarded("roll out the WMRL policy in imagination")
    def imagine(pack_key, choice, episode_id, start, noise_seed):
        valid = {v for _, v in wmrl_choices(root)}
        if not valid:
            raise user_error(NO_WMRL, "No WMRL policy")
        if choice not in valid:
            raise user_error("Pick a WMRL policy from the list.", "Unknown policy")
        pack = require_pack(pack_key)
        ep = ctx.episodes.get(episode_id)
        try:
            start, noise_seed = int(start), int(noise_seed)
        except (TypeError, ValueError):
            raise user_error(f"The start frame and the seed must be whole numbers, got {start!r} and {noise_seed!r}.", "Bad input") from None
        if noise_seed < 0:
            raise user_error("The seed must be 0 or more.", "Bad input")
        try:
            image, fig, text, _ = run_imagined(pack, ctx.features, ep, Path(root) / choice, start, noise_seed)
        except ValueError as err:
            raise user_error(f"{err}.", "Cannot roll out") from err
        return image, fig, text

    button.click(imagine, [ctx.pack_state, policy, episode, t0, seed], [picture, rewards, status], api_name="imagine_wmrl",
                 concurrency_limit=2)

    def fit_start(choice, episode_id, start):
        """The start slider spans the frames of the chosen episode that leave room for one step."""
        if choice not in {v for _, v in wmrl_choices(root)} or episode_id not in ctx.episodes.ids:
            return gr.update()
        last = latest_start(Path(root) / choice, ctx.episodes.get(episode_id))
        return gr.update(maximum=max(1, last), value=min(int(start or 0), last))

    for control in (policy, episode):
        control.change(fit_start, [policy, episode, t0], t0, api_visibility="private", show_progress="hidden")
