"""Is the latent-action space ordered in time? A score that can fail, beside two nulls.

The RLA paper decodes points on the line from noise (α = 0) to the latent action ``u`` of a pair
``(z_t, z_{t+k})`` (α = 1) and finds frames that look like the real frames in between. Scored over
the whole path, that claim is pinned by its endpoints (α = 0 decodes close to ``z_t``, α = 1 to
``z_{t+k}``), so any path between them scores well. Here only the **interior** points
``α_j = j / k, j = 1 … k − 1`` are scored, each against the real frame at ``t + j`` it should match:

- **error**: mean token L1 between the decoded point and ``z_{t+j}``;
- **ρ**: Spearman's rank correlation between α and the time step of the closest real frame among
  ``z_t … z_{t+k}`` (undefined — every point matched one frame — counts as 0, no order).

The same scores are computed for two paths that involve no learned ordering at all:

- ``token_line``: the straight line ``(1 − α) z_t + α z_{t+k}`` in token space;
- ``decoded_line``: the straight line between the two decoded endpoints (α = 0 and α = 1).

A latent space is "ordered in time" only where the RLA path beats both. :func:`summarise` puts
bootstrap CIs (by episode, :mod:`rla.stats`) on every mean and on the paired differences.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from rla.interpolate import lerp, rank_correlation, token_distances

PATHS = ("rla", "token_line", "decoded_line")


def interior_alphas(k: int) -> torch.Tensor:
    """``α_j = j / k`` for ``j = 1 … k − 1``: ``(k − 1,)`` (empty for ``k = 1``)."""
    if k < 1:
        raise ValueError(f"the horizon k must be >= 1, got {k}")
    return torch.arange(1, k, dtype=torch.float32) / k


def score_path(path: torch.Tensor, real: torch.Tensor, alpha: torch.Tensor) -> dict:
    """Score points ``path (P, N, D)`` at weights ``alpha (P,)`` against real frames ``real (k+1, N, D)``.

    Returns:
        ``{"error": mean token L1 to real[round(α·k)], "rho": Spearman ρ(α, matched step) (nan if
        undefined), "matched": (P,) index of the closest real frame}``.
    """
    k = real.shape[0] - 1
    alpha = torch.as_tensor(alpha, dtype=torch.float32).reshape(-1)
    assert path.shape[0] == alpha.numel(), f"{path.shape[0]} points but {alpha.numel()} weights"
    target = torch.round(alpha * k).long()  # (P,)
    d = token_distances(path, real)  # (P, k+1)
    matched = d.argmin(dim=1)  # the closest real frame, as rla.interpolate.match_frames
    error = d[torch.arange(len(target)), target].mean()
    return {"error": float(error), "rho": rank_correlation(alpha, matched), "matched": matched.numpy()}


def null_paths(z_t: torch.Tensor, z_k: torch.Tensor, d_0: torch.Tensor, d_1: torch.Tensor, alpha: torch.Tensor) -> dict:
    """The two nulls at ``alpha (P,)``: token line ``z_t → z_k`` and decoded line ``d_0 → d_1`` (all ``(N, D)``)."""
    return {"token_line": lerp(z_t, z_k, alpha), "decoded_line": lerp(d_0, d_1, alpha)}


@torch.no_grad()
def pair_paths(ae, real: torch.Tensor, u: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor) -> dict:
    """The RLA path and both nulls for one window of real frames.

    Args:
        ae: anything with ``decode(z_t (P, N, D), u (P, Q, C)) → (P, N, D)`` (an :class:`rla.RLAAutoencoder`).
        real: tokens ``(k+1, N, D)`` of frames ``t … t + k``.
        u: the latent action of ``(real[0], real[-1])`` ``(Q, C)``, the α = 1 end of the latent path.
        noise: the α = 0 end ``(Q, C)``.
        alpha: interior weights ``(P,)``.
    Returns:
        ``{name: (P, N, D)}`` for every name in :data:`PATHS`.
    """
    z_t, z_k = real[:1], real[-1:]
    latents = lerp(noise, u, torch.cat([alpha, torch.tensor([0.0, 1.0])]))  # (P + 2, Q, C)
    decoded = ae.decode(z_t.expand(len(latents), -1, -1), latents)
    d_0, d_1 = decoded[-2], decoded[-1]
    return {"rla": decoded[:-2], **null_paths(z_t[0], z_k[0], d_0, d_1, alpha)}


@dataclass
class Window:
    """Real frames ``t … t + k`` of one episode: ``tokens (k+1, N, D)`` (any float dtype)."""

    tokens: torch.Tensor
    episode: str
    t: int


def windows(tokens: torch.Tensor, episode: str, k: int, stride: int = 5, min_change: float = 1e-3) -> list[Window]:
    """Windows ``t … t + k`` every ``stride`` steps of one episode's tokens ``(T+1, N, D)``, leaving out
    pairs whose end frames differ by less than ``min_change`` mean |token| (nothing moved: no order)."""
    out = []
    for t in range(0, tokens.shape[0] - k, stride):
        real = tokens[t: t + k + 1]  # a view: no copy per window
        if (real[-1].float() - real[0].float()).abs().mean() >= min_change:
            out.append(Window(real, str(episode), t))
    return out


@torch.no_grad()
def topology_scores(ae, wins: Iterable[Window], *, noise_mean: torch.Tensor | None = None,
                    noise_std: torch.Tensor | None = None, seed: int = 0) -> dict:
    """Error and ρ of every path on every window (one noise draw per window, seeded).

    ``ae`` has ``encode(z_t (1, N, D), z_k (1, N, D)) → u (1, Q, C)`` and ``decode`` as in
    :func:`pair_paths`; the noise is ``noise_mean + noise_std · ε`` (ε standard normal).

    Returns:
        ``{"error": {path: (M,)}, "rho": {path: (M,)}, "undefined": {path: (M,) bool}, "groups": (M,)
        episode labels, "k": k}``; an undefined ρ (constant matched step) is stored as 0.
    """
    gen = torch.Generator().manual_seed(seed)
    err = {p: [] for p in PATHS}
    rho = {p: [] for p in PATHS}
    undefined = {p: [] for p in PATHS}
    groups, k = [], None
    for w in wins:
        real = w.tokens.float()  # (k+1, N, D), tokens may be stored in half precision
        k = real.shape[0] - 1
        alpha = interior_alphas(k)
        u = ae.encode(real[:1], real[-1:])[0]  # (Q, C)
        noise = torch.randn(u.shape, generator=gen)
        if noise_std is not None:
            noise = noise * noise_std
        if noise_mean is not None:
            noise = noise + noise_mean
        for name, path in pair_paths(ae, real, u, noise, alpha).items():
            s = score_path(path, real, alpha)
            err[name].append(s["error"])
            undefined[name].append(not np.isfinite(s["rho"]))
            rho[name].append(s["rho"] if np.isfinite(s["rho"]) else 0.0)
        groups.append(w.episode)
    return {"error": {p: np.asarray(v) for p, v in err.items()}, "rho": {p: np.asarray(v) for p, v in rho.items()},
            "undefined": {p: np.asarray(v, dtype=bool) for p, v in undefined.items()}, "groups": np.asarray(groups), "k": k}


def summarise(scores: dict, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """Means with 95 % CIs by episode for every path, the paired differences RLA − null, and the verdicts.

    ``ordered_in_time`` is True only if RLA's ρ beats **both** nulls (the CI of each difference lies
    above 0); ``closer_to_real`` only if its error is below both (each CI below 0).
    """
    from rla.stats import hierarchical_bootstrap, paired_difference

    g = scores["groups"]
    if len(g) == 0:
        raise ValueError("no windows to score: every pair was static or the episodes are shorter than k")
    out = {"k": scores["k"], "pairs": int(len(g)), "episodes": int(len(np.unique(g))), "paths": {}, "vs_nulls": {}}
    for p in PATHS:
        out["paths"][p] = {m: hierarchical_bootstrap(scores[m][p], groups=g, n_boot=n_boot, seed=seed) for m in ("error", "rho")}
        out["paths"][p]["rho_undefined"] = float(scores["undefined"][p].mean())
    for null in PATHS[1:]:
        out["vs_nulls"][null] = {m: paired_difference(scores[m]["rla"], scores[m][null], groups=g, n_boot=n_boot, seed=seed)
                                 for m in ("error", "rho")}
    d = out["vs_nulls"].values()
    out["ordered_in_time"] = bool(all(v["rho"]["low"] > 0 for v in d))
    out["closer_to_real"] = bool(all(v["error"]["high"] < 0 for v in d))
    return out
