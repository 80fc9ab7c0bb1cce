"""Plotly figures: per-chunk error curves, the latent map, evaluation bars, α → matched step."""
from __future__ import annotations

import functools

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from rla.labels import method_label

METHOD_COLOURS = {"rla": "#4f46e5", "regression": "#e8710a", "token_flow": "#0f9d58", "copy": "#9aa0a6",
                  "rla_true_latent": "#a5b4fc"}
_AXIS = dict(gridcolor="#e5e9f0", linecolor="#cbd2dc", zerolinecolor="#cbd2dc", automargin=True)
# A small white template: the named "plotly_white" is deep-copied on every use (~15 ms a figure).
_TEMPLATE = go.layout.Template(layout=dict(paper_bgcolor="white", plot_bgcolor="white", font=dict(color="#2a3f5f"),
                                           xaxis=_AXIS, yaxis=_AXIS, colorway=list(METHOD_COLOURS.values())))
_LAYOUT = dict(template=_TEMPLATE, margin=dict(l=50, r=20, t=40, b=40), height=300,
               legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))


@functools.lru_cache(maxsize=32)
def empty_figure(message: str, height: int = 300) -> go.Figure:
    """A blank figure with a centred message (cached: building a figure costs ~10 ms; callers never mutate it)."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font=dict(size=14, color="#666"), xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_layout(**{**_LAYOUT, "height": height}, xaxis=dict(visible=False), yaxis=dict(visible=False))
    return fig


def error_curve(steps: list[int], errors: dict[str, dict[str, list[float]]]) -> go.Figure:
    """Per-chunk errors against the real frames: ``errors[method][metric]`` over ``steps``.

    Two panels: token L1 (lower is better) and PSNR in dB (higher is better).
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Token L1 to the real frame ↓", "PSNR of the decoded frame (dB) ↑"),
                        horizontal_spacing=0.12)
    for method, metrics in errors.items():
        base = method.split("@")[0]
        style = dict(color=METHOD_COLOURS.get(base), dash="dot" if base == "copy" else None)
        for col, metric in ((1, "token_l1"), (2, "psnr")):
            fig.add_trace(go.Scatter(x=steps, y=metrics[metric], mode="lines+markers", name=method_label(method),
                                     line=style, legendgroup=method, showlegend=col == 1), row=1, col=col)
    fig.update_xaxes(title_text="steps from the start frame", tickvals=steps)
    fig.update_layout(**{**_LAYOUT, "height": 360, "margin": dict(l=50, r=20, t=40, b=100)})
    fig.update_annotations(font_size=13)
    return fig


