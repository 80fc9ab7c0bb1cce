from pathlib import Path

from tests.rla.test_checkpoints import _tiny_pack
from training import publish


def test_model_card_and_layout_offline(tmp_path):
    _tiny_pack().save(tmp_path / "pack")
    files = publish.main(["--pack", str(tmp_path / "pack"), "--repo-id", "someone/rla-pack", "--dry-run"])
    names = {str(f) for f in files}
    assert {"pack.json", "README.md", "autoencoder/model.safetensors", "autoencoder/config.json",
            "dynamics/model.safetensors", "regression/config.json", "latent_map.npz"} <= names
    card = (tmp_path / "pack" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: pytorch")
    assert 'ModelPack.load("someone/rla-pack")' in card and "pixel patches (16 px, 4 px patches" in card
    assert "`autoencoder/`" in card and "`regression/`" in card
