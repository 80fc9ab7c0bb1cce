"""Policy evaluation results: the JSON one run writes, and the summary over runs (CIs, paired WAM − BC).

One result file (``training.evaluate_policy --out``) holds one policy (or the expert, or zero
actions) on one task and split: a header and one row per episode (reset seed, success-once,
steps). :func:`summarize` groups files by (task, split, arm); an arm's training seeds form the rows
and the reset seeds the columns of a success matrix, and :mod:`rla.stats` gives the hierarchical
bootstrap CI (seeds, then reset seeds). Two kinds of paired differences, always on common reset seeds:

- ``wam…`` − ``bc…`` (same suffix): seed k of one with seed k of the other (they share
  initialisation and labelled data), on their common training seeds; seeds resampled jointly.
- ``wmrl…`` − its initial policy: every WMRL run records the policy it fine-tuned (``base``:
  path, sha256, arm, training seed). All RL seeds usually start from one initial policy (seed 0),
  so each RL seed k is paired with that one policy: the initial policy's row is repeated once per
  RL seed and the seeds are resampled jointly, which leaves the initial policy's row fixed and
  resamples the RL seeds (and the reset seeds, shared by both).
"""
from __future__ import annotations

import json
import re
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


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _layout(folder: Path) -> tuple[str | None, str | None]:
    """``(task, arm)`` of a folder laid out as ``<task>/<arm>/seed<k>``, else ``(None, None)``."""
    if re.fullmatch(r"seed\d+", folder.name) and folder.parent.name and folder.parent.parent.name:
        return folder.parent.parent.name, folder.parent.name
    return None, None


def policy_info(folder: str | Path, *, resolve_base: bool = True) -> dict:
    """What a saved policy folder (``config.json`` + ``model.safetensors``) holds.

    Returns ``{"policy_kind": "policy" | "wmrl", "task", "arm", "train_seed", "base"}``. A
    behaviour-cloning / WAM policy (``rla.policy.Policy``) is described by its ``train.json``; a
    WMRL policy (``rla.wmrl.WMRLPolicy``, config with ``residual_scale``) by its ``run.json``
    (``training.train_wmrl``): its training seed is the RL seed and ``base`` names the initial
    policy it fine-tuned (path, sha256 of its weights at training time, and, when that folder is
    still there, its arm and seed, and whether its weights are unchanged). The arm is the folder's
    ``<arm>`` when it is laid out as ``<task>/<arm>/seed<k>`` (e.g. ``bc_nostate``, whose
    ``train.json`` says ``bc``), else the one recorded at training time.
    """
    folder = Path(folder)
    task, arm = _layout(folder)
    config = _read_json(folder / "config.json")
    if "residual_scale" in config:
        run = _read_json(folder / "run.json")
        base = None
        if run.get("policy"):
            base = {"path": run["policy"], "sha256": run.get("policy_sha256"), "arm": None, "train_seed": None, "unchanged": None}
            where = Path(run["policy"])
            if resolve_base and (where / "config.json").is_file():
                from rla.hub import file_sha256

                b = policy_info(where, resolve_base=False)
                weights = where / "model.safetensors"
                base.update(arm=b["arm"], train_seed=b["train_seed"],
                            unchanged=file_sha256(weights) == run.get("policy_sha256") if weights.is_file() else None)
        return {"policy_kind": "wmrl", "task": run.get("task", task), "arm": arm or "wmrl", "train_seed": run.get("seed"),
                "base": base, "pack_autoencoder_sha256": run.get("pack_autoencoder_sha256")}
    info = _read_json(folder / "train.json")
    return {"policy_kind": "policy", "task": info.get("task", task), "arm": arm or info.get("arm", folder.parent.name),
            "train_seed": info.get("seed"), "base": None, "pack_autoencoder_sha256": info.get("pack_autoencoder_sha256")}


def find_policies(root: str | Path) -> list[dict]:
    """Saved policies under ``root`` (``<task>/<arm>/seed<k>/`` folders with ``config.json`` and weights):
    ``path``, ``task``, ``arm``, ``seed`` and ``policy_kind`` (``policy`` or ``wmrl``)."""
    root = Path(root)
    found = []
    if not root.is_dir():
        return found
    for cfg in sorted(root.rglob("config.json")):
        folder = cfg.parent
        if not (folder / "model.safetensors").is_file() or folder.name == "checkpoint":
            continue
        info = policy_info(folder, resolve_base=False)
        rel = folder.relative_to(root).parts
        found.append({"path": str(folder), "task": info["task"] or (rel[0] if rel else "?"), "arm": info["arm"],
                      "seed": info["train_seed"], "policy_kind": info["policy_kind"]})
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


