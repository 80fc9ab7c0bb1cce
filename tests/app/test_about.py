"""The About tab credits the paper and the authors' official implementation, with the links the model cards use."""
from pathlib import Path

from rla.cards import OFFICIAL_CODE, OFFICIAL_WEIGHTS, PAPER

ABOUT = Path(__file__).resolve().parents[2] / "app" / "about.md"


def test_about_credits_the_paper_and_the_official_implementation():
    text = ABOUT.read_text()
    for link in (OFFICIAL_CODE, OFFICIAL_WEIGHTS, f"arxiv.org/abs/{PAPER['arxiv']}"):
        assert link in text, link
