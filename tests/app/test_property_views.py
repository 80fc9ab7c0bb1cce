"""The property views of the app: nulls and ρ on the Interpolation tab, probe readouts on the Latent actions tab."""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
import torch

from rla import ModelPack
from rla.interpolate import alphas, interpolate, latent_noise, lerp, match_frames, rank_correlation

EP, NOISE = "Example episode", "Noise → latent action"


def _number(text: str, label: str) -> float:
    m = re.search(re.escape(label) + r"\s*ρ = (-?\d+\.\d\d|undefined)", text)
    assert m, f"no ρ for {label!r} in: {text}"
    return float("nan") if m.group(1) == "undefined" else float(m.group(1))


def _values(y) -> list:
    """A plotly trace's values: a list, or a base64 typed array as plotly serialises numpy arrays."""
    if isinstance(y, dict):
        return np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]).tolist()
    return list(y)


def _same(reported: float, expected: float) -> bool:
    return (np.isnan(reported) and np.isnan(expected)) or reported == pytest.approx(round(expected, 2), abs=1e-9)


@pytest.fixture(scope="module")
def pack(tiny_pack):
    return ModelPack.load(tiny_pack)


@torch.no_grad()
def test_interpolation_reports_rho_of_the_path_beside_both_nulls(client, pack, episodes, monkeypatch):
    from rla import RLAAutoencoder

    t, k, n, seed = 2, 8, 6, 0
    z = pack.encoder.encode(episodes[1].frames[t:t + k + 1])  # (k+1, N, D)
    u = pack.autoencoder.encode(z[:1], z[-1:])[0]
    noise = latent_noise(u, mean=pack.dynamics.u_mean, std=pack.dynamics.u_std, generator=torch.Generator().manual_seed(seed))
    # The tiny pack's briefly trained decoder turns every point of the path into z_t: ρ would be "undefined" whatever
    # the app computed, and the check empty. This decoder (the app runs in this process) knows the pair: a latent the
    # fraction s of the way from this seed's noise to u (s = α on the path the app should build) decodes to the real
    # frame at step round(s²·k). The path then matches several real frames, in an order unlike the straight-line nulls.
    direction = (u - noise).flatten()

    def decode(self, z_t, v):
        s = ((v.flatten(1) - noise.flatten()) @ direction / direction.square().sum()).clamp(0, 1)  # (P,)
        return z[(s.square() * k).round().long()]  # (P, N, D)

    monkeypatch.setattr(RLAAutoencoder, "decode", decode)
    strip, gif, at_alpha, fig, text = client.predict(NOISE, "linear", EP, "synthetic-1", t, k, None, None, "synthetic-1", 2, 4,
                                                     n, seed, 0.5, api_name="/interpolate")
    # the same numbers, computed with the library from the episode's frames
    al = alphas(n)
    z_dec = pack.autoencoder.decode(z[:1].expand(n, -1, -1), interpolate(noise, u, al))
    expected = {
        "RLA": match_frames(z_dec, z)[0],
        "null: straight line z_t → z_{t+k}:": match_frames(lerp(z[0], z[-1], al), z)[0],
        "null: straight line between the decoded endpoints:": match_frames(lerp(z_dec[0], z_dec[-1], al), z)[0],
    }
    rhos = {label: rank_correlation(al[1:-1], matched[1:-1]) for label, matched in expected.items()}  # interior points only
    assert np.isfinite(rhos["RLA"]) and rhos["RLA"] != rhos["null: straight line z_t → z_{t+k}:"], rhos  # a check that can fail
    for label, rho in rhos.items():
        assert _same(_number(text, label), rho), (label, rho, text)
    assert "4 interior points" in text
    traces = json.loads(fig["plot"])["data"]
    rla_line = next(tr for tr in traces if tr["name"] == "closest real frame")
    assert _values(rla_line["y"]) == (t + expected["RLA"].numpy()).tolist()
    names = [tr["name"] for tr in traces]
    assert "null: straight line z_t → z_{t+k}" in names and "null: straight line between the decoded endpoints" in names
    token_line = next(tr for tr in traces if tr["name"] == "null: straight line z_t → z_{t+k}")
    assert _values(token_line["y"]) == (t + expected["null: straight line z_t → z_{t+k}:"].numpy()).tolist()


