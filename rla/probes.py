"""Linear probes: what a latent action encodes, scored so that the answer can be "nothing".

A probe is ridge regression from features of a frame pair (the latent action ``u``, flattened) to
a quantity recorded with the pair: the executed action chunk, the end-effector displacement, the
object displacement. It is scored by cross-validation **by episode** (pairs of one episode never sit
on both sides of a split), the ridge penalty chosen by an inner cross-validation inside each
training part, on the out-of-fold predictions::

    result = cross_validate(u.reshape(M, -1), actions.reshape(M, -1), groups=episode_ids)
    result.r2               # variance-weighted R² of the out-of-fold predictions
    result.per_unit         # (M,) per-pair terms whose mean is result.r2 (bootstrap these)

R² here is ``1 − Σ‖y − ŷ‖² / Σ‖y − ȳ‖²`` over pairs and output dimensions (the share of the
target's total variance the probe predicts on held-out episodes; 0 = no better than the mean,
negative = worse). ``per_unit[i] = 1 − ‖y_i − ŷ_i‖² / mean_j ‖y_j − ȳ‖²``, so a bootstrap of its
mean gives an interval for R² that treats the target variance as fixed.

Features for the nulls come from the same pairs: :func:`pca_scores` of the raw residual
``z_{t+k} − z_t`` with as many dimensions as ``u``, and ``u`` of an untrained autoencoder.
:class:`LinearProbes` stores fitted probes in an ``.npz`` (no pickle) for the app.

numpy only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Ridge penalties tried by the inner cross-validation (features are standardised first).
ALPHAS = np.logspace(-2, 6, 17)


def grouped_folds(groups, n_folds: int, seed: int = 0) -> list[np.ndarray]:
    """Held-out row indices of ``n_folds`` folds that never split a group.

    Groups are shuffled (seeded) and dealt to the folds in turn, so fold sizes differ by at most
    one group. Raises ``ValueError`` with fewer than 2 groups.
    """
    labels = np.asarray(groups)
    names = np.unique(labels)
    if len(names) < 2:
        raise ValueError(f"cross-validation by episode needs at least 2 episodes, got {len(names)}")
    n_folds = min(n_folds, len(names))
    order = np.random.default_rng(seed).permutation(len(names))
    fold_of = {names[g]: i % n_folds for i, g in enumerate(order)}
    assignment = np.array([fold_of[g] for g in labels])
    return [np.flatnonzero(assignment == f) for f in range(n_folds)]


@dataclass
class Ridge:
    """A fitted ridge regression on standardised inputs: ``ŷ = ((x − x_mean) / x_scale) @ w + b``."""

    w: np.ndarray  # (F, O)
    b: np.ndarray  # (O,)
    x_mean: np.ndarray  # (F,)
    x_scale: np.ndarray  # (F,) standard deviations (1 where a feature is constant)
    alpha: float  # the ridge penalty

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``x (M, F) → (M, O)``."""
        x = np.asarray(x, dtype=np.float64)
        assert x.ndim == 2 and x.shape[1] == len(self.x_mean), f"x must be (M, {len(self.x_mean)}), got {x.shape}"
        return ((x - self.x_mean) / self.x_scale) @ self.w + self.b


class _Path:
    """One SVD of the standardised training rows, reused for every penalty."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x_mean, self.x_scale = x.mean(0), x.std(0)
        self.x_scale = np.where(self.x_scale > 1e-12, self.x_scale, 1.0)
        self.y_mean = y.mean(0)
        u, self.s, self.vt = np.linalg.svd((x - self.x_mean) / self.x_scale, full_matrices=False)
        self.uty = u.T @ (y - self.y_mean)  # (r, O)

    def weights(self, alpha: float) -> np.ndarray:
        return self.vt.T @ ((self.s / (self.s**2 + alpha))[:, None] * self.uty)  # (F, O)

    def predict(self, x: np.ndarray, alphas) -> np.ndarray:
        """Predictions for every penalty: ``(len(alphas), M, O)``."""
        proj = ((x - self.x_mean) / self.x_scale) @ self.vt.T  # (M, r)
        shrink = self.s[None] / (self.s[None] ** 2 + np.asarray(alphas, dtype=np.float64)[:, None])  # (P, r)
        return np.einsum("mr,pr,ro->pmo", proj, shrink, self.uty) + self.y_mean

    def ridge(self, alpha: float) -> Ridge:
        return Ridge(self.weights(alpha), self.y_mean.copy(), self.x_mean, self.x_scale, float(alpha))


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> Ridge:
    """Ridge regression of ``y (M, O)`` on standardised ``x (M, F)`` with an unpenalised intercept."""
    x, y = _as_2d(x, "x"), _as_2d(y, "y")
    return _Path(x, y).ridge(alpha)


def choose_alpha(x: np.ndarray, y: np.ndarray, groups, alphas=ALPHAS, n_folds: int = 4, seed: int = 0) -> float:
    """The penalty with the least squared error under cross-validation by ``groups``."""
    x, y = _as_2d(x, "x"), _as_2d(y, "y")
    sse = np.zeros(len(alphas))
    for held in grouped_folds(groups, n_folds, seed):
        train = np.setdiff1d(np.arange(len(x)), held)
        pred = _Path(x[train], y[train]).predict(x[held], alphas)  # (P, M_held, O)
        sse += ((pred - y[held][None]) ** 2).sum(axis=(1, 2))
    return float(np.asarray(alphas)[int(np.argmin(sse))])


@dataclass
class ProbeResult:
    """Out-of-fold predictions of a probe and their score."""

    r2: float  # variance-weighted R² of the out-of-fold predictions
    per_unit: np.ndarray  # (M,) per-pair terms, mean = r2
    prediction: np.ndarray  # (M, O) out-of-fold predictions
    alphas: list = field(default_factory=list)  # the penalty chosen in each outer fold
    folds: int = 0


def r2_terms(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per-row terms ``1 − ‖y_i − ŷ_i‖² / mean_j ‖y_j − ȳ‖²`` whose mean is the variance-weighted R² ``(M,)``."""
    y, pred = _as_2d(y, "y"), _as_2d(pred, "pred")
    total = ((y - y.mean(0)) ** 2).sum(1).mean()
    if total <= 0:
        return np.full(len(y), np.nan)  # a constant target: nothing to explain
    return 1.0 - ((y - pred) ** 2).sum(1) / total


