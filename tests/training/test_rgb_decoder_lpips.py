"""training.train_rgb_decoder: LPIPS shapes the loss but is never trained, never in train mode, never saved."""
import csv
import json

import lpips
import torch
from safetensors import safe_open

from tests.app.tiny import synthetic_episodes
from tests.training.recordings import write_recording


def test_lpips_is_frozen_in_eval_mode_and_kept_out_of_every_checkpoint(tmp_path, monkeypatch):
    from training import train_rgb_decoder

    # a stand-in for LPIPS(AlexNet) (no weights offline): random AlexNet, the package's own linear
    # layers, deliberately trainable and in train mode, so nothing relies on load_lpips freezing it
    net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).requires_grad_(True).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    modes = []
    net.register_forward_pre_hook(lambda module, inputs: modes.append(module.training))
    monkeypatch.setattr(train_rgb_decoder, "load_lpips", lambda: net)
    data = write_recording(synthetic_episodes(n=2, steps=12), tmp_path / "PushCube_synthetic.h5", "PushCube")
    out = tmp_path / "run"
    train_rgb_decoder.main(["--data", str(data), "--out", str(out), "--image-size", "32", "--patch-size", "8",
                            "--cache", str(tmp_path / "cache"), "--steps", "26", "--batch-size", "4", "--threads", "1"])

    assert len(modes) >= 26 and not any(modes)  # LPIPS ran at every step, always in eval mode (no dropout)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not any(p.requires_grad for p in net.parameters())
    saved = sorted(out.glob("**/*.safetensors"))
    assert out / "rgb_decoder" / "model.safetensors" in saved and out / "checkpoint" / "model.safetensors" in saved
    for path in saved:
        with safe_open(str(path), "pt") as f:
            assert not [k for k in f.keys() if "lpips" in k or "scaling_layer" in k or "lin0" in k], path
    with open(out / "loss.csv") as f:
        logs = [json.loads(row["logs"]) for row in csv.DictReader(f)]
    assert logs and "lpips" in logs[-1] and logs[-1]["lpips"] > 0  # the loss still uses it
