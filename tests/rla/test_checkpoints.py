import hashlib
import json

import numpy as np
import pytest
import torch

from rla import (
    CheckpointError,
    EncoderSpec,
    LatentFlow,
    ModelPack,
    PackError,
    PackInfo,
    PixelPatchEncoder,
    RegressionWorldModel,
    RLAAutoencoder,
    TokenFlowWorldModel,
)
from rla.latent_map import LatentMap
from tests.rla.helpers import tiny_configs

MODELS = {"autoencoder": RLAAutoencoder, "dynamics": LatentFlow, "regression": RegressionWorldModel, "token_flow": TokenFlowWorldModel}


@pytest.mark.parametrize("name", MODELS)
def test_save_load_is_bit_exact(tmp_path, name):
    klass = MODELS[name]
    model = klass(tiny_configs()[name])
    for p in model.parameters():  # make every tensor non-trivial (zero-init heads included)
        p.data.normal_()
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]  # no generic "More Information Needed" card
    assert json.loads((tmp_path / "config.json").read_text())["num_tokens"] == model.config.num_tokens
    loaded = klass.load(tmp_path)
    assert loaded.config == model.config
    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    for k in state:
        assert torch.equal(state[k], loaded_state[k]), k


def test_file_sha256_is_the_sha256_of_the_whole_file(tmp_path):
    from rla.hub import file_sha256

    data = np.random.default_rng(0).bytes((1 << 20) + 12345)  # more than one read block
    (tmp_path / "blob").write_bytes(data)
    assert file_sha256(tmp_path / "blob") == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert file_sha256(str(tmp_path / "empty")) == hashlib.sha256(b"").hexdigest()


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        RLAAutoencoder.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        RLAAutoencoder.load(tmp_path / "empty")


def test_truncated_checkpoint(tmp_path):
    RLAAutoencoder(tiny_configs()["autoencoder"]).save_pretrained(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model.safetensors is corrupt or truncated"):
        RLAAutoencoder.load(tmp_path)


def test_mismatched_checkpoint(tmp_path):
    cfg = tiny_configs()
    RegressionWorldModel(cfg["regression"]).save_pretrained(tmp_path / "reg")
    with pytest.raises(CheckpointError, match="unknown fields"):
        RLAAutoencoder.load(tmp_path / "reg")  # the wrong kind of model
    RLAAutoencoder(cfg["autoencoder"]).save_pretrained(tmp_path / "ae")
    conf = json.loads((tmp_path / "ae" / "config.json").read_text())
    conf["width"] = 64  # weights no longer fit the config
    (tmp_path / "ae" / "config.json").write_text(json.dumps(conf))
    with pytest.raises(CheckpointError, match="does not match RLAAutoencoder"):
        RLAAutoencoder.load(tmp_path / "ae")
    (tmp_path / "ae" / "config.json").write_text("{ not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        RLAAutoencoder.load(tmp_path / "ae")


def test_offline_hub_repo_is_a_clear_error():
    with pytest.raises(CheckpointError, match="offline|Hub"):
        RLAAutoencoder.load("nobody/no-such-rla-model")


def _tiny_pack():
    enc = PixelPatchEncoder(image_size=16, patch_size=4)  # 16 tokens of 48 values
    pack = ModelPack.from_presets("tiny", enc, baselines=("regression",), action_dim=3, action_names=["dx", "dy", "dz"], tasks=["PushCube"])
    pack.latent_map = LatentMap(np.random.rand(20, 32).astype(np.float32), np.random.rand(20, 2).astype(np.float32),
                                {"task": np.array(["PushCube"] * 20)})
    pack.results = {"x": 1}
    return pack


def test_from_presets_builds_every_model_of_the_preset_for_the_encoder_and_action_space(tmp_path):
    from rla.presets import model_configs

    enc = PixelPatchEncoder(image_size=32, patch_size=8)  # 16 tokens of 192 values
    torch.manual_seed(0)
    pack = ModelPack.from_presets("tiny", enc, action_dim=3, action_names=["dx", "dy", "dz"], chunk=5, description="d")
    cfg = model_configs("tiny", 16, 192, 3)
    assert pack.autoencoder.config == cfg["autoencoder"] and pack.dynamics.config == cfg["dynamics"]
    assert {k: m.config for k, m in pack.baselines.items()} == {"regression": cfg["regression"], "token_flow": cfg["token_flow"]}
    assert pack.info.encoder == EncoderSpec.of(enc) and (pack.info.chunk, pack.info.description) == (5, "d")
    torch.manual_seed(0)
    again = ModelPack.from_presets("tiny", enc, action_dim=3, action_names=["dx", "dy", "dz"])
    for name in ("autoencoder", "dynamics", "token_flow"):
        a, b = (p.baselines[name] if name == "token_flow" else getattr(p, name) for p in (pack, again))
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))  # seeded: reproducible
    z = enc.encode(torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8))
    for name, model in ModelPack.load(pack.save(tmp_path / "p")).world_models().items():  # it saves, loads and predicts
        assert model.predict(z, torch.zeros(2, 5, 3), steps=1).shape == z.shape, name
    assert not ModelPack.from_presets("tiny", enc, baselines=(), action_dim=3, action_names=["a", "b", "c"]).baselines
    assert ModelPack.from_presets("tiny", enc, model_kwargs={"change_threshold": 0.2}).autoencoder.config.change_threshold == 0.2
    with pytest.raises(ValueError, match="preset"):
        ModelPack.from_presets("huge", enc)


def test_pack_round_trip(tmp_path):
    pack = _tiny_pack()
    for p in pack.dynamics.parameters():
        p.data.normal_()
    pack.save(tmp_path / "pack")
    assert not list((tmp_path / "pack").rglob("README.md"))  # cards come from rla.cards, at publishing
    loaded = ModelPack.load(tmp_path / "pack")
    assert loaded.info == pack.info and loaded.results == {"x": 1}
    assert set(loaded.world_models()) == {"rla", "regression"}
    for k, v in pack.dynamics.state_dict().items():
        assert torch.equal(loaded.dynamics.state_dict()[k], v)
    assert np.allclose(loaded.latent_map.coords, pack.latent_map.coords)
    frames = torch.randint(0, 256, (2, 16, 16, 3), dtype=torch.uint8)
    assert torch.equal(loaded.to_images(loaded.encoder.encode(frames)), frames)


def test_pack_rejects_a_wrong_encoder_description():
    pack = _tiny_pack()
    with pytest.raises(PackError, match="does not describe"):
        ModelPack(PackInfo(action_dim=3, action_names=["dx", "dy", "dz"]), pack.encoder, pack.autoencoder, pack.dynamics)


def test_pack_errors(tmp_path):
    with pytest.raises(PackError, match="not a folder, nor a Hub repo"):
        ModelPack.load(tmp_path / "missing" / "pack")
    with pytest.raises(PackError, match="no pack.json"):
        ModelPack.load(tmp_path)
    with pytest.raises(PackError, match="unreachable|offline"):
        ModelPack.load("nobody/no-such-pack")
    _tiny_pack().save(tmp_path / "p")
    (tmp_path / "p" / "dynamics" / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(PackError, match="dynamics.*corrupt"):
        ModelPack.load(tmp_path / "p")
