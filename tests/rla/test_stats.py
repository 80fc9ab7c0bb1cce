import math
import time

import numpy as np
import pytest

from rla.stats import bootstrap_success, hierarchical_bootstrap, min_detectable_difference, paired_difference, verdict


def _coverage(make, n=200, n_boot=1000):
    """Fraction of ``n`` simulated datasets whose CI covers the true mean, and the mean CI width."""
    hits, widths = 0, []
    for i in range(n):
        values, true_mean, groups = make(np.random.default_rng(10_000 + i))
        r = hierarchical_bootstrap(values, groups=groups, seed=i, n_boot=n_boot)
        hits += r["low"] <= true_mean <= r["high"]
        widths.append(r["high"] - r["low"])
    return hits / n, float(np.mean(widths))


def _crossed(rng, seeds=8, units=100, seed_sd=0.5, unit_sd=1.0, noise_sd=0.5):
    """Seed effect + unit effect (shared by all seeds) + noise; true mean 0."""
    return (rng.normal(0, seed_sd, (seeds, 1)) + rng.normal(0, unit_sd, (1, units))
            + rng.normal(0, noise_sd, (seeds, units)))


def _episodes(rng, n_episodes=12, windows=10):
    """Windows of one episode share a large episode effect; returns values (1, E*k) and episode labels."""
    v = np.repeat(rng.normal(0, 1, n_episodes), windows) + rng.normal(0, 0.2, n_episodes * windows)
    return v[None], np.repeat(np.arange(n_episodes), windows)


def test_units_only_coverage_is_nominal():
    cov, _ = _coverage(lambda r: (r.exponential(1.0, (1, 100)), 1.0, None))  # skewed, true mean 1
    assert 0.9 <= cov <= 0.99, cov


def test_crossed_coverage_is_nominal_with_enough_seeds():
    cov, _ = _coverage(lambda r: (_crossed(r, seeds=20, seed_sd=0.3), 0.0, None))  # 0.95 over 600 datasets
    assert 0.9 <= cov <= 0.99, cov


def test_three_seeds_undercover_only_when_seed_variance_matters():
    """The documented caveat. Over 600 datasets: 0.78 with seed sd 0.5, 0.935 with seed sd 0.1."""
    cov, _ = _coverage(lambda r: (_crossed(r, seeds=3, seed_sd=0.5), 0.0, None))
    assert 0.6 <= cov <= 0.88, cov
    cov, _ = _coverage(lambda r: (_crossed(r, seeds=3, seed_sd=0.1), 0.0, None))
    assert 0.9 <= cov <= 0.99, cov


def test_groups_keep_episode_windows_together():
    def grouped(r):
        v, g = _episodes(r)
        return v, 0.0, g

    def ungrouped(r):
        v, _ = _episodes(r)
        return v, 0.0, None

    cov_g, width_g = _coverage(grouped)
    cov_u, width_u = _coverage(ungrouped)
    assert 0.9 <= cov_g <= 0.99, cov_g  # 12 episodes are 12 units, not 240
    assert cov_u < 0.5, cov_u  # treating correlated windows as independent is badly overconfident
    assert width_g > 2 * width_u


def test_groups_draw_whole_episodes():
    # two episodes of very different length: a window-level mean weights them 1:9, and whole-episode
    # draws can only produce the means 0 (ep. 0 twice), 0.9 (each once) or 1 (ep. 1 twice)
    v = np.array([[0.0] + [1.0] * 9])
    g = np.array([0] + [1] * 9)
    r = hierarchical_bootstrap(v, groups=g, n_boot=4000, ci=0.9)
    assert r["mean"] == pytest.approx(0.9)
    assert r["low"] == 0.0 and r["high"] == 1.0
    assert r["n_groups"] == 2 and r["n_units"] == 10 and r["n_seeds"] == 1


def test_seed_variance_widens_the_interval():
    v = _crossed(np.random.default_rng(0), seeds=3, units=300, seed_sd=1.0, noise_sd=0.1)
    hier = hierarchical_bootstrap(v)
    units_only = hierarchical_bootstrap(v.mean(0, keepdims=True))  # seeds treated as fixed
    assert hier["mean"] == pytest.approx(units_only["mean"])
    assert hier["high"] - hier["low"] > 3 * (units_only["high"] - units_only["low"])


def test_one_seed_matches_the_ordinary_bootstrap_se():
    x = np.random.default_rng(1).normal(5, 2, 400)
    r = hierarchical_bootstrap(x, n_boot=4000)  # 1-D = one seed
    assert r["mean"] == pytest.approx(x.mean())
    assert r["se"] == pytest.approx(x.std() / math.sqrt(x.size), rel=0.1)
    assert r["low"] < x.mean() < r["high"]


def test_nan_cells_are_missing_not_zero():
    v = np.array([[1.0, 2.0, np.nan], [3.0, np.nan, 5.0]])
    r = hierarchical_bootstrap(v)
    assert r["mean"] == pytest.approx(11 / 4)
    assert 1.0 <= r["low"] <= r["high"] <= 5.0


