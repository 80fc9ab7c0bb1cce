import numpy as np
import pytest
import torch

from rla import EncoderSpec, LatentFlow, ModelPack, PackInfo, RLAAutoencoder, TimmEncoder
from rla.presets import model_configs
from rla.rgb_decoder import RGBDecoder, RGBDecoderConfig
from tests.rla.helpers import train
from tests.rla.test_encoders import NAME, TINY_VIT, _save_tiny_vit


@pytest.mark.slow  # trains for ~30 CPU-s
def test_rgb_decoder_shapes_and_overfit():
    dec = RGBDecoder(RGBDecoderConfig(grid=4, token_dim=12, image_size=28, channels=32))
    z = torch.randn(4, 16, 12)
    images = torch.randint(0, 256, (4, 28, 28, 3), dtype=torch.uint8)
    assert dec.decode(z).shape == (4, 28, 28, 3) and dec.decode(z).dtype == torch.uint8
    losses = train(dec, {"z": z, "images": images}, 150, lr=3e-3)
    assert losses[-1] < 0.7 * losses[0]


def test_dino_pack_round_trip_offline(tmp_path):
    """A pack on a timm ViT (tiny DINOv2 architecture) + RGB decoder, reloaded from local weights."""
    _save_tiny_vit(tmp_path / "vit.safetensors")
    enc = TimmEncoder(NAME, image_size=56, weights=tmp_path / "vit.safetensors", model_kwargs=TINY_VIT)
    cfg = model_configs("tiny", enc.num_tokens, enc.dim, 4)
    dec = RGBDecoder(RGBDecoderConfig(grid=enc.grid[0], token_dim=enc.dim, image_size=56, channels=32))
    pack = ModelPack(PackInfo(encoder=EncoderSpec.of(enc)), enc, RLAAutoencoder(cfg["autoencoder"]), LatentFlow(cfg["dynamics"]), rgb_decoder=dec)
    pack.save(tmp_path / "pack")
    assert not list((tmp_path / "pack").glob("**/vit*"))  # the frozen encoder is referenced, not saved
    loaded = ModelPack.load(tmp_path / "pack", encoder_weights=tmp_path / "vit.safetensors")
    frame = np.random.default_rng(0).integers(0, 256, (1, 56, 56, 3), dtype=np.uint8)
    z = loaded.encoder.encode(frame)
    assert torch.equal(z, enc.encode(frame))
    assert loaded.to_images(z).shape == (1, 56, 56, 3)
