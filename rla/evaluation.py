"""Prediction-quality evaluation (the paper's Table 1 protocol) with confidence intervals.

From a real start frame, each method rolls out ``num_chunks`` autoregressive chunks of recorded
actions; each chunk end is scored against the real frame there, and the headline is the final
frame. Items are windows (every ``stride`` frames of every test episode, see
:class:`rla.data.ChunkEvalSet`); intervals come from :mod:`rla.stats`, resampling training seeds
and episodes (windows of one episode stay together).

Rows. Stochastic world models (RLA-WM, token flow) are scored three ways, because the image
metrics reward the conditional mean: ``sample`` (one sample; the score averaged over the noise
seeds), ``zero`` (the flow integrated from zero noise) and ``mean<N>`` (the mean of ``N`` decoded
samples per noise seed). Row names: ``rla@S`` (one sample at ``S`` Euler steps), ``rla@S zero``,
``rla@S mean8`` (for ``N = 8``); ``token_flow``, ``token_flow zero``, ``token_flow mean8``; ``regression`` and any
other deterministic baseline; ``copy``, the floor that predicts the start frame; and
``rla_true_latent``, the RLA-WM ceiling that decodes the autoencoder's latent of the real next
frame (it sees the future: the gap to it is the dynamics' share of the error).

Scores (per window, final frame):

- ``token_l1``; ``token_l1_moving`` only over tokens whose real value changed since the start frame
  (most of a tabletop frame never changes, and whole-frame scores reward copying);
- ``ssim_fg``, ``psnr_fg``, ``gmsd_fg`` of the decoded RGB on the foreground (robot and objects,
  from the recorded segmentation, else the changed patches), plus whole-frame ``ssim``/``psnr``;
  GMSD is blur- and speckle-sensitive: the stand-in for LPIPS when AlexNet weights are absent;
- ``lpips`` with local AlexNet weights, else ``None``;
- ``energy`` (moving tokens), the energy score of the ``N`` samples (a proper score for a
  distribution; for deterministic methods it is the RMS error).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rla.cost import measure_cost
from rla.encoders.base import resize_uint8
from rla.labels import LOWER_IS_BETTER
from rla.metrics import energy_score, gmsd, load_lpips, lpips_distance, moving_tokens, psnr, ssim, token_l1
from rla.stats import hierarchical_bootstrap, paired_difference, verdict

METRICS = ("token_l1", "token_l1_moving", "ssim", "ssim_fg", "psnr", "psnr_fg", "gmsd_fg", "lpips", "energy")


@dataclass
class EvalConfig:
    rla_steps: tuple = (1, 3, 10, 30)  # Euler steps the RLA world model is scored at
    noise_seeds: tuple = (100, 101, 102)  # one set of samples per seed for stochastic methods
    num_samples: int = 8  # samples per noise seed: the mean-of-N rows and the energy score
    modes: tuple = ("sample", "zero", "mean")  # rows per stochastic method and step count
    n_boot: int = 2000
    cost: bool = True  # measure FLOPs and ms per chunk
    batch_size: int = 64  # windows per forward pass (times num_samples for the sampled rows)
    later_seed_steps: tuple | None = None  # Euler steps for every pack after the first (None: all of rla_steps)

    def __post_init__(self):
        if not self.noise_seeds or self.num_samples < 1 or any(s < 1 for s in self.rla_steps + tuple(self.later_seed_steps or ())):
            raise ValueError(f"EvalConfig needs noise seeds, num_samples >= 1 and steps >= 1: {self}")
        unknown = set(self.modes) - {"sample", "zero", "mean"}
        if unknown or not self.modes:
            raise ValueError(f"EvalConfig.modes must be among sample, zero, mean: got {self.modes}")


class CopyWorldModel:
    """The floor: predicts that nothing changes."""

    stochastic = False

    def rollout(self, z_0, action_chunks, *, steps=None, generator=None, temperature=1.0):
        return z_0[:, None].expand(-1, action_chunks.shape[1], -1, -1).clone()


class TrueLatentRollout:
    """The ceiling of RLA-WM: each chunk decodes the autoencoder's latent of the real next frame."""

    stochastic = False

    def __init__(self, autoencoder, z_real: torch.Tensor):
        self.autoencoder, self.z_real = autoencoder, z_real  # z_real: (B, C, N, D)

    def windows(self, start: int, stop: int) -> TrueLatentRollout:
        """The ceiling for windows ``start … stop − 1`` only (evaluation runs in batches of windows)."""
        return TrueLatentRollout(self.autoencoder, self.z_real[start:stop])

    def rollout(self, z_0, action_chunks, *, steps=None, generator=None, temperature=1.0):
        z, out = z_0, []
        for c in range(action_chunks.shape[1]):
            z = self.autoencoder.decode(z, self.autoencoder.encode(z, self.z_real[:, c]))
            out.append(z)
        return torch.stack(out, dim=1)


