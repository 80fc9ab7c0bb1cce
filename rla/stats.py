"""Confidence intervals for evaluation tables: a two-level bootstrap over training seeds and episodes.

Layout. A method's scores form a matrix ``values (S, W)``: ``S`` training seeds (rows) by ``W``
evaluation units (columns), e.g. windows. Every seed is scored on the *same* units, so the design
is crossed, not nested. ``groups (W,)`` labels the episode each window comes from; without it every
column is its own group. ``NaN`` marks a missing score (e.g. an empty foreground mask).

Scheme (the "pigeonhole" bootstrap for crossed designs, Owen 2007). Each replicate

1. draws ``S`` seeds with replacement, and
2. draws ``G`` groups (episodes) with replacement, once, shared by all drawn seeds, taking every
   window of each drawn episode,

and recomputes the grand mean: the mean over all finite cells of the resampled matrix, every
(seed, window) cell weighted equally. Sharing the drawn units across seeds keeps each episode's
difficulty paired across seeds; drawing whole episodes keeps correlated windows together. With
``S = 1`` this is the ordinary (cluster) bootstrap over units. The interval is the percentile
interval of the replicates. Replicates are weights: seed counts ``c (R, S)`` and unit counts
``w (R, W)`` give ``mean_r = c_r · V · w_r / c_r · F · w_r`` (``V`` scores with NaN as 0, ``F`` the
finite indicator), so 2,000 replicates over 300 units × 3 seeds take milliseconds.

Caveat, measured in tests/rla/test_stats.py (simulated seed effect + unit effect + noise, 100 units,
unit sd 1, noise sd 0.5): a bootstrap over 3 seeds sees at most 10 distinct seed multisets and
shrinks the seed variance by (S−1)/S, so the 95 % interval covers 0.78 of the time when the seed sd is
0.5, and 0.935 when it is 0.1; with 20 seeds it covers 0.95. Report the number of seeds with the CI.

``paired_difference`` compares two methods scored on the same units: the unit draw is shared by
both methods (that is the pairing), seed draws are independent unless ``paired_seeds=True``.
"""
from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np


def _as_matrix(values, name: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[None]
    if v.ndim != 2 or v.shape[0] == 0 or v.shape[1] == 0:
        raise ValueError(f"{name} must have shape (seeds, units) with both > 0, got {np.shape(values)}")
    return v


def _group_index(groups, n_units: int) -> tuple[np.ndarray, int]:
    """Integer group id per unit ``(W,)`` and the number of groups."""
    if groups is None:
        return np.arange(n_units), n_units
    g = np.asarray(groups)
    if g.shape != (n_units,):
        raise ValueError(f"groups must have shape ({n_units},) (one label per unit), got {g.shape}")
    _, inv = np.unique(g, return_inverse=True)
    return inv.reshape(-1), int(inv.max()) + 1


def _counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """How often each of ``n`` items is drawn when drawing ``n`` with replacement, per replicate ``(R, n)``."""
    idx = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]  # offset each replicate's row
    return np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def _weighted_means(v: np.ndarray, seed_w: np.ndarray, unit_w: np.ndarray) -> np.ndarray:
    """Mean over finite cells of each replicate ``(R,)``; ``v (S, W)``, ``seed_w (R, S)``, ``unit_w (R, W)``."""
    finite = np.isfinite(v)
    num = ((seed_w @ np.where(finite, v, 0.0)) * unit_w).sum(1)
    den = ((seed_w @ finite.astype(np.float64)) * unit_w).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den  # NaN where a replicate drew only missing cells


def _interval(point: float, reps: np.ndarray, ci: float) -> dict:
    alpha = (1.0 - ci) / 2
    finite = reps[np.isfinite(reps)]
    if finite.size == 0:
        return {"mean": point, "low": math.nan, "high": math.nan, "se": math.nan}
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return {"mean": point, "low": float(low), "high": float(high), "se": float(finite.std(ddof=1)) if finite.size > 1 else 0.0}


