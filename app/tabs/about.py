"""Tab 6, About: the method in a few paragraphs and a diagram."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

HERE = Path(__file__).resolve().parent.parent


def build(ctx) -> None:
    gr.HTML((HERE / "diagram.svg").read_text(), elem_id="about-diagram")
    gr.Markdown((HERE / "about.md").read_text(), elem_id="about-text")
