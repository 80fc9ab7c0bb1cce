"""The probe study of a pack: does a latent action encode the executed actions and the motion of arm and object?

For every held-out pair ``(t, t + k)`` a ridge probe, cross-validated by episode (:mod:`rla.probes`),
reads from the flattened latent action ``u``: the executed action chunk, the end-effector
displacement and the object displacement (from the recorded simulator states,
:mod:`rla.data.states`); the same probes run on two nulls that could also score (a PCA of the raw
residual ``z_{t+k} − z_t`` with as many dimensions as ``u``, and ``u`` from an untrained
autoencoder). Used by ``training.probe`` and ``training.properties``.
"""
from __future__ import annotations

import numpy as np
import torch

from rla.data.episodes import DatasetError
from rla.probes import LinearProbes, choose_alpha, cross_validate, fit_ridge, pca_scores, r2_terms

TARGETS = {"action": "executed action chunk", "tcp": "end-effector displacement", "object": "object displacement"}
FEATURES = {"u": "latent action u", "residual_pca": "null: PCA of z_{t+k} − z_t", "random_ae": "null: untrained autoencoder's u"}


def held_out_episodes(pack, data, split: str = "test") -> tuple[list, str]:
    """The pack's ``split`` episodes among ``data`` (files or folders), with a note saying where they came from.

    Packs without recorded splits get every episode of ``data``. Episodes of tasks the pack does not
    list, or of another action space, are left out (and counted in the note).
    """
    from rla.data import load_episodes

    episodes = load_episodes(data)
    if pack.splits is not None:
        episodes, note = pack.splits.select(episodes, split), f"the pack's recorded {split} split"
    else:
        note = f"every episode in --data ({' '.join(map(str, data))}): this pack records no {split} split"
    keep = [e for e in episodes if e.action_dim == pack.info.action_dim and (not pack.info.tasks or e.task in pack.info.tasks)]
    if len(keep) < len(episodes):
        note += f"; {len(episodes) - len(keep)} episodes of other tasks or action spaces left out"
    if not keep:
        raise DatasetError(f"no {split} episodes of the pack's tasks ({', '.join(pack.info.tasks)}) in {data}")
    return keep, note


@torch.no_grad()
def probe_table(pack, episodes, tokens, k: int, stride: int = 2, seed: int = 0) -> dict:
    """Features and targets of every pair ``(t, t + k)``, ``t = 0, stride, …``.

    Returns ``{"u", "random_ae", "residual"}`` features ``(M, ·)``, targets ``"action" (M, k·A)`` and, when
    every episode has recorded states, ``"tcp", "object" (M, 3)``; ``"groups"``/``"tasks"`` ``(M,)`` and
    ``"states_note"`` (why displacements are missing, or "").
    """
    from rla.autoencoder import RLAAutoencoder
    from rla.data.states import load_states

    torch.manual_seed(seed)
    random_ae = RLAAutoencoder(pack.autoencoder.config).eval()
    rows = {key: [] for key in ("u", "random_ae", "residual", "action", "tcp", "object", "groups", "tasks")}
    states_note = ""
    for ep, z in zip(episodes, tokens):
        ts = list(range(0, ep.num_steps - k + 1, stride))
        if not ts:
            continue
        z_t, z_k = z[ts].float(), z[[t + k for t in ts]].float()  # (P, N, D)
        rows["u"].append(pack.autoencoder.encode(z_t, z_k).flatten(1).numpy())
        rows["random_ae"].append(random_ae.encode(z_t, z_k).flatten(1).numpy())
        rows["residual"].append((z_k - z_t).flatten(1).numpy())
        rows["action"].append(np.stack([ep.actions[t:t + k].reshape(-1) for t in ts]))
        rows["groups"] += [ep.episode_id] * len(ts)
        rows["tasks"] += [ep.task] * len(ts)
        if not states_note:
            try:
                s = load_states(ep)
                rows["tcp"].append(np.stack([s.displacement("tcp", t, t + k) for t in ts]))
                rows["object"].append(np.stack([s.displacement("object", t, t + k) for t in ts]))
            except DatasetError as err:
                states_note = f"no displacement probes: {err}"
    if not rows["u"]:
        raise DatasetError(f"no episode is longer than k = {k} steps: nothing to probe")
    table = {key: np.concatenate(v) if key not in ("groups", "tasks") else np.asarray(v) for key, v in rows.items()
             if key not in ("tcp", "object")}
    if not states_note:
        table["tcp"], table["object"] = np.concatenate(rows["tcp"]), np.concatenate(rows["object"])
    table["states_note"] = states_note
    return table