def pairings(results: list[dict], matrices: dict) -> list[dict]:
    """Which arms are compared, and which training seed of one goes with which of the other.

    Returns ``{"task", "split", "arms": (a, b), "seed_pairs": [(seed_a, seed_b), ...], "pairing"}``:
    ``wam…`` with ``bc…`` seed by seed; ``wmrl…`` runs with the initial policy each one records
    (its ``base``), found among the results by the sha256 of its weights, else by arm and seed.
    """
    out = []
    for (task, split, arm), (_, seeds_a, _) in sorted(matrices.items()):
        if arm.startswith("wam") and (task, split, "bc" + arm[3:]) in matrices:
            other = "bc" + arm[3:]
            common = [s for s in seeds_a if s in matrices[(task, split, other)][1]]
            out.append({"task": task, "split": split, "arms": (arm, other), "seed_pairs": [(s, s) for s in common],
                        "pairing": "seed k with seed k"})
        if not arm.startswith("wmrl"):
            continue
        here = [r for r in results if (r["task"], r.get("split", "test")) == (task, split) and not r["arm"].startswith("wmrl")]
        by_sha = {r["sha256"]: (r["arm"], r.get("train_seed")) for r in here if r.get("sha256")}
        bases: dict = {}  # base arm -> [(RL seed, base seed)]
        for r in results:
            if (r["task"], r.get("split", "test"), r["arm"]) != (task, split, arm) or not r.get("base"):
                continue
            b = r["base"]
            arm_b, seed_b = by_sha.get(b.get("sha256")) or (b.get("arm"), b.get("train_seed"))
            # by arm and seed only when no result of that arm and seed names other weights (a retrained or other policy)
            other = any(x.get("sha256") not in (None, b.get("sha256")) for x in here if (x["arm"], x.get("train_seed")) == (arm_b, seed_b))
            if arm_b and not other and (task, split, arm_b) in matrices and seed_b in matrices[(task, split, arm_b)][1]:
                pair = (r.get("train_seed"), seed_b)
                if pair not in bases.setdefault(arm_b, []):
                    bases[arm_b].append(pair)
        for arm_b, pairs in sorted(bases.items()):
            base_seeds = sorted({sb for _, sb in pairs}, key=lambda x: (x is None, x))
            out.append({"task": task, "split": split, "arms": (arm, arm_b), "seed_pairs": sorted(pairs, key=lambda p: (p[0] is None, p[0])),
                        "pairing": f"each RL seed with {arm_b} seed {', '.join(map(str, base_seeds))}, the policy it started from"})
    return out


def summarize(results: list[dict], n_boot: int = 2000) -> dict:
    """Per (task, split, arm): success with a CI and per-seed rates; per task: the paired differences of :func:`pairings`."""
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
    for p in pairings(results, matrices):
        (task, split), (arm_a, arm_b) = (p["task"], p["split"]), p["arms"]
        ma, seeds_a, units_a = matrices[(task, split, arm_a)]
        mb, seeds_b, units_b = matrices[(task, split, arm_b)]
        units = sorted(set(units_a) & set(units_b))
        pairs = p["seed_pairs"]
        if not pairs or not units:
            continue
        # row i of a and row i of b are a pair (b's row repeats when several seeds share one initial policy)
        a = _common(ma, seeds_a, units_a, [sa for sa, _ in pairs], units)
        b = _common(mb, seeds_b, units_b, [sb for _, sb in pairs], units)
        d = paired_difference(a, b, paired_seeds=True, n_boot=n_boot)
        n_b = len({sb for _, sb in pairs}) * len(units)  # independent episodes of b: a repeated row counts once
        d.update(task=task, split=split, arms=(arm_a, arm_b), train_seeds=[sa for sa, _ in pairs], seed_pairs=pairs,
                 pairing=p["pairing"], episodes_per_seed=len(units), rate_a=float(a.mean()), rate_b=float(b.mean()),
                 min_detectable_up=min_detectable_difference(a.size, n_b, float(b.mean()), direction="up"))
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
            seeds = ", ".join(map(str, d["train_seeds"]))
            if d["pairing"] != "seed k with seed k":  # say what was paired
                seeds += f" ({d['pairing']})"
            lines.append(f"| {d['task']} | {d['split']} | {d['arms'][0]} − {d['arms'][1]} | {seeds} | "
                         f"{d['episodes_per_seed']} | {_pct(d['mean'])} [{_pct(d['low'])}, {_pct(d['high'])}] | "
                         f"{_pct(d['min_detectable_up'])} |")
        lines += ["", "Minimum detectable rise: two-proportion test, α = 0.05, power 0.8, from the second arm's rate, counting "
                  "every episode as independent (optimistic when training seeds differ)."]
    return "\n".join(lines) + "\n"
