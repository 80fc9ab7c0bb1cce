"""Output panels with a caption line above them (Gradio's label badge would cover the picture)."""
from __future__ import annotations

import gradio as gr


def figure(label: str, caption: str = "", *, height: int | None = None, scale: int = 1, elem_id: str | None = None,
           fmt: str = "png") -> gr.Image:
    """A read-only picture under a bold caption.

    Pictures arrive already upscaled (nearest neighbour, server side); the browser may shrink them
    smoothly to fit, which keeps the drawn labels legible.
    """
    with gr.Column(scale=scale, min_width=200):
        _caption(label, caption)
        return gr.Image(label=label, show_label=False, format=fmt, interactive=False, height=height, elem_id=elem_id,
                        buttons=["download", "fullscreen"])


def plot_panel(label: str, caption: str = "", *, elem_id: str | None = None) -> gr.Plot:
    """A plotly figure under a bold caption."""
    with gr.Column(min_width=300):
        _caption(label, caption)
        return gr.Plot(label=label, show_label=False, elem_id=elem_id)


def _caption(label: str, caption: str) -> None:
    gr.Markdown(f"**{label}**" + (f" · {caption}" if caption else ""), elem_classes=["caption"])