def run_probes(pack, episodes, tokens, *, k: int | None = None, stride: int = 2, seed: int = 0, n_boot: int = 2000,
               folds: int = 5) -> tuple[dict, LinearProbes]:
    """Cross-validated probes of every target on ``u`` and both nulls, with CIs; probes fitted on all pairs.

    Returns:
        ``(report, probes)``: the report (json-ready) and the :class:`LinearProbes` on ``u``.
    """
    from rla.stats import hierarchical_bootstrap, paired_difference

    k = int(k or pack.info.chunk)
    table = probe_table(pack, episodes, tokens, k, stride, seed)
    groups, tasks = table["groups"], table["tasks"]
    dim = table["u"].shape[1]
    features = {"u": table["u"], "residual_pca": pca_scores(table.pop("residual"), dim), "random_ae": table["random_ae"]}
    report = {"k": k, "stride": stride, "pairs": int(len(groups)), "episodes": int(len(np.unique(groups))),
              "tasks": sorted(set(tasks.tolist())), "latent_dims": int(dim), "folds": folds, "targets": {},
              "states_note": table["states_note"]}
    fitted, shapes = {}, {}
    for target in (t for t in TARGETS if t in table):
        y = table[target]
        res = {name: cross_validate(x, y, groups, n_folds=folds, seed=seed) for name, x in features.items()}
        entry = {"dims": int(y.shape[1]), "features": {}, "vs_nulls": {}, "by_task": {}}
        for name, r in res.items():
            entry["features"][name] = {**hierarchical_bootstrap(r.per_unit, groups=groups, n_boot=n_boot, seed=seed),
                                       "alphas": r.alphas}
        for null in ("residual_pca", "random_ae"):
            entry["vs_nulls"][null] = paired_difference(res["u"].per_unit, res[null].per_unit, groups=groups, n_boot=n_boot, seed=seed)
        spread = ((y - y.mean(0)) ** 2).sum(1).mean()
        for task in report["tasks"]:
            sel = tasks == task
            if ((y[sel] - y[sel].mean(0)) ** 2).sum(1).mean() < 0.01 * spread:
                entry["by_task"][task] = None  # (almost) constant within the task: R² is meaningless
                continue
            entry["by_task"][task] = {name: float(np.nanmean(r2_terms(y[sel], r.prediction[sel]))) for name, r in res.items()}
        entry["shown"] = bool(entry["features"]["u"]["low"] > 0 and all(d["low"] > 0 for d in entry["vs_nulls"].values()))
        report["targets"][target] = entry
        fitted[target] = fit_ridge(table["u"], y, choose_alpha(table["u"], y, groups, seed=seed))
        shapes[target] = (k, pack.info.action_dim) if target == "action" else (3,)
    info = {"k": k, "features": "u (Q×C) flattened", "pairs": report["pairs"], "episodes": report["episodes"],
            "r2": {t: report["targets"][t]["features"]["u"]["mean"] for t in fitted}, "units": {"action": "normalised [-1, 1]",
                                                                                              "tcp": "m", "object": "m"}}
    return report, LinearProbes(fitted, shapes, info)


def render_probes(r: dict) -> str:
    """The probes as a markdown section."""
    ci = lambda d: f"{d['mean']:.2f} [{d['low']:.2f}, {d['high']:.2f}]"  # noqa: E731
    lines = [f"Ridge probes from the latent action `u` ({r['latent_dims']} numbers) of {r['pairs']} pairs (t, t + {r['k']}) "
             f"of {r['episodes']} episodes, {r['folds']}-fold cross-validation by episode (penalty chosen inside the "
             "training folds). R² of the held-out predictions, 95 % CI by episode:", "",
             "| target | u | null: PCA of the residual | null: untrained autoencoder | u − PCA | u − untrained | encoded? |",
             "|---|---|---|---|---|---|---|"]
    for target, e in r["targets"].items():
        f, v = e["features"], e["vs_nulls"]
        lines.append(f"| {TARGETS[target]} ({e['dims']} numbers) | {ci(f['u'])} | {ci(f['residual_pca'])} | {ci(f['random_ae'])} | "
                     f"{ci(v['residual_pca'])} | {ci(v['random_ae'])} | {'**yes**' if e['shown'] else 'not shown'} |")
    lines += ["", "'Encoded' needs the R² of `u` above 0 and above both nulls (each CI of the difference above 0). "
              "The PCA is fitted on the probed pairs themselves (no targets), which favours that null."]
    if r["states_note"]:
        lines += ["", r["states_note"]]
    if r["targets"]:
        first = next(iter(r["targets"].values()))
        by = lambda e, task: "—" if e["by_task"][task] is None else f"{e['by_task'][task]['u']:.2f}"  # noqa: E731
        lines += ["", "R² of `u` by task (the same held-out predictions against each task's own variance; — where the "
                  "target barely varies within the task): "
                  + "; ".join(f"{task}: " + ", ".join(f"{t} {by(e, task)}" for t, e in r["targets"].items())
                              for task in first["by_task"])]
    return "\n".join(lines)