@dataclass
class Row:
    """One scored configuration of one model."""

    model: str  # key of the pack's world models ("rla", "regression", …) or "copy" / "rla_true_latent"
    mode: str = "det"  # det, sample, zero or mean
    steps: int | None = None
    samples: int = 8  # for mode "mean"

    @property
    def name(self) -> str:
        base = f"rla@{self.steps}" if self.model == "rla" else self.model
        return base + {"det": "", "sample": "", "zero": " zero", "mean": f" mean{self.samples}"}[self.mode]


def rows_of(pack, cfg: EvalConfig) -> list[Row]:
    """The rows to score for ``pack``: RLA-WM per step count and mode, the baselines, copy, ceiling."""
    rows = []
    for model, wm in pack.world_models().items():
        if not getattr(wm, "stochastic", False):
            rows.append(Row(model))
            continue
        for steps in (cfg.rla_steps if model == "rla" else (None,)):
            rows += [Row(model, mode, steps, cfg.num_samples) for mode in cfg.modes]
    return rows + [Row("copy"), Row("rla_true_latent")]


@dataclass
class Scores:
    """Per-window scores of one row: ``final[metric] (W,)`` and ``per_chunk[metric] (C, W)``."""

    final: dict = field(default_factory=dict)
    per_chunk: dict = field(default_factory=dict)


def stack_items(items: list[dict]) -> dict:
    out = {k: torch.as_tensor(np.stack([np.asarray(it[k]) for it in items])) for k in ("frame_0", "actions", "frames")}
    fg = [it.get("foreground") for it in items]
    out["foreground"] = torch.as_tensor(np.stack(fg)) if all(f is not None for f in fg) else None
    return out