def cross_validate(x: np.ndarray, y: np.ndarray, groups, *, alphas=ALPHAS, n_folds: int = 5, inner_folds: int = 4,
                   seed: int = 0) -> ProbeResult:
    """Grouped k-fold ridge probe: the penalty is chosen inside each training part, never on held-out rows.

    Args:
        x: features ``(M, F)``; y: targets ``(M, O)``; groups: a label per row ``(M,)`` (the episode).
    """
    x, y = _as_2d(x, "x"), _as_2d(y, "y")
    groups = np.asarray(groups)
    assert len(x) == len(y) == len(groups), f"rows differ: x {len(x)}, y {len(y)}, groups {len(groups)}"
    pred, chosen = np.zeros_like(y), []
    folds = grouped_folds(groups, n_folds, seed)
    for held in folds:
        train = np.setdiff1d(np.arange(len(x)), held)
        inner = min(inner_folds, len(np.unique(groups[train])))
        alpha = choose_alpha(x[train], y[train], groups[train], alphas, inner, seed + 1) if inner >= 2 else float(np.median(alphas))
        pred[held] = fit_ridge(x[train], y[train], alpha).predict(x[held])
        chosen.append(alpha)
    terms = r2_terms(y, pred)
    return ProbeResult(float(np.mean(terms)), terms, pred, chosen, len(folds))


def pca_scores(x: np.ndarray, dim: int) -> np.ndarray:
    """Coordinates of the rows of ``x (M, F)`` on their top ``dim`` principal components ``(M, dim)``.

    Unsupervised (no targets involved); computed from the ``M × M`` Gram matrix, so ``F`` may be
    large. Fewer than ``dim`` non-trivial components are padded with zero columns.
    """
    x = np.asarray(x, dtype=np.float32)
    xc = x - x.mean(0, dtype=np.float64).astype(np.float32)  # one copy of x (it may be large: M × N·D)
    gram = (xc @ xc.T).astype(np.float64)  # (M, M)
    del xc
    vals, vecs = np.linalg.eigh(gram)
    top = np.argsort(vals)[::-1][:dim]
    scores = vecs[:, top] * np.sqrt(np.clip(vals[top], 0.0, None))  # U S
    if scores.shape[1] < dim:
        scores = np.pad(scores, ((0, 0), (0, dim - scores.shape[1])))
    return scores


class LinearProbes:
    """Fitted probes by target name, read off a latent action; saved as ``.npz`` + a json header.

    ``targets[name]`` is a :class:`Ridge`; ``shapes[name]`` the shape a prediction is reshaped to
    (e.g. ``(K, A)`` for the action chunk); ``info`` holds the horizon ``k``, the features and
    each probe's cross-validated R².
    """

    def __init__(self, targets: dict[str, Ridge], shapes: dict[str, tuple], info: dict):
        self.targets, self.shapes, self.info = targets, {n: tuple(s) for n, s in shapes.items()}, info

    @property
    def k(self) -> int:
        """The horizon (frames between the two of a pair) the probes were fitted at."""
        return int(self.info["k"])

    def read(self, u: np.ndarray) -> dict[str, np.ndarray]:
        """What each probe reads off one latent action ``u (Q, C)`` (or ``(1, Q, C)``): ``{name: shape}``."""
        x = np.asarray(u, dtype=np.float64).reshape(1, -1)
        return {name: r.predict(x)[0].reshape(self.shapes[name]) for name, r in self.targets.items()}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"header": np.array(json.dumps({"info": self.info, "shapes": self.shapes,
                                                  "alphas": {n: r.alpha for n, r in self.targets.items()}}))}
        for name, r in self.targets.items():
            for part in ("w", "b", "x_mean", "x_scale"):
                arrays[f"{name}/{part}"] = getattr(r, part)
        with open(path, "wb") as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> LinearProbes:
        """Read a file written by :meth:`save`; raises ``ValueError`` naming the file if it is not one."""
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(str(data["header"]))
                targets = {name: Ridge(*(data[f"{name}/{p}"] for p in ("w", "b", "x_mean", "x_scale")), alpha=alpha)
                           for name, alpha in header["alphas"].items()}
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(f"{path} is not a probes file written by rla.probes.LinearProbes.save: {err}") from err
        return cls(targets, header["shapes"], header["info"])


def _as_2d(a, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    assert a.ndim == 2, f"{name} must be (M, ·), got {a.shape}"
    return a
