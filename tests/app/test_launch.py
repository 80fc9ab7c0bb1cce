"""``python app.py`` starts a server (with a pack, or without one) on the port it is given."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.launch import parse_args
from tests.app.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_cli_arguments():
    args = parse_args(["--pack", "user/name", "--port", "7999", "--threads", "1"])
    assert (args.pack, args.port, args.threads) == ("user/name", 7999, 1)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["tiny", "missing"])
def test_python_app_py_serves(tiny_pack, tmp_path, which):
    port = free_port()
    pack = str(tiny_pack) if which == "tiny" else str(tmp_path / "no-pack-here")
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "HF_HUB_OFFLINE": "1", "RLA_CACHE_DIR": str(tmp_path / "cache"),
           "GRADIO_ANALYTICS_ENABLED": "False", "RLA_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "app.py", "--pack", pack, "--examples", str(tmp_path)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, config = time.time() + 90, None
        while time.time() < deadline and proc.poll() is None:
            try:
                config = httpx.get(f"http://127.0.0.1:{port}/config", timeout=2).json()
                break
            except (httpx.HTTPError, ValueError):
                time.sleep(0.5)
        assert config is not None, f"the app did not start: {proc.stdout.read() if proc.poll() is not None else ''}"
        assert config["title"] == "RLA Explorer"
        text = str(config["components"])
        if which == "tiny":
            assert "pixel_patch:p16:64px" in text
        else:
            assert "Could not load the model pack" in text and "About" in text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
