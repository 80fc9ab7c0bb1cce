"""Tab 5, Evaluate (``/evaluate``): the paper's prediction-quality protocol on example episodes."""
from __future__ import annotations

import gradio as gr
import numpy as np

from app.episodes import check_index, compatible, showcase_fit
from app.errors import guarded, user_error
from app.packs import require_pack
from app.plots import empty_figure, evaluation_bars
from app.widgets import plot_panel
from rla.labels import METRICS, short_label

STEP_CHOICES = [1, 3, 10, 30]
INTRO = """The paper's protocol: from a real frame, roll out a few chunks of the *recorded* actions with each
method, and score the **final** frame against the real one (token L1, GMSD, SSIM, PSNR; LPIPS when its weights
are on disk). Stochastic models are scored as one sample, from zero noise (*zero*) and as the mean of 8 samples
(*mean8*). *Copy* predicts that nothing moves: a method must beat it to be useful. The *ceiling* decodes the
latent action of the real future (it cheats): the gap from RLA-WM to it is the dynamics' share of the error.
Whole-frame scores are dominated by the static background, so the *moving* and *fg* variants matter most.
The pack's **stored results** come from its recorded test split with 95 % intervals over training seeds and
episodes; a run here on a few example episodes is a demonstration, and its intervals are wide."""


def episode_items(episodes, num_chunks: int, chunk: int, start: int) -> tuple[list[dict], list[str]]:
    """Evaluation items (:class:`rla.data.ChunkEvalSet` from frame ``start``) of the episodes long enough; and the skipped ids."""
    from rla.data import ChunkEvalSet

    long_enough = [ep.num_steps >= start + num_chunks * chunk for ep in episodes]
    dataset = ChunkEvalSet([ep for ep, ok in zip(episodes, long_enough) if ok], num_chunks=num_chunks, chunk=chunk, start=start)
    return [dataset[i] for i in range(len(dataset))], [str(ep.episode_id) for ep, ok in zip(episodes, long_enough) if not ok]


def table(results: dict):
    """One row per method: final-frame metrics and cost; columns with no value at all (LPIPS offline) are left out."""
    import pandas as pd

    rows = []
    for name, entry in results.get("methods", {}).items():
        final = entry.get("final", {})
        cost = entry.get("cost") or {}
        ci = entry.get("ci") or {}
        rows.append([short_label(name)] + [_cell(final.get(m), ci.get(m)) for m in METRICS]
                    + [_round(cost.get("gflops")), _round(cost.get("ms_median"))])
    frame = pd.DataFrame(rows, columns=HEADERS)
    return frame[[c for c in frame.columns if c == "method" or frame[c].notna().any()]]


def _round(v):
    return None if v is None else float(f"{v:.3g}")


def _cell(value, ci: dict | None):
    """``mean [low, high]`` when a finite 95 % interval exists, else the rounded mean."""
    if value is None:
        return None
    if ci and np.isfinite(ci.get("low", np.nan)) and np.isfinite(ci.get("high", np.nan)):
        return f"{value:.3g} [{ci['low']:.3g}, {ci['high']:.3g}]"
    return f"{value:.3g}"


HEADERS = ["method"] + [m.title for m in METRICS.values()] + ["GFLOPs", "ms"]