def test_deterministic_under_seed():
    v = np.random.default_rng(2).normal(size=(3, 50))
    assert hierarchical_bootstrap(v, seed=7) == hierarchical_bootstrap(v, seed=7)
    assert hierarchical_bootstrap(v, seed=7) != hierarchical_bootstrap(v, seed=8)
    b = v + 0.1
    assert paired_difference(v, b, seed=3) == paired_difference(v, b, seed=3)


def test_fast_enough():
    v = np.random.default_rng(3).normal(size=(3, 300))
    t = time.perf_counter()
    hierarchical_bootstrap(v, n_boot=2000)
    paired_difference(v, v + 0.1, groups=np.arange(300) // 10, n_boot=2000)
    assert time.perf_counter() - t < 1.0


def test_paired_difference_is_much_narrower_with_shared_unit_effects():
    rng = np.random.default_rng(4)
    unit = rng.normal(0, 1, (1, 200))  # per-unit difficulty, shared by both methods
    a = unit + rng.normal(0, 0.05, (3, 200)) + 0.05
    b = unit + rng.normal(0, 0.05, (3, 200))
    d = paired_difference(a, b)
    wa, wb = (hierarchical_bootstrap(x) for x in (a, b))
    unpaired_width = math.hypot(wa["high"] - wa["low"], wb["high"] - wb["low"])
    assert d["high"] - d["low"] < 0.2 * unpaired_width
    assert d["mean"] == pytest.approx(np.mean(a) - np.mean(b))
    assert d["low"] > 0  # the paired CI finds the +0.05 shift ...
    assert wa["low"] < wb["high"]  # ... which the separate intervals cannot tell apart
    assert verdict(d["low"], d["high"], names=("A", "B")) == "B beats A"


def test_paired_seeds():
    rng = np.random.default_rng(5)
    seed_effect = rng.normal(0, 1, (4, 1))  # e.g. a shared data order per seed
    a = seed_effect + rng.normal(0, 0.05, (4, 100)) + 0.1
    b = seed_effect + rng.normal(0, 0.05, (4, 100))
    paired = paired_difference(a, b, paired_seeds=True)
    unpaired = paired_difference(a, b)
    assert paired["high"] - paired["low"] < 0.2 * (unpaired["high"] - unpaired["low"])
    assert paired["low"] > 0
    with pytest.raises(ValueError, match="paired_seeds"):
        paired_difference(a, b[:3], paired_seeds=True)
    r = paired_difference(a, b[:3])  # unpaired seeds may differ in number
    assert r["n_seeds_a"] == 4 and r["n_seeds_b"] == 3 and r["n_units"] == 100


def test_paired_difference_rejects_different_units():
    with pytest.raises(ValueError, match="same units"):
        paired_difference(np.zeros((1, 5)), np.zeros((1, 6)))


def test_verdict_strings():
    assert verdict(-0.3, -0.1) == "A beats B"
    assert verdict(0.1, 0.3) == "B beats A"
    assert verdict(-0.1, 0.2) == "tie (the 95 % CI of the difference includes 0)"
    assert verdict(-0.3, -0.1, lower_is_better=False) == "B beats A"
    assert verdict(0.1, 0.3, lower_is_better=False, names=("RLA-WM", "regression")) == "RLA-WM beats regression"
    assert verdict(0.0, 0.3) == "tie (the 95 % CI of the difference includes 0)"
    assert verdict(math.nan, math.nan) == "no verdict (no interval)"


def test_bootstrap_success():
    s = np.zeros((3, 40), dtype=bool)
    s[:, :10] = True
    r = bootstrap_success(s)
    assert r["mean"] == pytest.approx(0.25)
    assert 0.1 <= r["low"] < 0.25 < r["high"] <= 0.4
    with pytest.raises(ValueError, match="boolean"):
        bootstrap_success(s.astype(int))


def test_min_detectable_difference_inverts_the_sample_size_formula():
    # Fleiss: 0.5 vs 0.7 at alpha 0.05 (two-sided), power 0.8 needs ~93 per arm
    assert min_detectable_difference(93, 93, 0.5) == pytest.approx(0.2, abs=0.002)
    assert min_detectable_difference(400, 400, 0.5) < min_detectable_difference(100, 100, 0.5)
    down = min_detectable_difference(93, 93, 0.7, direction="down")
    assert down == pytest.approx(0.2, abs=0.002)  # same pair of rates seen from the other side
    assert min_detectable_difference(2, 2, 0.5) == math.inf


def test_min_detectable_difference_has_the_stated_power():
    rng = np.random.default_rng(6)
    n, p1 = 200, 0.3
    p2 = p1 + min_detectable_difference(n, n, p1)
    x1, x2 = rng.binomial(n, p1, 20_000) / n, rng.binomial(n, p2, 20_000) / n
    pbar = (x1 + x2) / 2
    z = (x2 - x1) / np.sqrt(pbar * (1 - pbar) * 2 / n)
    assert np.mean(np.abs(z) > 1.959964) == pytest.approx(0.8, abs=0.02)
