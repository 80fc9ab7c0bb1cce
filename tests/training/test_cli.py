"""Training entry points answer bad input with the message and exit 2; --debug keeps the traceback."""
import subprocess
import sys

import pytest


@pytest.mark.slow  # each runs a CLI in a fresh Python (imports torch: ~5 CPU-s)
@pytest.mark.parametrize("module, args, message", [
    ("training.evaluate", ["--pack", "no/such/pack/here", "--data", "x", "--out", "o.json"], "model pack not found"),
    ("training.train_world_model", ["--method", "regression", "--data", "/no/such/data", "--out", "o"], "/no/such/data"),
])
def test_bad_input_prints_the_message_and_exits_2(tmp_path, module, args, message):
    run = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr
    debug = subprocess.run([sys.executable, "-m", module, *args, "--debug"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and message in debug.stderr


@pytest.mark.parametrize("module", ["training.train_autoencoder", "training.train_world_model", "training.train_rgb_decoder"])
def test_missing_encoder_weights_are_a_message_not_a_traceback(tmp_path, module, capsys):
    """Every training stage builds its encoder first; weights that are not there end it with their path."""
    import importlib

    from training.common import cli

    main = importlib.import_module(module).main
    missing = tmp_path / "no_such_vit.safetensors"
    args = ["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--encoder", "test_vit.r160_in1k",
            "--image-size", "64", "--encoder-weights", str(missing)]
    if module == "training.train_world_model":
        args += ["--method", "regression"]
    with pytest.raises(SystemExit) as exited:
        cli(lambda: main(args))
    err = capsys.readouterr().err
    assert exited.value.code == 2 and str(missing) in err and err.startswith("error: ") and "Traceback" not in err


@pytest.mark.parametrize("module, args, message", [
    ("training.train_policy", ["--pack", "/no/such/pack", "--data", "/no/data", "--task", "PullCube", "--out", "o"],
     "model pack not found: /no/such/pack"),
    ("training.evaluate_policy", ["--policy", "/no/such/policy", "--task", "PullCube", "--out", "o.json"],
     "--policy /no/such/policy: not 'expert', 'zero' or a policy folder"),
    ("training.probe", ["--pack", "/no/such/pack", "--data", "/no/data", "--out", "p.md"], "model pack not found: /no/such/pack"),
    ("training.evaluate_planning", ["--pack", "p", "--task", "PushCube", "--out", "o.jsonl"], "--out names the summary, a .json file"),
])
def test_policy_probe_and_planning_entry_points_answer_with_the_message(tmp_path, monkeypatch, capsys, module, args, message):
    """Run as ``python -m`` runs them (their ``__main__`` block, in this process): through
    training.common.cli, so the message on stderr once, exit 2, no traceback."""
    import runpy
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [module, *args])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module(module, run_name="__main__", alter_sys=False)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.startswith(f"error: {message}") and "Traceback" not in err and "error: error" not in err