def _resize_mask(m: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(m[:, None].float(), size=size, mode="nearest")[:, 0] > 0.5


@torch.no_grad()
def score_pack(pack, items: list[dict], cfg: EvalConfig, *, lpips_model=None,
               progress: Callable[[float, str], None] | None = None, row_cache: Path | None = None) -> dict[str, Scores]:
    """Per-window scores of every row of one pack (one training seed).

    With ``row_cache`` (a folder), each row's scores are saved there as soon as they are computed
    and read back instead of recomputed, so an interrupted evaluation resumes at its next row.
    """
    if not items:
        raise ValueError("no evaluation items: pass at least one episode long enough for the chunks")
    batch = stack_items(items)
    w, c = batch["actions"].shape[:2]
    actions = batch["actions"].float()
    z_0 = pack.encoder.encode(batch["frame_0"])  # (W, N, D)
    z_real = pack.encoder.encode(batch["frames"].flatten(0, 1)).view(w, c, *z_0.shape[1:])  # (W, C, N, D)
    moving = moving_tokens(z_0[:, None], z_real, pack.autoencoder.config.change_threshold)  # (W, C, N)
    models = {**pack.world_models(), "copy": CopyWorldModel(), "rla_true_latent": TrueLatentRollout(pack.autoencoder, z_real)}
    rows = rows_of(pack, cfg)
    # (model, steps) → samples (R, W, C, N, D) per noise seed, shared by the sample and mean rows and dropped after
    # the last row that reads them: 400 windows x 24 samples are ~6 GB per step count
    cache: dict = {}
    last_use = {(r.model, r.steps): i for i, r in enumerate(rows) if r.mode in ("sample", "mean")}
    out = {}
    for i, row in enumerate(rows):
        if progress:
            progress(i / len(rows), f"rolling out {row.name}")
        stored = _row_file(row_cache, pack, row) if row_cache is not None else None
        if stored is not None and stored.exists():
            out[row.name] = _load_scores(stored)
        else:
            model = models[row.model]
            if row.mode in ("det", "zero"):
                pred = _rollout(model, z_0, actions, row.steps, None, cfg.batch_size, temperature=0.0 if row.mode == "zero" else 1.0)
                samples = [pred]  # one set of one sample
            else:
                key = (row.model, row.steps)
                if key not in cache:
                    cache[key] = [_rollout(model, z_0, actions, row.steps, seed, cfg.batch_size, num_samples=cfg.num_samples)
                                  for seed in cfg.noise_seeds]
                samples = cache[key]
            out[row.name] = _score(pack, row.mode, samples, z_real, moving, batch, lpips_model)
            if stored is not None:
                _save_scores(out[row.name], stored)
        if last_use.get((row.model, row.steps)) == i:
            cache.pop((row.model, row.steps), None)
    if progress:
        progress(1.0, "done")
    return out


def _rollout(model, z_0, actions, steps, seed, batch_size, num_samples=1, temperature=1.0) -> torch.Tensor:
    """Samples ``(R, W, C, N, D)`` of a rollout, ``batch_size`` windows at a time."""
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    parts = []
    for s in range(0, z_0.shape[0], batch_size):
        z, a = z_0[s:s + batch_size], actions[s:s + batch_size]
        b = z.shape[0]
        z_rep, a_rep = z.repeat(num_samples, 1, 1), a.repeat(num_samples, 1, 1, 1)
        kwargs = {"temperature": temperature} if getattr(model, "stochastic", False) else {}
        part = model.windows(s, s + b) if isinstance(model, TrueLatentRollout) else model
        pred = part.rollout(z_rep, a_rep, steps=steps, generator=gen, **kwargs)  # (R*b, C, N, D)
        parts.append(pred.view(num_samples, b, *pred.shape[1:]))
    return torch.cat(parts, dim=1)


def _score(pack, mode: str, sample_sets: list[torch.Tensor], z_real, moving, batch, lpips_model) -> Scores:
    """Scores averaged over the sample sets (noise seeds): the first sample (``sample``), the mean
    of all samples (``mean``) or the only one (``det``/``zero``); energy over all samples."""
    w, c = z_real.shape[:2]
    per_set = []
    for samples in sample_sets:  # (R, W, C, N, D)
        pred = samples.mean(0) if mode == "mean" else samples[0]
        metrics = _image_and_token_metrics(pack, pred, z_real, moving, batch, lpips_model)
        metrics["energy"] = torch.stack([energy_score(samples[:, :, j], z_real[:, j], moving[:, j]) for j in range(c)])  # (C, W)
        per_set.append(metrics)
    scores = Scores()
    for metric in per_set[0]:
        if per_set[0][metric] is None:
            scores.per_chunk[metric] = scores.final[metric] = None
            continue
        v = torch.stack([m[metric].float() for m in per_set]).mean(0)  # (C, W)
        scores.per_chunk[metric] = v.numpy()
        scores.final[metric] = v[-1].numpy()
    return scores


def _image_and_token_metrics(pack, pred, z_real, moving, batch, lpips_model) -> dict:
    """Metrics ``(C, W)`` of predictions ``pred (W, C, N, D)``."""
    w, c = z_real.shape[:2]
    flat_pred, flat_real, flat_moving = pred.flatten(0, 1), z_real.flatten(0, 1), moving.flatten(0, 1)
    pred_img = pack.to_images(flat_pred)  # (W*C, h, w, 3)
    size = tuple(pred_img.shape[1:3])
    real_img = resize_uint8(batch["frames"].flatten(0, 1), size)
    fg = _foreground(batch["foreground"], moving, pack.encoder.grid, size)
    m = {
        "token_l1": token_l1(flat_pred, flat_real),
        "token_l1_moving": token_l1(flat_pred, flat_real, flat_moving),
        "ssim": ssim(pred_img, real_img), "ssim_fg": ssim(pred_img, real_img, fg),
        "psnr": psnr(pred_img, real_img), "psnr_fg": psnr(pred_img, real_img, fg),
        "gmsd_fg": gmsd(pred_img, real_img, fg),
        "lpips": lpips_distance(lpips_model, pred_img, real_img) if lpips_model is not None else None,
    }
    return {k: None if v is None else v.view(w, c).T for k, v in m.items()}


def _foreground(fg, moving, grid, size):
    """Foreground masks ``(W*C, h, w)``: segmentation if recorded, else the changed patches."""
    if fg is not None:
        return _resize_mask(fg.flatten(0, 1).bool(), size)
    w, c = moving.shape[:2]
    return _resize_mask(moving.flatten(0, 1).view(w * c, *grid), size)


def summarize(per_seed: list[dict[str, Scores]], groups: list, cfg: EvalConfig) -> dict:
    """Combine per-window scores of several training seeds into means with 95 % CIs.

    ``per_seed[s][row]`` are :class:`Scores`; a row missing from a seed (e.g. a baseline trained
    with one seed only) is summarised over the seeds that have it.
    """
    names = list(dict.fromkeys(name for scores in per_seed for name in scores))
    methods = {}
    for name in names:
        seeds = [s for s, scores in enumerate(per_seed) if name in scores]
        entry = {"training_seeds": seeds, "final": {}, "ci": {}, "per_chunk": {}, "per_window": {}}
        for metric in METRICS:
            values = [per_seed[s][name].final.get(metric) for s in seeds]
            if any(v is None for v in values):
                entry["final"][metric] = entry["ci"][metric] = entry["per_chunk"][metric] = None
                continue
            matrix = np.stack(values)  # (S, W)
            ci = _undetermined_if_one_episode(hierarchical_bootstrap(matrix, groups=groups, n_boot=cfg.n_boot), groups)
            entry["final"][metric] = ci["mean"]
            entry["ci"][metric] = {k: ci[k] for k in ("mean", "low", "high")}
            entry["per_chunk"][metric] = np.nanmean(np.stack([per_seed[s][name].per_chunk[metric] for s in seeds]), axis=(0, 2)).tolist()
            entry["per_window"][metric] = matrix.tolist()
        methods[name] = entry
    return methods


def _undetermined_if_one_episode(ci: dict, groups: list) -> dict:
    """A bootstrap over a single episode has no spread to resample: no interval, no verdict."""
    if len(set(groups)) < 2:
        ci = {**ci, "low": float("nan"), "high": float("nan")}
    return ci


def compare(methods: dict, a: str, b: str, groups: list, metrics=METRICS, n_boot: int = 2000) -> dict:
    """Paired differences ``a − b`` per metric (windows paired, seeds resampled per method)."""
    out = {}
    for metric in metrics:
        va, vb = methods[a]["per_window"].get(metric), methods[b]["per_window"].get(metric)
        if va is None or vb is None:
            continue
        d = _undetermined_if_one_episode(paired_difference(np.asarray(va), np.asarray(vb), groups=groups, n_boot=n_boot), groups)
        out[metric] = {k: d[k] for k in ("mean", "low", "high")}
        out[metric]["verdict"] = verdict(d["low"], d["high"], lower_is_better=LOWER_IS_BETTER[metric], names=(a, b))
    return out


def _cache_path(cache_dir, pack, items: list[dict], cfg: EvalConfig, lpips: bool) -> Path | None:
    """The folder of per-window scores for these items and this protocol (a file per row and model weights, :func:`_row_file`)."""
    if cache_dir is None:
        return None
    h = hashlib.sha256(pack.encoder.fingerprint.encode())
    for it in items:
        h.update(str(it.get("episode_id")).encode())
        for key in ("frame_0", "actions", "frames"):
            h.update(np.ascontiguousarray(it[key]).tobytes())
    protocol = {k: v for k, v in asdict(cfg).items() if k not in ("n_boot", "cost", "batch_size", "later_seed_steps")}
    h.update(json.dumps({**protocol, "lpips": lpips}, sort_keys=True, default=list).encode())
    return Path(cache_dir) / f"scores-{h.hexdigest()[:24]}"


def _row_file(row_cache: Path, pack, row: Row) -> Path:
    """One row's score file: named by the row and a hash of the weights of the models it runs (and no others),
    so retraining one baseline recomputes its rows only."""
    models = {"rla": (pack.autoencoder, pack.dynamics), "rla_true_latent": (pack.autoencoder,), "copy": ()}.get(row.model)
    h = hashlib.sha256()
    for model in models if models is not None else (pack.baselines[row.model],):
        for name, t in sorted(model.state_dict().items()):
            h.update(name.encode()), h.update(t.detach().cpu().numpy().tobytes())
    return row_cache / f"{row.name.replace(' ', '_').replace('@', '-')}-{h.hexdigest()[:12]}.json"


def _save_scores(scores: Scores, path: Path) -> None:
    as_list = lambda d: {m: (None if v is None else np.asarray(v).tolist()) for m, v in d.items()}  # noqa: E731
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"final": as_list(scores.final), "per_chunk": as_list(scores.per_chunk)}))
    tmp.replace(path)


