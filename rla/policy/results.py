"""Policy evaluation results: the JSON one run writes, and the summary over runs (CIs, paired WAM − BC).

One result file (``training.evaluate_policy --out``) holds one policy (or the expert, or zero
actions) on one task and split: a header and one row per episode (reset seed, success-once,
steps). :func:`summarize` groups files by (task, split, arm); an arm's training seeds form the rows
and the reset seeds the columns of a success matrix, and :mod:`rla.stats` gives the hierarchical
bootstrap CI (seeds, then reset seeds). Arms ``wam…`` and ``bc…`` with the same suffix are compared
pairwise on their common training seeds (seed k of both shares initialisation and labelled data,
so seeds are resampled jointly) and common reset seeds.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

KIND = "rla-policy-evaluation"
VERSION = 1
REFERENCE_ARMS = ("expert", "zero")  # rows without training seeds


def load_result(path: str | Path) -> dict:
    """Read one result file; raise ``ValueError`` naming the file if it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable JSON file ({err})") from err
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise ValueError(f"{path}: not a policy evaluation result (kind {data.get('kind') if isinstance(data, dict) else None!r})")
    data["file"] = str(path)
    return data


def find_results(root: str | Path) -> list[Path]:
    """Every result file under ``root`` (``eval*.json``), sorted."""
    root = Path(root)
    return sorted(p for p in root.rglob("eval*.json") if p.is_file()) if root.is_dir() else []


def find_policies(root: str | Path) -> list[dict]:
    """Saved policies under ``root`` (``<task>/<arm>/seed<k>/`` folders with ``config.json`` and weights)."""
    root = Path(root)
    found = []
    if not root.is_dir():
        return found
    for cfg in sorted(root.rglob("config.json")):
        folder = cfg.parent
        if not (folder / "model.safetensors").is_file() or folder.name == "checkpoint":
            continue
        info = {}
        if (folder / "train.json").is_file():
            try:
                info = json.loads((folder / "train.json").read_text())
            except (OSError, json.JSONDecodeError):
                info = {}
        rel = folder.relative_to(root).parts
        found.append({"path": str(folder), "task": info.get("task", rel[0] if rel else "?"),
                      "arm": info.get("arm", rel[1] if len(rel) > 1 else folder.name), "seed": info.get("seed")})
    return found


def _group(results: list[dict]) -> dict:
    groups: dict = {}
    for r in results:
        key = (r["task"], r.get("split", "test"), r["arm"])
        groups.setdefault(key, []).append(r)
    return groups


def success_matrix(runs: list[dict]) -> tuple[np.ndarray, list, list[int]]:
    """``(S, U)`` bool successes of an arm's runs on their common reset seeds; the seeds' labels; the reset seeds.

    Two files of the same training seed (e.g. two halves of the reset seeds) are merged.
    """
    per_seed: dict = {}
    for r in runs:
        rows = per_seed.setdefault(r.get("train_seed"), {})
        for ep in r["episodes"]:
            rows[int(ep["reset_seed"])] = bool(ep["success"])
    common = sorted(set.intersection(*(set(rows) for rows in per_seed.values()))) if per_seed else []
    seeds = sorted(per_seed, key=lambda s: (s is None, s))
    matrix = np.array([[per_seed[s][u] for u in common] for s in seeds], dtype=bool).reshape(len(seeds), len(common))
    return matrix, seeds, common


def _common(matrix: np.ndarray, seeds: list, units: list, keep_seeds: list, keep_units: list) -> np.ndarray:
    """The rows of ``keep_seeds`` and the columns of ``keep_units`` of a (training seed × reset seed) matrix, as floats."""
    return matrix[[seeds.index(s) for s in keep_seeds]][:, [units.index(u) for u in keep_units]].astype(float)


def summarize(results: list[dict], n_boot: int = 2000) -> dict:
    """Per (task, split, arm): success with a CI and per-seed rates; per task: paired WAM − BC differences."""
    from rla.stats import bootstrap_success, min_detectable_difference, paired_difference

    arms = []
    matrices = {}
    for (task, split, arm), runs in sorted(_group(results).items()):
        m, seeds, units = success_matrix(runs)
        matrices[(task, split, arm)] = (m, seeds, units)
        row = {"task": task, "split": split, "arm": arm, "train_seeds": seeds, "episodes_per_seed": len(units),
               "per_seed": [float(x) for x in m.mean(1)] if m.size else [],
               "minutes": [r.get("train", {}).get("minutes") for r in runs if r.get("train")],
               "max_steps": runs[0].get("max_steps")}
        row.update(bootstrap_success(m, n_boot=n_boot) if m.size else {"mean": float("nan"), "low": float("nan"), "high": float("nan")})
        arms.append(row)
    diffs = []
    for (task, split, arm), (ma, seeds_a, units_a) in sorted(matrices.items()):
        if not arm.startswith("wam"):
            continue
        other = (task, split, "bc" + arm[3:])
        if other not in matrices:
            continue
        mb, seeds_b, units_b = matrices[other]
        seeds = [s for s in seeds_a if s in seeds_b]
        units = sorted(set(units_a) & set(units_b))
        if not seeds or not units:
            continue
        a, b = _common(ma, seeds_a, units_a, seeds, units), _common(mb, seeds_b, units_b, seeds, units)
        d = paired_difference(a, b, paired_seeds=True, n_boot=n_boot)
        n = a.size
        d.update(task=task, split=split, arms=(arm, other[2]), train_seeds=seeds, episodes_per_seed=len(units),
                 wam=float(a.mean()), bc=float(b.mean()),
                 min_detectable_up=min_detectable_difference(n, n, float(b.mean()), direction="up"))
        diffs.append(d)
    return {"arms": arms, "differences": diffs}


def _pct(x) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{100 * x:.1f}"


def markdown(summary: dict) -> str:
    """The tables for docs/wam.md: success per task and arm, then the paired differences."""
    lines = ["| task | split | arm | training seeds | episodes / seed | success % [95 % CI] | per seed % | train minutes |",
             "|---|---|---|---|---|---|---|---|"]
    for r in summary["arms"]:
        seeds = "—" if r["train_seeds"] == [None] else ", ".join(str(s) for s in r["train_seeds"])
        minutes = [m for m in r["minutes"] if m is not None]
        mins = f"{np.mean(minutes):.0f}" if minutes else "—"
        lines.append(f"| {r['task']} | {r['split']} | {r['arm']} | {seeds} | {r['episodes_per_seed']} | "
                     f"{_pct(r['mean'])} [{_pct(r['low'])}, {_pct(r['high'])}] | "
                     f"{', '.join(_pct(x) for x in r['per_seed'])} | {mins} |")
    if summary["differences"]:
        lines += ["", "| task | split | difference | training seeds | episodes / seed | points [95 % CI] | "
                  "min. detectable rise (points) |", "|---|---|---|---|---|---|---|"]
        for d in summary["differences"]:
            lines.append(f"| {d['task']} | {d['split']} | {d['arms'][0]} − {d['arms'][1]} | {', '.join(map(str, d['train_seeds']))} | "
                         f"{d['episodes_per_seed']} | {_pct(d['mean'])} [{_pct(d['low'])}, {_pct(d['high'])}] | "
                         f"{_pct(d['min_detectable_up'])} |")
        lines += ["", "Minimum detectable rise: two-proportion test, α = 0.05, power 0.8, from the BC rate, counting every "
                  "episode as independent (optimistic when training seeds differ)."]
    return "\n".join(lines) + "\n"
