"""Markdown tables of evaluation results (``rla.evaluation.evaluate_packs``), for docs and model cards.

``results`` is the dict the evaluation returns: ``methods`` (per row: ``ci``, ``per_chunk``,
``cost``, ``training_seeds``), ``comparisons`` and ``protocol``.
"""
from __future__ import annotations

from rla.labels import METRICS

DIGITS = {"token_l1_moving": 4, "gmsd_fg": 3, "psnr_fg": 2, "ssim_fg": 3, "energy": 4, "token_l1": 4, "lpips": 3}  # table columns
COMPARED = ("token_l1_moving", "gmsd_fg", "psnr_fg", "energy")  # metrics of the paired-difference table
BUDGET_MODELS = {"rla": ["autoencoder", "dynamics"], "regression": ["regression"], "token_flow": ["token_flow"],
                 "regression_matched": ["regression_matched"]}  # a row's method → the pack models it trains


def format_ci(d: dict | None, digits: int = 4, sign: bool = False) -> str:
    """``{"mean", "low", "high"}`` → ``"0.1234 [0.1200, 0.1300]"`` (``"n/a"`` for ``None``); ``sign`` shows + on positives."""
    if d is None:
        return "n/a"
    f = f"{'+' if sign else ''}.{digits}f"
    return f"{d['mean']:{f}} [{d['low']:{f}}, {d['high']:{f}}]"


def budget(entry_name: str, manifest: dict | list[dict]) -> str:
    """Training budget of a row: steps and CPU-seconds (RLA-WM: autoencoder + dynamics).

    ``manifest``: one pack's, or one per training seed; with several, the CPU time is their median
    and its range (one run timed under load does not stand for the method).
    """
    manifests = manifest if isinstance(manifest, list) else [manifest]
    key = "rla" if entry_name.startswith("rla@") else entry_name.split(" ")[0]
    names = BUDGET_MODELS.get(key, [])
    found = [m.get("models", {}) for m in manifests if names and all(n in m.get("models", {}) for n in names)]
    if not found:
        return "—"
    steps = " + ".join(f"{found[0][n]['steps']:,}" for n in names)
    cpu = sorted(sum(models[n]["cpu_seconds"] or 0 for n in names) / 60 for models in found)
    if len(cpu) == 1:
        return f"{steps} steps, {cpu[0]:.0f} CPU-min"
    median = cpu[len(cpu) // 2] if len(cpu) % 2 else (cpu[len(cpu) // 2 - 1] + cpu[len(cpu) // 2]) / 2
    return f"{steps} steps, {median:.0f} CPU-min (median of {len(cpu)} seeds, {cpu[0]:.0f}–{cpu[-1]:.0f})"


def markdown_table(results: dict, manifest: dict | list[dict] | None = None, reported: str | None = None) -> str:
    """One row per method: final-frame means with 95 % CIs, cost and training budget.

    Rows without a CI of the first column, and columns no row has a CI of, are left out.
    """
    methods = results["methods"]
    shown = [m for m in DIGITS if any((e.get("ci") or {}).get(m) for e in methods.values())]
    lines = ["| method | " + " | ".join(f"{METRICS[m].title} {METRICS[m].arrow}" for m in shown) + " | GFLOPs / ms per chunk | training budget |",
             "|" + "---|" * (len(shown) + 3)]
    first = next(iter(DIGITS))
    for name, entry in methods.items():
        ci = entry.get("ci") or {}
        if ci.get(first) is None:
            continue
        cost = entry.get("cost")
        costs = f"{cost['gflops']:.3f} / {cost['ms_median']:.1f}" if cost else "—"
        label = f"**{name}** (reported)" if name == reported else name
        seeds = len(entry.get("training_seeds", []))
        cells = " | ".join(format_ci(ci.get(m), DIGITS[m]) for m in shown)
        lines.append(f"| {label} ({seeds} seed{'s' if seeds != 1 else ''}) | {cells} | {costs} | {budget(name, manifest or {})} |")
    return "\n".join(lines)


def comparison_table(results: dict) -> str:
    """The paired differences ``a − b`` with their CIs and verdicts, on the metrics in :data:`COMPARED`."""
    lines = ["| comparison | metric | mean difference [95 % CI] | verdict |", "|---|---|---|---|"]
    for pair, metrics in results.get("comparisons", {}).items():
        for metric, d in metrics.items():
            if metric in COMPARED:
                lines.append(f"| {pair} | {metric} | {format_ci(d, 4, sign=True)} | {d['verdict']} |")
    return "\n".join(lines)


def per_chunk_table(results: dict, metric: str = "token_l1_moving") -> str:
    """``metric`` after each chunk, one row per method."""
    chunks = results["protocol"]["num_chunks"]
    lines = ["| method | " + " | ".join(f"chunk {i + 1}" for i in range(chunks)) + " |", "|" + "---|" * (chunks + 1)]
    for name, entry in results["methods"].items():
        values = entry["per_chunk"].get(metric)
        if values is not None:
            lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    return "\n".join(lines)