def build(ctx) -> None:
    gr.Markdown(INTRO)
    info = ctx.default_info
    has_eps = len(ctx.episodes) > 0
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=300):
            default = ctx.episodes.showcase(4, *showcase_fit(info))
            episodes = gr.Dropdown(ctx.episodes.choices(), value=default, multiselect=True, label="Example episodes",
                                   info=None if has_eps else ctx.episodes.note, interactive=has_eps)
            with gr.Row():
                chunks = gr.Slider(1, 6, value=3, step=1, label="Chunks")
                start = gr.Slider(0, 100, value=0, step=1, label="Start frame")
            steps = gr.CheckboxGroup(STEP_CHOICES, value=[3, 10], label="RLA-WM Euler steps to compare")
            cost = gr.Checkbox(value=True, label="Measure cost (FLOPs and wall time per chunk)")
            run_btn = gr.Button("Run evaluation", variant="primary", elem_id="evaluate-btn")
            stored_btn = gr.Button("Show the pack's stored results", size="sm")
            metric = gr.Dropdown([(m.long, name) for name, m in METRICS.items()], value="token_l1_moving", label="Chart metric")
        with gr.Column(scale=7):
            summary = gr.Markdown("Pick episodes and press **Run evaluation**.", label="Summary", elem_id="evaluate-summary")
            results_table = gr.Dataframe(headers=HEADERS, label="Scores", interactive=False, wrap=True,
                                         column_widths=["22%"] + ["8.5%"] * (len(HEADERS) - 1))
            gr.Markdown("mean [95 % CI] · L1: token L1 and GMSD (lower is better) · SSIM, PSNR (dB): decoded frame (higher is "
                        "better) · fg: foreground only · moving: patches that change · energy: energy score of the samples · "
                        "GFLOPs and ms: cost of one predicted chunk", elem_classes=["caption"])
            chart = plot_panel("Comparison", "final-frame score per method; pick the metric on the left")
    results_state = gr.State(None)

    @guarded("run the evaluation")
    def evaluate(pack_key, episode_ids, n_chunks, start_t, rla_steps, with_cost, chart_metric, progress=gr.Progress()):
        pack = require_pack(pack_key)
        try:
            from rla.evaluation import evaluate_pack
        except ImportError as err:
            raise user_error(f"The evaluation module is not available in this installation: {err}", "Unavailable") from err
        if not episode_ids:
            raise user_error("Pick at least one example episode.", "Nothing to evaluate")
        ids = [episode_ids] if isinstance(episode_ids, str) else list(dict.fromkeys(episode_ids))  # each once, however often sent
        eps = [ctx.episodes.get(i) for i in ids]
        n_chunks = check_index(n_chunks, 10, "number of chunks")
        start_t = check_index(start_t, 10_000, "start frame")
        if n_chunks < 1:
            raise user_error("Evaluate at least one chunk.", "Bad input")
        bad = [s for s in (rla_steps or []) if s not in STEP_CHOICES]
        if bad or not rla_steps:
            raise user_error(f"Choose Euler steps among {STEP_CHOICES}.", "Bad input")
        misfits = [str(e.episode_id) for e in eps if not compatible(e, pack)]
        if misfits:
            gr.Warning(f"Skipped episodes whose actions do not fit this pack ({pack.info.action_dim}-D): {', '.join(misfits)}")
            eps = [e for e in eps if compatible(e, pack)]
            if not eps:
                raise user_error("None of the chosen episodes has actions this pack can replay.", "Nothing to evaluate")
        chunk = int(pack.info.chunk)
        items, skipped = episode_items(eps, n_chunks, chunk, start_t)
        if not items:
            raise user_error(f"No chosen episode is long enough for {n_chunks} chunks of {chunk} steps from frame {start_t}.",
                             "Episodes too short")
        if skipped:
            gr.Warning(f"Skipped episodes too short for {n_chunks}×{chunk} steps from frame {start_t}: {', '.join(skipped)}")
        progress(0.0, desc="encoding frames")
        res = evaluate_pack(pack, items, rla_steps=tuple(sorted(rla_steps)), cost=bool(with_cost), modes=("sample", "zero", "mean"),
                            num_samples=8, progress=lambda f, msg: progress(f, desc=msg))
        return (res, _summary(res, "this run"), table(res), _chart(res, chart_metric))

    @guarded("show the stored results")
    def stored(pack_key, chart_metric):
        pack = require_pack(pack_key)
        res = pack.results.get("evaluation", pack.results)  # training.pipeline stores it under "evaluation"
        if not res or "methods" not in res:
            raise user_error("This pack has no stored evaluation results; run one here.", "No stored results")
        return res, _summary(res, "stored with the pack"), table(res), _chart(res, chart_metric)

    def rechart(res, chart_metric):
        return _chart(res, chart_metric) if res else empty_figure("Run an evaluation first")

    outputs = [results_state, summary, results_table, chart]
    run_btn.click(evaluate, [ctx.pack_state, episodes, chunks, start, steps, cost, metric], outputs, api_name="evaluate",
                  concurrency_limit=1)
    stored_btn.click(stored, [ctx.pack_state, metric], outputs, api_name="stored_results")
    metric.change(rechart, [results_state, metric], chart, api_visibility="private")


def _summary(res: dict, where: str) -> str:
    p = res.get("protocol", {})
    lp = "LPIPS on" if p.get("lpips") else "LPIPS unavailable (no AlexNet weights on disk): GMSD stands in"
    text = (f"**Results ({where})** · {p.get('split', 'chosen')} episodes: {p.get('episodes', '?')}, windows: {p.get('windows', '?')}"
            f" · {p.get('num_chunks', '?')} chunks of {p.get('chunk', '?')} steps, final frame · training seeds: {p.get('training_seeds', 1)}"
            f" · encoder `{p.get('encoder', '?')}` · foreground from {p.get('foreground', '?')} · {lp}")
    if p.get("reported"):
        text += f" · the reported RLA-WM row, named before the test run: **{p['reported']}**"
    verdicts = [f"{pair}: {d['token_l1_moving']['verdict']}" for pair, d in res.get("comparisons", {}).items()
                if "token_l1_moving" in d and pair.startswith(p.get("reported", "\0") + " −")]
    if verdicts:
        text += "\n\nOn moving-token L1 (95 % CI of the paired difference): " + "; ".join(verdicts)
    return text


def _chart(res: dict, metric: str):
    if metric not in METRICS:
        metric = "token_l1"
    methods = res.get("methods", {})
    names = list(methods)
    values = [methods[n].get("final", {}).get(metric) for n in names]
    if all(v is None for v in values):
        return empty_figure(f"{METRICS[metric].long} is not available for these results")
    intervals = []
    for n in names:
        ci = (methods[n].get("ci") or {}).get(metric)
        intervals.append((ci["low"], ci["high"]) if ci and np.isfinite(ci["low"]) and np.isfinite(ci["high"]) else None)
    return evaluation_bars(names, values, METRICS[metric].long, "lower" if METRICS[metric].lower_is_better else "higher", intervals)
