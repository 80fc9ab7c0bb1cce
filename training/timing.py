"""What building the default pack cost: one row per pipeline stage and training job.

    python -m training.timing --work runs/pipeline --out docs/timing.md

Reads what the pipeline left in ``WORK``: the collection logs (``training.collect`` prints the
seconds it took), every training job's report (steps and CPU-seconds of its process) and
``WORK/timing.json`` (wall minutes of the jobs and stages the pipeline ran itself). CPU-seconds
are the budget the evaluation table states; wall minutes depend on what else ran on the machine,
so the table also gives the wall time an idle 2-core machine needs at least: collection plus the
training CPU-seconds spread over the two processes the pipeline runs at a time.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from training.pipeline import PRESETS, jobs_for

COLLECT_LINE = re.compile(r"(\d+) frames in ([\d.]+) s")


def collection_rows(work: Path) -> list[dict]:
    rows = []
    for log in sorted((work / "logs").glob("collect_*.log")):
        match = COLLECT_LINE.search(log.read_text(errors="replace"))
        if match:
            rows.append({"name": log.stem.removeprefix("collect_"), "frames": int(match[1]), "seconds": float(match[2])})
    return rows


def read_timing(work: Path) -> dict:
    return json.loads((work / "timing.json").read_text()) if (work / "timing.json").exists() else {}


def training_rows(work: Path, timing: dict, preset: str = "cpu") -> list[dict]:
    rows = []
    for job in jobs_for(PRESETS[preset], work):
        report = job.out / job.report
        if not report.exists():
            rows.append({"name": job.name, "steps": None, "cpu_seconds": None, "wall_minutes": None})
            continue
        train = json.loads(report.read_text())["train"]
        rows.append({"name": job.name, "steps": train["steps"], "cpu_seconds": train.get("cpu_seconds"),
                     "wall_minutes": timing.get(job.name, {}).get("wall_minutes")})
    return rows


def table(work: Path, preset: str = "cpu") -> str:
    timing = read_timing(work)
    collect, train = collection_rows(work), training_rows(work, timing, preset)
    fmt = lambda v, f: "—" if v is None else format(v, f)  # noqa: E731
    lines = ["| stage / job | steps or frames | CPU-seconds | wall minutes (as run) |", "|---|---|---|---|"]
    for r in collect:
        lines.append(f"| collect {r['name']} | {r['frames']:,} frames | — | {r['seconds'] / 60:.1f} |")
    for r in train:
        lines.append(f"| train {r['name']} | {fmt(r['steps'], ',')} | {fmt(r['cpu_seconds'], ',.0f')} | {fmt(r['wall_minutes'], '.1f')} |")
    for stage in ("assemble", "evaluate", "properties"):
        if stage in timing:
            threads = timing[stage].get("threads", 2)  # files from before the pipeline recorded it: its default, 2
            cpu = f"{timing[stage]['cpu_seconds']:,.0f} ({threads} thread{'s' * (threads != 1)})"
            lines.append(f"| {stage} | — | {cpu} | {timing[stage]['wall_minutes']:.1f} |")
    collect_min = sum(r["seconds"] for r in collect) / 60
    cpu = sum(r["cpu_seconds"] or 0 for r in train)
    missing = [r["name"] for r in train if r["cpu_seconds"] is None]
    done = [s for s in ("assemble", "evaluate", "properties") if s in timing]
    after = sum(timing[s]["wall_minutes"] for s in done)
    not_run = [s for s in ("assemble", "evaluate", "properties") if s not in timing]
    lines += ["", f"Collection {collect_min:.0f} min (one process) · training {cpu:,.0f} CPU-seconds in all = at least "
              f"{cpu / 2 / 60:.0f} min on two one-thread processes · {' + '.join(done) or 'later stages'} {after:.0f} min · "
              f"**at least {collect_min + cpu / 120 + after:.0f} min on an idle 2-core machine**"
              + (f" (not yet trained: {', '.join(missing)})" if missing else "")
              + (f" (not yet run: {', '.join(not_run)})" if not_run else "") + "."]
    return "\n".join(lines)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("runs/pipeline"))
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="markdown file to write")
    args = parser.parse_args(argv)
    text = table(args.work, args.preset)
    print(text)
    if args.out:
        args.out.write_text(f"Command: `python -m training.timing --work {args.work} --preset {args.preset}`\n\n{text}\n")
    return text


if __name__ == "__main__":
    from training.common import cli

    cli(main)
