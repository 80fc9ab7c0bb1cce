"""Fixtures for the app tests: a tiny pack, synthetic episodes and the app served on a free port."""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.app.tiny import build_tiny_pack, synthetic_episodes


@pytest.fixture(scope="package", autouse=True)
def single_thread():
    """The tiny models are fastest on one thread (and the CPU is shared with training jobs); restored after tests/app."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def episodes():
    return synthetic_episodes()


@pytest.fixture(scope="session")
def tiny_pack(tmp_path_factory, episodes) -> Path:
    before = torch.get_num_threads()  # session fixtures start before the package-scoped single_thread
    torch.set_num_threads(1)
    try:
        return build_tiny_pack(tmp_path_factory.mktemp("pack") / "tiny", episodes)
    finally:
        torch.set_num_threads(before)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(pack, episodes, cache_dir):
    from app.ui import build_demo, launch_kwargs

    demo = build_demo(None if pack is None else str(pack), episodes=episodes, cache_dir=cache_dir)
    port = free_port()
    demo.queue(default_concurrency_limit=4).launch(server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs())
    return demo, f"http://127.0.0.1:{port}/"


def stick_episode(episodes):
    """An example episode from a robot without a gripper: 3-D actions the tiny pack cannot replay."""
    import dataclasses

    ep = episodes[0]
    return dataclasses.replace(ep, actions=ep.actions[:, :3].copy(), task="RollBall", episode_id="stick-0")


@pytest.fixture(scope="session")
def app_url(tiny_pack, episodes, tmp_path_factory):
    demo, url = serve(tiny_pack, [*episodes, stick_episode(episodes)], tmp_path_factory.mktemp("features"))
    yield url
    demo.close()


@pytest.fixture
def client(app_url):
    """A fresh client: a new session with its own state."""
    from gradio_client import Client

    return Client(app_url, verbose=False)


@pytest.fixture(scope="session")
def image_files(tmp_path_factory) -> dict[str, Path]:
    """Uploads of every kind: RGB, grayscale, RGBA, palette, 16-bit, non-square, tiny, huge, not an image."""
    root = tmp_path_factory.mktemp("uploads")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)
    files = {
        "rgb": ("rgb.png", Image.fromarray(rgb)),
        "gray": ("gray.png", Image.fromarray(rgb[..., 0])),
        "rgba": ("rgba.png", Image.fromarray(np.dstack([rgb, np.full((80, 80), 128, np.uint8)]))),
        "palette": ("palette.png", Image.fromarray(rgb).convert("P")),
        "gray16": ("gray16.png", Image.fromarray((rgb[..., 0].astype(np.uint16) * 200), mode="I;16")),
        "wide": ("wide.jpg", Image.fromarray(rng.integers(0, 255, (60, 200, 3), dtype=np.uint8))),
        "tiny": ("tiny.png", Image.fromarray(rgb[:4, :4])),
        "huge": ("huge.png", Image.new("1", (8000, 8000))),  # 64 MP, a small file
        "tiff": ("frame.tiff", Image.fromarray(rgb)),  # Pillow reads it; the app does not accept it
    }
    out = {}
    for key, (name, img) in files.items():
        img.save(root / name)
        out[key] = root / name
    (root / "notes.txt").write_text("this is not an image\n")
    out["text"] = root / "notes.txt"
    (root / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    out["fake_png"] = root / "fake.png"
    return out