def test_latent_tab_reads_the_pack_probes_beside_the_recorded_actions(client, tiny_pack, pack, episodes):
    from rla.probes import LinearProbes
    from rla.probing import run_probes
    from tests.app.tiny import CHUNK

    path = tiny_pack / "probes.npz"
    assert not path.exists()
    assert "has no `probes.npz`" in client.predict(EP, "synthetic-1", 2, CHUNK, None, None, api_name="/read_probes")
    with torch.no_grad():
        tokens = [pack.encoder.encode(ep.frames) for ep in episodes]
    report, probes = run_probes(pack, episodes, tokens, n_boot=100)
    assert report["states_note"].startswith("no displacement probes")  # synthetic episodes have no simulator states
    probes.save(path)
    try:
        text = client.predict(EP, "synthetic-1", 2, CHUNK, None, None, api_name="/read_probes")
        with torch.no_grad():
            u = pack.autoencoder.encode(tokens[1][2:3], tokens[1][2 + CHUNK:3 + CHUNK])[0].numpy()
        read = LinearProbes.load(path).read(u)["action"].mean(0)
        true = episodes[1].actions[2:2 + CHUNK].mean(0)
        row = next(line for line in text.splitlines() if line.startswith("| action chunk, mean over"))
        cells = [c.strip() for c in row.split("|")]
        assert cells[2] == " ".join(f"{x:+.2f}" for x in read) and cells[3] == " ".join(f"{x:+.2f}" for x in true)
        assert f"R² by episode: action {report['targets']['action']['features']['u']['mean']:.2f}" in text
        assert "no recorded simulator states" in text
        other_k = client.predict(EP, "synthetic-1", 2, CHUNK + 1, None, None, api_name="/read_probes")
        assert f"set k = {CHUNK}" in other_k
    finally:
        path.unlink()


def test_rho_summary_leaves_out_the_endpoints_and_compares_with_the_nulls():
    from app.tabs.interpolation import rho_summary

    alpha = np.linspace(0, 1, 6)
    ordered = np.array([0, 1, 2, 3, 4, 5])
    text = rho_summary(alpha, ordered, {"step": np.array([0, 0, 0, 5, 5, 5]), "flat": np.zeros(6)})
    assert "**RLA ρ = 1.00**" in text and "step: ρ = 0.89" in text and "flat: ρ = undefined" in text
    assert "4 interior points" in text and "follows time more closely than both" in text
    # endpoints that agree with time do not count: the interior runs backwards
    text = rho_summary(alpha, np.array([0, 4, 3, 2, 1, 5]), {"step": np.array([0, 0, 0, 5, 5, 5])})
    assert "**RLA ρ = -1.00**" in text and "does **not** order time" in text


def test_probe_table_puts_the_recorded_displacements_beside_the_readout():
    from app.tabs.latent import probe_table
    from rla.data import load_episodes
    from rla.data.states import load_states
    from rla.probes import LinearProbes, fit_ridge

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 8))
    probes = LinearProbes({"action": fit_ridge(x, rng.normal(size=(30, 40)), 1.0), "tcp": fit_ridge(x, rng.normal(size=(30, 3)), 1.0),
                           "object": fit_ridge(x, rng.normal(size=(30, 3)), 1.0)},
                          {"action": (10, 4), "tcp": (3,), "object": (3,)}, {"k": 10, "r2": {"action": 0.1, "tcp": 0.5, "object": 0.3}})
    ep = load_episodes("assets/examples/PushCube_s100_n2.h5")[0]
    u = rng.normal(size=(2, 4))
    text = probe_table(probes, u, ep, 5, 10)
    read, moved = probes.read(u), load_states(ep).displacement("object", 5, 15)
    row = next(line for line in text.splitlines() if line.startswith("| object displacement"))
    cells = [c.strip() for c in row.split("|")]
    assert cells[2] == " ".join(f"{v * 100:+.1f}" for v in read["object"]) and cells[3] == " ".join(f"{v * 100:+.1f}" for v in moved)
    assert "tcp 0.50" in text and "reading all-zero actions" in text
    uploaded = probe_table(probes, u, None, None, None)
    assert "Uploaded pair" in uploaded and "| end-effector displacement (cm, x y z) |" in uploaded and "| — |" in uploaded
