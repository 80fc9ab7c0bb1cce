import hashlib

import numpy as np
import pytest
import torch

from rla.encoders import EncoderSpec, EncoderWeightsError, PixelPatchEncoder, TimmEncoder, build_encoder

TINY_VIT = dict(depth=1, embed_dim=48, num_heads=2)  # a tiny DINOv2-architecture ViT
NAME = "vit_small_patch14_dinov2.lvd142m"


def test_pixel_patch_round_trip_is_exact():
    enc = PixelPatchEncoder(image_size=64, patch_size=16)
    frames = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    z = enc.encode(frames)
    assert z.shape == (3, 16, 768) and z.dtype == torch.float32
    assert enc.grid == (4, 4) and enc.num_tokens == 16 and enc.dim == 768
    assert torch.equal(enc.decode(z), torch.from_numpy(frames))


def test_pixel_patch_token_is_the_patch():
    enc = PixelPatchEncoder(image_size=32, patch_size=16)
    frames = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    frames[0, 16:, :16] = 255  # bottom-left patch white → token index 2 (row-major)
    z = enc.encode(frames)[0]
    assert torch.allclose(z[2], torch.ones(768)) and torch.allclose(z[[0, 1, 3]], -torch.ones(3, 768))


def test_pixel_patch_accepts_other_sizes_gray_and_rgba():
    enc = PixelPatchEncoder(image_size=32, patch_size=8)
    assert enc.encode(np.zeros((50, 70, 3), np.uint8)).shape == (1, 16, 192)
    assert enc.encode(np.zeros((40, 40), np.uint8)).shape == (1, 16, 192)
    assert enc.encode(np.zeros((40, 40, 4), np.uint8)).shape == (1, 16, 192)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((32, 32, 3), np.float32), "uint8"),
    (np.zeros((2, 2, 3), np.uint8), "too small"),
    (np.zeros((1, 2, 32, 32, 3), np.uint8), "shape"),
])
def test_pixel_patch_rejects_bad_frames(bad, message):
    with pytest.raises(ValueError, match=message):
        PixelPatchEncoder(32, 8).encode(bad)


def test_fingerprint_names_encoder_and_size():
    assert PixelPatchEncoder(128, 16).fingerprint != PixelPatchEncoder(64, 16).fingerprint
    assert "128" in PixelPatchEncoder(128, 16).fingerprint


def _save_tiny_vit(path, seed=0):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = timm.create_model(NAME, pretrained=False, img_size=56, num_classes=0, **TINY_VIT)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model


def test_timm_encoder_loads_local_file(tmp_path):
    ref = _save_tiny_vit(tmp_path / "model.safetensors")
    enc = TimmEncoder(NAME, image_size=56, weights=tmp_path / "model.safetensors", model_kwargs=TINY_VIT)
    for k, v in ref.state_dict().items():
        assert torch.equal(enc.model.state_dict()[k], v), k
    frames = np.random.default_rng(0).integers(0, 256, (2, 56, 56, 3), dtype=np.uint8)
    z = enc.encode(frames)
    assert z.shape == (2, 16, 48) and enc.num_tokens == 16  # 56/14 = 4 → 16 tokens, prefix dropped
    digest = hashlib.sha256((tmp_path / "model.safetensors").read_bytes()).hexdigest()
    assert enc.fingerprint == f"timm:{NAME}@sha256-{digest[:12]}:56px"  # the file's content names the weights
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.model.training


def test_timm_encoder_loads_folder_and_resamples_positions(tmp_path):
    ref = _save_tiny_vit(tmp_path / "model.safetensors")  # saved at 56 px
    enc = TimmEncoder(NAME, image_size=70, weights=tmp_path, model_kwargs=TINY_VIT)  # loaded at 70 px
    assert enc.encode(np.zeros((1, 70, 70, 3), np.uint8)).shape == (1, 25, 48)
    assert torch.equal(enc.model.patch_embed.proj.weight, ref.patch_embed.proj.weight)


def test_timm_encoder_loads_from_local_hf_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    cache = tmp_path / "hub"
    snap = cache / f"models--timm--{NAME}" / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (cache / f"models--timm--{NAME}" / "refs").mkdir()
    (cache / f"models--timm--{NAME}" / "refs" / "main").write_text("a" * 40)
    ref = _save_tiny_vit(snap / "model.safetensors", seed=3)
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    enc = TimmEncoder(NAME, image_size=56, model_kwargs=TINY_VIT)
    assert torch.equal(enc.model.cls_token, ref.cls_token)
    assert enc.fingerprint == f"timm:{NAME}@main:56px"


def test_timm_encoder_offline_without_weights_fails_fast(tmp_path, monkeypatch):
    import time

    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "empty"))
    start = time.perf_counter()
    with pytest.raises(EncoderWeightsError, match="unreachable|offline") as info:
        TimmEncoder(NAME, image_size=56, model_kwargs=TINY_VIT)
    assert time.perf_counter() - start < 10
    assert "weights=PATH" in str(info.value) and str(tmp_path / "empty") in str(info.value)


def test_timm_encoder_corrupt_or_missing_file(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(EncoderWeightsError, match="could not load"):
        TimmEncoder(NAME, image_size=56, weights=tmp_path / "model.safetensors", model_kwargs=TINY_VIT)
    with pytest.raises(EncoderWeightsError, match="neither a file nor a folder"):
        TimmEncoder(NAME, image_size=56, weights=tmp_path / "nope.safetensors", model_kwargs=TINY_VIT)


def test_dinov3_name_builds_with_random_weights():
    enc = TimmEncoder("vit_small_patch16_dinov3.lvd1689m", image_size=32, weights="random", model_kwargs=dict(depth=1, embed_dim=48, num_heads=2))
    assert enc.num_prefix_tokens == 5  # cls + 4 registers are dropped
    assert enc.encode(np.zeros((1, 32, 32, 3), np.uint8)).shape == (1, 4, 48)
    assert "random" in enc.fingerprint


def test_build_encoder_from_spec():
    assert isinstance(build_encoder(EncoderSpec(kind="pixel_patch", image_size=64, patch_size=8)), PixelPatchEncoder)
    with pytest.raises(ValueError, match="kind"):
        EncoderSpec(kind="clip")


def test_resize_uint8_keeps_type_and_matches_the_encoders_resize():
    from rla.encoders.base import resize_frames, resize_uint8

    frames = torch.randint(0, 256, (2, 40, 30, 3), dtype=torch.uint8)
    small = resize_uint8(frames, 16)
    assert small.dtype == torch.uint8 and small.shape == (2, 16, 16, 3)
    as_float = (resize_frames(frames, 16) * 255).permute(0, 2, 3, 1)
    assert (small.float() - as_float).abs().max() <= 0.5 + 1e-3  # the same resize, rounded
    one = resize_uint8(frames[0].numpy(), (20, 15))  # a single array frame, (height, width)
    assert isinstance(one, np.ndarray) and one.shape == (20, 15, 3) and one.dtype == np.uint8
    assert resize_uint8(frames, (40, 30)) is frames  # already that size
    flat = np.full((8, 8, 3), 77, np.uint8)
    assert (resize_uint8(flat, 32) == 77).all()  # a flat image stays flat when enlarged