def latent_scatter(coords: np.ndarray, colour: np.ndarray, colour_name: str, hover: list[str], *, n_train: int | None = None,
                   mine: np.ndarray | None = None, mine_label: str = "", selected: int | None = None,
                   categorical: bool = False) -> go.Figure:
    """The latent map: training pairs as dots, example-episode pairs (from ``n_train`` on) as diamonds.

    Every point carries its index as ``customdata`` (clicks report it); ``mine`` is drawn as a star.
    """
    fig = go.Figure()
    m = len(coords)
    n_train = m if n_train is None else n_train
    index = np.arange(m)
    if categorical and len(set(colour.tolist())) > 12:  # too many for a legend (e.g. episodes): one colour per value
        codes = {v: i for i, v in enumerate(dict.fromkeys(colour.tolist()))}
        colour, categorical = np.array([codes[v] for v in colour.tolist()]), False
        colour_name = f"{colour_name} (index)"
    groups = [("training pairs", index < n_train, "circle", 6), ("example episodes", index >= n_train, "diamond", 8)]
    if categorical:
        palette = ["#4f46e5", "#e8710a", "#0f9d58", "#d93025", "#9334e6", "#12b5cb", "#f9ab00", "#5f6368", "#e52592",
                   "#188038", "#1a73e8", "#b06000"]
        for j, value in enumerate(dict.fromkeys(colour.tolist())):
            for g, (_name, in_group, symbol, size) in enumerate(groups):
                sel = (colour == value) & in_group
                if sel.any():
                    fig.add_trace(go.Scattergl(
                        x=coords[sel, 0], y=coords[sel, 1], mode="markers", name=str(value), legendgroup=str(value),
                        showlegend=g == 0 or not ((colour == value) & groups[0][1]).any(), customdata=index[sel].tolist(),
                        marker=dict(size=size, symbol=symbol, opacity=0.8, color=palette[j % len(palette)],
                                    line=dict(width=1, color="white") if g else None),
                        text=[hover[i] for i in index[sel]], hovertemplate="%{text}<extra></extra>"))
    else:
        c = colour.astype(float)
        lo, hi = float(np.nanmin(c)), float(np.nanmax(c))
        for g, (name, sel, symbol, size) in enumerate(groups):
            if sel.any():
                fig.add_trace(go.Scattergl(
                    x=coords[sel, 0], y=coords[sel, 1], mode="markers", name=name, customdata=index[sel].tolist(),
                    marker=dict(size=size, symbol=symbol, opacity=0.8, color=c[sel], colorscale="Viridis", cmin=lo, cmax=hi,
                                line=dict(width=0.8, color="white") if g else None,
                                colorbar=dict(title=dict(text=colour_name, side="right"), thickness=12) if g == 0 else None,
                                showscale=g == 0),
                    text=[hover[i] for i in index[sel]], hovertemplate="%{text}<extra></extra>", showlegend=n_train < m))
    if selected is not None and 0 <= selected < m:
        # Scattergl: WebGL traces are drawn above SVG ones, so these must be WebGL too to stay on top
        fig.add_trace(go.Scattergl(x=[coords[selected, 0]], y=[coords[selected, 1]], mode="markers", name=f"point #{selected}",
                                 marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(color="#e11d48", width=3)), hoverinfo="skip"))
    if mine is not None:
        fig.add_trace(go.Scattergl(x=[mine[0]], y=[mine[1]], mode="markers", name=mine_label or "your pair",
                                 marker=dict(symbol="star", size=20, color="#e11d48", line=dict(color="white", width=1.5)),
                                 hovertemplate=f"{mine_label or 'your pair'}<extra></extra>"))
    legend = dict(orientation="v", x=1.02, y=1) if categorical else dict(orientation="h", yanchor="top", y=-0.14, x=0)
    fig.update_layout(**{**_LAYOUT, "height": 540, "legend": legend, "margin": dict(l=50, r=20, t=40, b=70)},
                      xaxis=dict(title="map x", zeroline=False), yaxis=dict(title="map y", zeroline=False),
                      title=dict(text=f"Latent actions, coloured by {colour_name}: ● training pairs, ◆ example episodes",
                                 font=dict(size=14)),
                      dragmode="pan", clickmode="event")
    return fig


def evaluation_bars(names: list[str], values: list[float | None], metric: str, better: str,
                    intervals: list | None = None) -> go.Figure:
    """One bar per method for the final-frame ``metric``; ``intervals`` ``[(low, high) | None]`` draw 95 % CIs."""
    colours = [METHOD_COLOURS.get(n.split("@")[0], "#888") for n in names]
    y = [np.nan if v is None else v for v in values]
    error = None
    if intervals and any(iv is not None for iv in intervals):
        up = [np.nan if iv is None or v is None else iv[1] - v for iv, v in zip(intervals, values)]
        down = [np.nan if iv is None or v is None else v - iv[0] for iv, v in zip(intervals, values)]
        error = dict(type="data", array=up, arrayminus=down, color="#333", thickness=1.2, width=4)
    fig = go.Figure(go.Bar(x=[method_label(n) for n in names], y=y, marker_color=colours, error_y=error,
                           text=["n/a" if v is None else f"{v:.3g}" for v in values], textposition="outside"))
    highs = [iv[1] for iv in (intervals or []) if iv is not None and np.isfinite(iv[1])]
    top = np.nanmax([np.nan if v is None else v for v in values] + highs)
    fig.update_layout(**{**_LAYOUT, "height": 380, "margin": dict(l=60, r=20, t=50, b=90)},
                      title=dict(text=f"Final frame: {metric} ({better} is better)", font=dict(size=14)),
                      yaxis=dict(title=metric, range=[0, top * 1.18] if np.isfinite(top) and top > 0 else None),
                      xaxis=dict(tickangle=-15))
    return fig


NULL_COLOURS = ("#e8710a", "#0f9d58")  # null paths on the matched-steps plot, in order


