"""rla.topology: interior-only scores of the noise → latent path against two straight-line nulls."""
import numpy as np
import pytest
import torch

from rla.topology import PATHS, interior_alphas, score_path, summarise, topology_scores, windows


class IdentityAE:
    """u is the residual itself and decoding adds it back: with zero noise, decoding α·u is the token line."""

    def encode(self, z_t, z_k):
        return z_k - z_t  # (1, N, D): Q = N, C = D

    def decode(self, z_t, u):
        return z_t + u


class BumpAE:
    """An oracle for frames that are a bump moving along the tokens: u is the bump's shift, decode re-renders it."""

    def encode(self, z_t, z_k):
        return (centre(z_k) - centre(z_t)).view(-1, 1, 1)

    def decode(self, z_t, u):
        return bumps(centre(z_t) + u.view(-1))


N_TOKENS = 24


def bumps(c: torch.Tensor) -> torch.Tensor:
    """Tokens (P, N, 1) of a Gaussian bump centred at c (P,)."""
    n = torch.arange(N_TOKENS, dtype=torch.float32)
    return torch.exp(-((n[None] - c[:, None]) ** 2) / 2.0)[..., None]


def centre(z: torch.Tensor) -> torch.Tensor:
    w = z[..., 0]
    return (w * torch.arange(N_TOKENS, dtype=torch.float32)).sum(-1) / w.sum(-1)


def bump_episodes(n=4, steps=30, k=8, seed=0):
    rng = np.random.default_rng(seed)
    wins = []
    for e in range(n):
        c = 4 + rng.uniform(0.2, 0.5) * np.arange(steps + 1)  # moves right, each episode at its own speed
        wins += windows(bumps(torch.tensor(c, dtype=torch.float32)), f"ep{e}", k, stride=4)
    return wins


def test_interior_alphas_leave_out_the_endpoints():
    assert interior_alphas(4).tolist() == pytest.approx([0.25, 0.5, 0.75])
    assert interior_alphas(1).numel() == 0
    with pytest.raises(ValueError, match="k must be"):
        interior_alphas(0)


def test_the_real_frames_score_zero_error_and_perfect_order():
    real = bumps(torch.linspace(3, 15, 9))  # k = 8
    alpha = interior_alphas(8)
    s = score_path(real[1:-1], real, alpha)
    assert s["error"] == 0.0 and s["rho"] == pytest.approx(1.0)
    assert s["matched"].tolist() == list(range(1, 8))


def test_identity_decoder_scores_exactly_as_the_token_line_null():
    g = torch.Generator().manual_seed(0)
    tokens = torch.cumsum(torch.randn(25, 16, 6, generator=g), 0)  # a random walk in token space
    wins = windows(tokens, "walk", k=6, stride=3)
    scores = topology_scores(IdentityAE(), wins, noise_std=torch.zeros(16, 6))  # noise = 0
    np.testing.assert_allclose(scores["error"]["rla"], scores["error"]["token_line"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(scores["rho"]["rla"], scores["rho"]["token_line"])
    summary = summarise(scores, n_boot=200)
    assert summary["vs_nulls"]["token_line"]["rho"]["mean"] == 0.0
    assert summary["ordered_in_time"] is False  # a tie with a null is not "ordered in time"


def test_an_oracle_decoder_beats_both_nulls_and_is_called_ordered():
    wins = bump_episodes()
    scores = topology_scores(BumpAE(), wins, noise_std=torch.zeros(1, 1))
    assert set(scores["error"]) == set(PATHS) and len(scores["groups"]) == len(wins)
    assert scores["error"]["rla"].max() < 1e-4 and scores["rho"]["rla"].min() > 0.95  # re-renders the in-between frames
    assert scores["error"]["token_line"].min() > 100 * scores["error"]["rla"].max()  # a cross-fade is not the in-between frame
    s = summarise(scores, n_boot=300)
    assert s["episodes"] == 4 and s["pairs"] == len(wins)
    for null in ("token_line", "decoded_line"):
        assert s["vs_nulls"][null]["rho"]["low"] > 0 and s["vs_nulls"][null]["error"]["high"] < 0
    assert s["ordered_in_time"] and s["closer_to_real"]
    p = s["paths"]["rla"]["rho"]
    assert p["low"] <= p["mean"] <= p["high"]


def test_static_windows_are_left_out_and_an_empty_set_is_refused():
    still = torch.ones(12, 4, 2)
    assert windows(still, "still", k=4) == []
    with pytest.raises(ValueError, match="no windows"):
        summarise(topology_scores(IdentityAE(), []))


class CopyAE(IdentityAE):
    """Decodes every latent action to the start frame: no motion, so no order."""

    def decode(self, z_t, u):
        return z_t


def test_undefined_rho_counts_as_no_order():
    wins = bump_episodes(n=2)
    scores = topology_scores(CopyAE(), wins)
    for p in ("rla", "decoded_line"):  # every point matches frame t: rho is undefined, stored as 0
        assert scores["undefined"][p].all() and (scores["rho"][p] == 0).all()
    assert not scores["undefined"]["token_line"].any() and scores["rho"]["token_line"].min() > 0.5
    s = summarise(scores, n_boot=200)
    assert s["paths"]["rla"]["rho_undefined"] == 1.0 and not s["ordered_in_time"]
