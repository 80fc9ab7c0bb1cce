"""Training horizons come from rla.horizons: the scripts draw their pairs with the named ranges."""
import pytest

from rla.data import PairDataset
from rla.horizons import AUTOENCODER_K_RANGE, WORLD_MODEL_K_RANGE
from tests.app.tiny import synthetic_episodes
from tests.data.conftest import make_episode
from tests.training.recordings import write_recording
from training.common import TokenData


def test_the_autoencoder_sees_every_horizon_a_world_model_predicts():
    assert AUTOENCODER_K_RANGE[0] <= WORLD_MODEL_K_RANGE[0] <= WORLD_MODEL_K_RANGE[1] <= AUTOENCODER_K_RANGE[1]


def test_default_pairs_and_reconstruction_pairs_span_their_ranges():
    from training.properties import recon_pairs

    episodes = [make_episode(T=40, index=i) for i in range(2)]
    ds = PairDataset(episodes)  # the default range is the world model's
    ks = [ds[i]["k"] for i in range(len(ds))]
    assert ds.k_range == WORLD_MODEL_K_RANGE and (min(ks), max(ks)) == WORLD_MODEL_K_RANGE
    ks = [k for _, _, k in recon_pairs(episodes, stride=1)]  # the properties study probes the autoencoder's range
    assert (min(ks), max(ks)) == AUTOENCODER_K_RANGE


class Drawn(Exception):
    pass


@pytest.mark.parametrize(("script", "extra", "expected"), [
    ("train_autoencoder", [], AUTOENCODER_K_RANGE),
    ("train_world_model", ["--method", "regression"], WORLD_MODEL_K_RANGE),
])
def test_training_scripts_draw_pairs_over_their_named_range(tmp_path, monkeypatch, script, extra, expected):
    import importlib

    module = importlib.import_module(f"training.{script}")
    drawn = []

    def pairs(self, k_range, seed=0, interaction=0.0):  # stop the script once it asks for its pairs
        drawn.append(tuple(k_range))
        raise Drawn

    monkeypatch.setattr(TokenData, "pairs", pairs)
    data = write_recording(synthetic_episodes(n=2, steps=12), tmp_path / "PushCube_synthetic.h5", "PushCube")
    with pytest.raises(Drawn):
        module.main(["--data", str(data), "--out", str(tmp_path / "run"), "--preset", "tiny", "--image-size", "32",
                     "--patch-size", "8", "--cache", str(tmp_path / "cache"), "--threads", "1", *extra])
    assert drawn == [expected]