def _check(n_boot: int, ci: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")


def hierarchical_bootstrap(values, *, groups=None, n_boot: int = 2000, seed: int = 0, ci: float = 0.95) -> dict:
    """Grand mean of ``values (S, W)`` with a percentile CI from resampling seeds, then episodes.

    Args:
        values: scores ``(S, W)`` (training seeds × units); a 1-D ``(W,)`` array is one seed. NaN = missing.
        groups: optional episode label per unit ``(W,)``; windows of one episode are drawn together.
        n_boot: bootstrap replicates.
        seed: seed of the resampling generator (same inputs and seed → same interval).
        ci: coverage of the interval.

    Returns:
        ``{"mean", "low", "high", "se", "n_seeds", "n_units", "n_groups"}``: the mean over all finite
        cells, the interval, the bootstrap standard error, and the sizes (``n_units`` = columns W,
        ``n_groups`` = episodes, equal to W without ``groups``).
    """
    _check(n_boot, ci)
    v = _as_matrix(values, "values")
    s, w = v.shape
    inv, g = _group_index(groups, w)
    rng = np.random.default_rng(seed)
    seed_w = _counts(rng, s, n_boot)
    unit_w = _counts(rng, g, n_boot)[:, inv]  # (R, W): every window takes its episode's count
    point = float(np.nanmean(v)) if np.isfinite(v).any() else math.nan
    out = _interval(point, _weighted_means(v, seed_w, unit_w), ci)
    return out | {"n_seeds": s, "n_units": w, "n_groups": g}


def paired_difference(a, b, *, groups=None, paired_seeds: bool = False, n_boot: int = 2000, seed: int = 0,
                      ci: float = 0.95) -> dict:
    """``mean(a) − mean(b)`` with a CI, for two methods scored on the same units.

    Each replicate draws the units (episodes when ``groups`` is given) once and applies the draw to
    both methods, so per-unit difficulty cancels. Seeds are drawn independently per method (the
    seeds of two methods are unrelated runs) unless ``paired_seeds=True``, which requires
    ``S_a == S_b`` and uses one seed draw for both (seed i of ``a`` matched with seed i of ``b``).

    Args:
        a: scores of method A ``(S_a, W)``; NaN = missing.
        b: scores of method B ``(S_b, W)``, same units in the same column order.
        groups, n_boot, seed, ci: as in :func:`hierarchical_bootstrap`.
        paired_seeds: resample seeds jointly (see above).

    Returns:
        ``{"mean", "low", "high", "se", "n_seeds_a", "n_seeds_b", "n_units", "n_groups"}``;
        ``mean`` is ``nanmean(a) − nanmean(b)`` (each method over its own finite cells).
    """
    _check(n_boot, ci)
    va, vb = _as_matrix(a, "a"), _as_matrix(b, "b")
    if va.shape[1] != vb.shape[1]:
        raise ValueError(f"a and b must score the same units, got {va.shape[1]} and {vb.shape[1]} columns")
    if paired_seeds and va.shape[0] != vb.shape[0]:
        raise ValueError(f"paired_seeds=True needs as many seeds in a as in b, got {va.shape[0]} and {vb.shape[0]}")
    w = va.shape[1]
    inv, g = _group_index(groups, w)
    rng = np.random.default_rng(seed)
    unit_w = _counts(rng, g, n_boot)[:, inv]
    seed_a = _counts(rng, va.shape[0], n_boot)
    seed_b = seed_a if paired_seeds else _counts(rng, vb.shape[0], n_boot)
    reps = _weighted_means(va, seed_a, unit_w) - _weighted_means(vb, seed_b, unit_w)
    point = float(np.nanmean(va) - np.nanmean(vb)) if np.isfinite(va).any() and np.isfinite(vb).any() else math.nan
    out = _interval(point, reps, ci)
    return out | {"n_seeds_a": va.shape[0], "n_seeds_b": vb.shape[0], "n_units": w, "n_groups": g}


def verdict(low: float, high: float, *, lower_is_better: bool = True, names: tuple[str, str] = ("A", "B"),
            ci: float = 0.95) -> str:
    """Reading of a CI ``[low, high]`` of the difference A − B: who wins, or a tie if it contains 0."""
    a, b = names
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no verdict (no interval)"
    if high < 0:
        return f"{a} beats {b}" if lower_is_better else f"{b} beats {a}"
    if low > 0:
        return f"{b} beats {a}" if lower_is_better else f"{a} beats {b}"
    return f"tie (the {ci * 100:g} % CI of the difference includes 0)"


def bootstrap_success(successes, *, groups=None, n_boot: int = 2000, seed: int = 0, ci: float = 0.95) -> dict:
    """Success rate of ``successes (S, E)`` (bool, seeds × episodes) with a CI: :func:`hierarchical_bootstrap` on 0/1."""
    s = np.asarray(successes)
    if s.dtype != bool:
        raise ValueError(f"successes must be boolean, got {s.dtype}")
    return hierarchical_bootstrap(s.astype(np.float64), groups=groups, n_boot=n_boot, seed=seed, ci=ci)


def min_detectable_difference(n_a: int, n_b: int, base_rate: float, *, alpha: float = 0.05, power: float = 0.8,
                              direction: str = "up") -> float:
    """Smallest success-rate difference a two-arm comparison detects with the given power.

    Two-sided two-proportion z-test, normal approximation (Fleiss): arm A has ``base_rate`` p₁,
    arm B has p₂ = p₁ ± δ; δ solves
    ``δ = z_{1−α/2} √(p̄q̄ (1/n_a + 1/n_b)) + z_{power} √(p₁q₁/n_a + p₂q₂/n_b)``, with p̄ the
    sample-size-weighted mean rate. Solved by bisection. ``n_a``/``n_b`` are independent
    episodes per arm: when episodes share training seeds, pass an effective size
    (n / design effect), since correlated episodes count for less.

    Returns:
        δ ≥ 0, or ``math.inf`` when even p₂ = 1 (``"up"``) or 0 (``"down"``) is not detectable.
    """
    if n_a < 1 or n_b < 1:
        raise ValueError(f"sample sizes must be >= 1, got n_a={n_a}, n_b={n_b}")
    if not 0.0 <= base_rate <= 1.0:
        raise ValueError(f"base_rate must be in [0, 1], got {base_rate}")
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
    z_a, z_b = NormalDist().inv_cdf(1 - alpha / 2), NormalDist().inv_cdf(power)
    p1, sign = base_rate, (1.0 if direction == "up" else -1.0)

    def shortfall(d: float) -> float:  # > 0 once δ = d is detectable
        p2 = p1 + sign * d
        pbar = (n_a * p1 + n_b * p2) / (n_a + n_b)
        need = z_a * math.sqrt(pbar * (1 - pbar) * (1 / n_a + 1 / n_b)) + z_b * math.sqrt(p1 * (1 - p1) / n_a + p2 * (1 - p2) / n_b)
        return d - need

    hi = 1.0 - p1 if direction == "up" else p1
    if hi <= 0 or shortfall(hi) < 0:
        return math.inf
    lo = 0.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if shortfall(mid) >= 0 else (mid, hi)
    return hi
