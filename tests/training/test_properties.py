"""training.properties and training.probe end to end: the tiny pack on the shipped example recordings."""
import json

import numpy as np
import pytest

from rla.probes import LinearProbes
from tests.app.tiny import CHUNK, A, build_tiny_pack

pytestmark = pytest.mark.slow  # builds and trains the tiny pack (~10 s alone, a minute on a busy machine)

EXAMPLES = ["assets/examples/PushCube_s100_n2.h5", "assets/examples/PullCube_s100_n2.h5", "assets/examples/PushT_s101_n2.h5"]


@pytest.fixture(scope="module")
def tiny_pack(tmp_path_factory):
    """The tiny models are fastest on one thread (the CPU is shared); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield build_tiny_pack(tmp_path_factory.mktemp("pack") / "tiny")
    torch.set_num_threads(before)


def test_properties_report_every_property_with_nulls_and_intervals(tiny_pack, tmp_path):
    from training import properties

    out = tmp_path / "docs" / "properties.md"
    report = properties.main(["--pack", str(tiny_pack), "--data", *EXAMPLES, "--out", str(out), "--holdout-ae",
                              str(tiny_pack / "autoencoder"), "--holdout-task", "PullCube", "--n-boot", "200",
                              "--cache", str(tmp_path / "cache"), "--topology-k", "8"])
    text = out.read_text()
    assert text.startswith("Command: `python -m training.properties --pack")
    assert "this pack records no test split" in text and "PushT" not in report["tasks"]  # other action space left out
    assert report["episodes"] == 4 and text.count("Spearman") == 1
    for heading in ("## Predictive", "## Generalizes to PullCube", "## Ordered in time", "## Encodes the action"):
        assert heading in text
    assert "fewer than 15 episodes: underpowered" in text  # 2 PullCube episodes
    # the same autoencoder on both sides of the generalization comparison: a difference of exactly 0
    same = report["generalizes"]["differences"]["l1_moving"]["without_task - with_task"]
    assert same["mean"] == 0.0 and same["low"] == 0.0 and same["high"] == 0.0
    topo = report["temporal_topology"]
    assert topo["k"] == 8 and set(topo["paths"]) == {"rla", "token_line", "decoded_line"}
    for s in topo["paths"].values():
        assert s["rho"]["low"] <= s["rho"]["mean"] <= s["rho"]["high"]
    assert topo["ordered_in_time"] == all(v["rho"]["low"] > 0 for v in topo["vs_nulls"].values())
    assert ("## Ordered in time: shown" in text) == topo["ordered_in_time"]
    assert json.loads(out.with_suffix(".json").read_text())["predictive"]["pairs"] == report["predictive"]["pairs"]
    probes = LinearProbes.load(tiny_pack / "probes.npz")  # written into the pack by default
    assert probes.k == CHUNK and probes.shapes == {"action": (CHUNK, A), "tcp": (3,), "object": (3,)}


def test_probe_cli_reports_u_beside_both_nulls(tiny_pack, tmp_path):
    from training import probe

    report = probe.main(["--pack", str(tiny_pack), "--data", *EXAMPLES[:2], "--out", str(tmp_path / "probes.json"),
                         "--weights", str(tmp_path / "p.npz"), "--n-boot", "200", "--cache", str(tmp_path / "cache")])
    assert report["episodes"] == 4 and report["k"] == CHUNK and report["states_note"] == ""
    for target in ("action", "tcp", "object"):
        e = report["targets"][target]
        assert set(e["features"]) == {"u", "residual_pca", "random_ae"} and set(e["vs_nulls"]) == {"residual_pca", "random_ae"}
        assert e["shown"] == (e["features"]["u"]["low"] > 0 and all(d["low"] > 0 for d in e["vs_nulls"].values()))
    read = LinearProbes.load(tmp_path / "p.npz").read(np.zeros((4, 8)))  # the tiny preset's u is 4 × 8
    assert read["action"].shape == (CHUNK, A) and read["object"].shape == (3,)
    assert json.loads((tmp_path / "probes.json").read_text())["command"].startswith("python -m training.probe")
