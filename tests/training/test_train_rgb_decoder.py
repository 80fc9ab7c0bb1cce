"""training.train_rgb_decoder: the decoder learns from frames at its own size, each paired with its tokens."""
import torch

from rla.encoders import PixelPatchEncoder
from tests.app.tiny import synthetic_episodes
from tests.training.recordings import write_recording


def test_decoder_trains_on_frames_resized_to_its_size_next_to_their_tokens(tmp_path, monkeypatch):
    from training import train_rgb_decoder

    batches = []

    def fake_fit(model, sample, tc, out, name):  # the batches fit would see, without training
        gen = torch.Generator().manual_seed(0)
        batches.extend(sample(gen) for _ in range(3))
        return {"steps": 0}

    monkeypatch.setattr(train_rgb_decoder, "fit", fake_fit)
    monkeypatch.setattr(train_rgb_decoder, "load_lpips", lambda: None)
    data = write_recording(synthetic_episodes(n=2, steps=12), tmp_path / "PushCube_synthetic.h5", "PushCube")  # 64 px frames
    report = train_rgb_decoder.main(["--data", str(data), "--out", str(tmp_path / "run"), "--image-size", "32",
                                     "--patch-size", "8", "--cache", str(tmp_path / "cache"), "--threads", "1"])

    encoder = PixelPatchEncoder(image_size=32, patch_size=8)  # exact: its decode is the frame it encoded
    for batch in batches:
        images = batch["images"]
        assert images.dtype == torch.uint8 and images.shape == (32, 32, 32, 3)  # batch 32 of 32 px frames, not 64 px
        from_tokens = encoder.decode(batch["z"])  # uint8 (B, 32, 32, 3)
        assert (images.int() - from_tokens.int()).abs().max() <= 1  # each image is the frame its tokens encode
    assert 0 < report["heldout_ssim"] < 1  # scored against held-out frames at the decoder's size