def _load_scores(path: Path) -> Scores:
    as_array = lambda d: {m: (None if v is None else np.asarray(v, dtype=np.float64)) for m, v in d.items()}  # noqa: E731
    stored = json.loads(path.read_text())
    return Scores(as_array(stored["final"]), as_array(stored["per_chunk"]))


def evaluate_packs(packs: list, items: list[dict], cfg: EvalConfig | None = None, *, comparisons: list | None = None,
                   lpips_model=None, progress: Callable[[float, str], None] | None = None, cache_dir=None) -> dict:
    """Score every row of every pack (one pack per training seed, the first is the reported one).

    With ``cache_dir``, each pack's per-window scores are saved there row by row as they are computed
    and reused by a later call with the same weights, items and protocol (an interrupted evaluation
    resumes at its next row).

    Returns ``{"protocol", "methods": {row: {final, ci, per_chunk, per_window, training_seeds, steps,
    cost}}, "comparisons": {"A − B": {metric: {mean, low, high, verdict}}}}``.
    """
    cfg = cfg or EvalConfig()
    groups = [it.get("episode_id", i) for i, it in enumerate(items)]
    per_seed = []
    for s, pack in enumerate(packs):
        sub = (lambda f, m, s=s: progress((s + f) / len(packs), f"seed {s}: {m}")) if progress else None
        seed_cfg = replace(cfg, rla_steps=tuple(cfg.later_seed_steps)) if s > 0 and cfg.later_seed_steps else cfg
        row_cache = _cache_path(cache_dir, pack, items, seed_cfg, lpips_model is not None)
        per_seed.append(score_pack(pack, items, seed_cfg, lpips_model=lpips_model, progress=sub, row_cache=row_cache))
    methods = summarize(per_seed, groups, cfg)
    rows = {row.name: row for row in rows_of(packs[0], cfg)}
    models = packs[0].world_models()
    z_0 = packs[0].encoder.encode(stack_items(items[:1])["frame_0"])
    a_0 = torch.as_tensor(np.asarray(items[0]["actions"][0]))[None].float()
    for name, entry in methods.items():
        row = rows.get(name)
        entry["steps"] = row.steps if row else None
        entry["mode"] = row.mode if row else None
        has_cost = cfg.cost and row is not None and row.model in models and row.mode != "mean"
        entry["cost"] = measure_cost(models[row.model], z_0, a_0, steps=row.steps, repeats=10).to_dict() if has_cost else None
    items0 = items[0]
    pairs = comparisons or []
    return {
        "protocol": {"num_chunks": int(np.asarray(items0["actions"]).shape[0]), "chunk": int(np.asarray(items0["actions"]).shape[1]),
                     "windows": len(items), "episodes": len(set(groups)), "training_seeds": len(packs),
                     "noise_seeds": list(cfg.noise_seeds), "num_samples": cfg.num_samples, "encoder": packs[0].encoder.fingerprint,
                     "lpips": lpips_model is not None, "n_boot": cfg.n_boot,
                     "foreground": "segmentation" if items0.get("foreground") is not None else "changed patches"},
        "methods": methods,
        "comparisons": {f"{a} − {b}": compare(methods, a, b, groups, n_boot=cfg.n_boot) for a, b in pairs if a in methods and b in methods},
    }


def evaluate_pack(pack, items: list[dict], *, rla_steps=(1, 3, 10, 30), seed: int = 0, cost: bool = True,
                  noise_seeds: tuple | None = None, modes: tuple = ("sample",), num_samples: int = 1,
                  progress: Callable[[float, str], None] | None = None) -> dict:
    """One pack, a few items (the app's quick evaluation): rows ``rla@S`` and the baselines, one
    noise seed by default. See :func:`evaluate_packs` for the full protocol."""
    cfg = EvalConfig(rla_steps=tuple(rla_steps), noise_seeds=tuple(noise_seeds or (seed,)), modes=modes,
                     num_samples=num_samples, cost=cost, n_boot=500)
    return evaluate_packs([pack], items, cfg, lpips_model=load_lpips(), progress=progress)
