"""rla.probes: ridge probes cross-validated by episode, against nulls that could also score."""
import numpy as np
import pytest

from rla.probes import LinearProbes, choose_alpha, cross_validate, fit_ridge, grouped_folds, pca_scores, r2_terms

EPISODES, PAIRS, A, F = 12, 20, 6, 16


@pytest.fixture(scope="module")
def synthetic():
    """Latents built to encode the action; a residual whose top principal components are nuisance."""
    rng = np.random.default_rng(0)
    m = EPISODES * PAIRS
    groups = np.repeat([f"ep{e}" for e in range(EPISODES)], PAIRS)
    actions = rng.normal(size=(m, A))
    u = actions @ rng.normal(size=(A, F)) + 0.05 * rng.normal(size=(m, F))  # encodes the action
    basis = np.linalg.qr(rng.normal(size=(200, 200)))[0]
    nuisance = 10 * rng.normal(size=(m, F)) @ basis[:, :F].T  # large motion unrelated to the action
    signal = 0.3 * actions @ basis[:, F:F + A].T  # the action, in directions of little variance
    residual = nuisance + signal + 0.01 * rng.normal(size=(m, 200))
    random_u = rng.normal(size=(m, F))  # an untrained encoder's code, independent of the action
    return {"groups": groups, "actions": actions, "u": u, "residual": residual, "random_u": random_u}


def test_the_probe_recovers_an_encoded_action_and_the_nulls_do_not(synthetic):
    s = synthetic
    probe = cross_validate(s["u"], s["actions"], s["groups"])
    assert probe.r2 > 0.95 and probe.folds == 5 and len(probe.alphas) == 5
    assert probe.per_unit.mean() == pytest.approx(probe.r2)
    pca = cross_validate(pca_scores(s["residual"], F), s["actions"], s["groups"])
    rand = cross_validate(s["random_u"], s["actions"], s["groups"])
    assert pca.r2 < 0.1 and rand.r2 < 0.1
    # ... while the raw residual, all 200 dimensions, does hold the action: the PCA null is a fair null
    assert cross_validate(s["residual"], s["actions"], s["groups"]).r2 > 0.8


def test_folds_never_split_an_episode(synthetic):
    groups = synthetic["groups"]
    folds = grouped_folds(groups, 5, seed=3)
    assert sorted(np.concatenate(folds).tolist()) == list(range(len(groups)))
    owners = [set(groups[f]) for f in folds]
    assert all(not (owners[i] & owners[j]) for i in range(5) for j in range(i + 1, 5))
    assert len(grouped_folds(groups[:PAIRS * 3], 5)) == 3  # never more folds than episodes
    with pytest.raises(ValueError, match="at least 2 episodes"):
        grouped_folds(["one"] * 4, 3)


def test_episode_level_leaks_do_not_score():
    """A target that is constant within an episode and features that only identify the episode: pair-level
    cross-validation would score it; cross-validation by episode must not."""
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(10), 15)
    y = rng.normal(size=10)[groups]
    x = rng.normal(size=(10, 8))[groups] + 0.01 * rng.normal(size=(150, 8))
    assert cross_validate(x, y, groups).r2 < 0.1
    assert cross_validate(x, y, np.arange(150)).r2 > 0.9  # the same probe, split by pair


def test_fit_ridge_is_the_closed_form():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 5)) * [1, 2, 3, 4, 5], rng.normal(size=(40, 2))
    r = fit_ridge(x, y, alpha=3.0)
    xs = (x - x.mean(0)) / x.std(0)
    w = np.linalg.solve(xs.T @ xs + 3.0 * np.eye(5), xs.T @ (y - y.mean(0)))
    np.testing.assert_allclose(r.w, w, atol=1e-10)
    np.testing.assert_allclose(r.predict(x), xs @ w + y.mean(0), atol=1e-10)


def test_alpha_is_large_for_noise_and_small_for_signal():
    rng = np.random.default_rng(3)
    x, groups = rng.normal(size=(120, 10)), np.repeat(np.arange(12), 10)
    assert choose_alpha(x, rng.normal(size=120), groups) >= 100  # about the number of rows: shrink to the mean
    assert choose_alpha(x, x @ rng.normal(size=10), groups) <= 1.0


def test_r2_terms():
    y = np.array([[0.0], [1.0], [2.0], [3.0]])
    assert r2_terms(y, y).tolist() == [1.0] * 4
    assert r2_terms(y, np.full_like(y, 1.5)).mean() == pytest.approx(0.0)
    assert np.isnan(r2_terms(np.ones((3, 2)), np.zeros((3, 2)))).all()


def test_pca_scores_keep_the_largest_directions():
    rng = np.random.default_rng(4)
    x = np.c_[10 * rng.normal(size=50), rng.normal(size=50), 0.01 * rng.normal(size=(50, 30))]
    s = pca_scores(x, 2)
    assert s.shape == (50, 2)
    assert abs(np.corrcoef(s[:, 0], x[:, 0])[0, 1]) > 0.99 and abs(np.corrcoef(s[:, 1], x[:, 1])[0, 1]) > 0.95
    assert pca_scores(x[:3], 5).shape == (3, 5)  # fewer rows than dimensions: zero-padded


def test_linear_probes_save_load_and_read(tmp_path, synthetic):
    s = synthetic
    probes = LinearProbes({"action": fit_ridge(s["u"], s["actions"], 1.0), "tcp": fit_ridge(s["u"], s["actions"][:, :3], 2.0)},
                          {"action": (2, 3), "tcp": (3,)}, {"k": 10, "r2": {"action": 0.9}})
    path = probes.save(tmp_path / "probes.npz")
    back = LinearProbes.load(path)
    assert back.k == 10 and back.info["r2"]["action"] == 0.9 and back.targets["tcp"].alpha == 2.0
    for name in probes.targets:
        for part in ("w", "b", "x_mean", "x_scale"):
            np.testing.assert_array_equal(getattr(back.targets[name], part), getattr(probes.targets[name], part))
    read = back.read(s["u"][0].reshape(4, 4))
    assert read["action"].shape == (2, 3) and read["tcp"].shape == (3,)
    np.testing.assert_allclose(read["action"].reshape(-1), probes.targets["action"].predict(s["u"][:1])[0])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a probes file"):
        LinearProbes.load(tmp_path / "bad.npz")