def matched_steps(alpha: np.ndarray, matched: np.ndarray, horizon: int, t0: int, nulls: dict | None = None) -> go.Figure:
    """α along the interpolation path against the time step of the closest real frame.

    ``nulls`` maps a legend name to the matched steps of a null path at the same α (drawn dashed).
    """
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[t0, t0 + horizon], mode="lines", name="ideal: α·k", line=dict(dash="dot", color="#9aa0a6")))
    for i, (name, steps) in enumerate((nulls or {}).items()):
        fig.add_trace(go.Scatter(x=alpha, y=steps, mode="lines+markers", name=name, marker=dict(size=5),
                                 line=dict(dash="dash", width=1.5, color=NULL_COLOURS[i % len(NULL_COLOURS)])))
    fig.add_trace(go.Scatter(x=alpha, y=matched, mode="lines+markers", name="closest real frame", line=dict(color=METHOD_COLOURS["rla"])))
    fig.update_layout(**{**_LAYOUT, "height": 280, "legend": dict(x=0.01, y=0.99, bgcolor="rgba(255,255,255,0.8)")},
                      xaxis=dict(title="α (0 = noise or A, 1 = the latent action or B)"),
                      yaxis=dict(title="matched time step"))
    return fig


def plan_costs(best: list[float], elite: list[float], mean: list[float], plan_cost: float, method: str = "rla") -> go.Figure:
    """Cost per CEM iteration: the best candidate, the elites' mean, all candidates' mean, and the returned plan."""
    it = list(range(1, len(best) + 1))
    colour = METHOD_COLOURS.get(method, "#4f46e5")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=it, y=mean, mode="lines+markers", name="all candidates (mean)", line=dict(color="#9aa0a6")))
    fig.add_trace(go.Scatter(x=it, y=elite, mode="lines+markers", name="elites (mean)", line=dict(color=colour, dash="dot")))
    fig.add_trace(go.Scatter(x=it, y=best, mode="lines+markers", name="best candidate", line=dict(color=colour)))
    fig.add_trace(go.Scatter(x=[it[0], it[-1]], y=[plan_cost, plan_cost], mode="lines", name="the plan",
                             line=dict(color="#e11d48", dash="dash")))
    fig.update_layout(**{**_LAYOUT, "height": 320, "legend": dict(orientation="h", yanchor="top", y=-0.32, x=0),
                         "margin": dict(l=55, r=20, t=30, b=120)},  # the legend wraps in a narrow panel: below the axis title
                      xaxis=dict(title="CEM iteration", tickvals=it), yaxis=dict(title="token distance to the goal ↓"))
    return fig


def elite_actions(elites: np.ndarray, plan: np.ndarray, names: list[str], low: float = -1.0, high: float = 1.0) -> go.Figure:
    """The last CEM iteration's elites ``(E, H, A)`` as dots and the plan ``(H, A)`` as diamonds, grouped by chunk."""
    e, h, a = elites.shape
    palette = ["#4f46e5", "#e8710a", "#0f9d58", "#d93025", "#9334e6", "#12b5cb", "#f9ab00", "#5f6368"]
    width = 0.8 / a  # each action gets a slot inside its chunk's group
    jitter = (np.arange(e) / max(e - 1, 1) - 0.5) * width * 0.6  # (E,) spread the dots, deterministically
    fig = go.Figure()
    for j in range(a):
        centre = np.arange(1, h + 1) + (j - (a - 1) / 2) * width  # (H,)
        colour = palette[j % len(palette)]
        fig.add_trace(go.Scatter(x=(centre[None] + jitter[:, None]).reshape(-1).tolist(), y=elites[:, :, j].reshape(-1).tolist(),
                                 mode="markers", name=names[j], legendgroup=names[j],
                                 marker=dict(color=colour, size=5, opacity=0.55), hovertemplate=f"{names[j]}: %{{y:.2f}}<extra>elite</extra>"))
        fig.add_trace(go.Scatter(x=centre.tolist(), y=plan[:, j].tolist(), mode="markers", name=f"{names[j]} (plan)", legendgroup=names[j],
                                 showlegend=False, marker=dict(symbol="diamond", size=12, color=colour, line=dict(color="white", width=1)),
                                 hovertemplate=f"{names[j]}: %{{y:.2f}}<extra>plan</extra>"))
    pad = 0.05 * (high - low)
    fig.update_layout(**{**_LAYOUT, "height": 280, "legend": dict(orientation="h", yanchor="top", y=-0.2, x=0),
                         "margin": dict(l=55, r=20, t=30, b=70)},
                      xaxis=dict(tickvals=list(range(1, h + 1)), ticktext=[f"chunk {c}" for c in range(1, h + 1)], range=[0.5, h + 0.5]),
                      yaxis=dict(title="action (elites ·, plan ◆)", range=[low - pad, high + pad]))
    return fig
