"""Publish a model pack to the Hugging Face Hub with a model card.

    python -m training.publish --pack assets/pack --repo-id USER/rla-explorer-pack [--private]
    python -m training.publish --pack assets/pack --repo-id USER/rla-explorer-pack --dry-run

The whole pack folder becomes one model repo (each model in its own subfolder with
``model.safetensors`` + ``config.json``); ``README.md`` is the card: what the model is, the paper
and the authors' official code, the training data and budget, the evaluation table with its
confidence intervals, licence and tags. Before anything is uploaded the pack must load
(``ModelPack.load``), every file must be readable (JSON parses, safetensors headers open, each
model folder is complete) and the card must be complete; otherwise nothing is sent and the
command says what is wrong. ``--dry-run`` does all of that and writes the card, with no network.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rla.pack import PACK_FILE, ModelPack, PackError, resolve_pack

UPLOAD_PATTERNS = ["pack.json", "README.md", "results.json", "evaluation.json", "latent_map.npz", "probes.npz",
                   "*/model.safetensors", "*/config.json"]
LICENSE = "mit"
TAGS = ["world-model", "latent-action", "residual-latent-action", "flow-matching", "robotics", "maniskill", "rla-explorer"]
# what /work/shared/reference says of the paper and the authors' release; nothing beyond it
PAPER = {"title": "Learning Visual Feature-Based World Models via Residual Latent Action",
         "authors": "Zhang, Xu, Tao, Wang, She, Boularias", "year": 2026, "arxiv": "2605.07079"}
OFFICIAL_CODE = "https://github.com/mlzxy/rla-wm"
OFFICIAL_WEIGHTS = "https://huggingface.co/xyzhang368/RLA-WM"
PROJECT_PAGE = "https://mlzxy.github.io/rla-wm"
CARD_SECTIONS = ["## What it is", "## Contents", "## Paper and official code", "## Training data", "## Training budget",
                 "## Evaluation", "## Licence", "## Load it"]
ROLES = {"autoencoder": "RLA autoencoder: residual of two frames' tokens → RLA, and (tokens, RLA) → future tokens",
         "dynamics": "flow-matching dynamics: (tokens, action chunk) → RLA, decoded by the autoencoder",
         "regression": "baseline: direct regression of the future tokens",
         "token_flow": "baseline: flow matching directly on the future tokens",
         "rgb_decoder": "feature → RGB decoder (the encoder is not invertible)"}


def _params(model) -> str:
    return f"{sum(p.numel() for p in model.parameters()):,}"


def _encoder_line(info) -> str:
    enc = info.encoder
    if enc.kind == "timm":
        revision = f" @ {enc.revision}" if enc.revision else ""
        return f"timm `{enc.name}` at {enc.image_size} px (frozen; referenced by name{revision}, not stored here)"
    return f"pixel patches ({enc.image_size} px, {enc.patch_size} px patches; exactly invertible, no weights)"


def _data_section(pack: ModelPack) -> str:
    info, splits = pack.info, pack.splits
    lines = [f"ManiSkill 3 tasks: {', '.join(f'`{t}`' for t in info.tasks) or 'not recorded'}; episodes recorded with "
             "`python -m training.collect` (scripted experts, CPU renderer)."]
    if splits is None:
        lines.append("\nThis pack records no train/val/test split (it was built before splits were recorded), so the "
                     "episodes it was trained on are not listed.")
        return "\n".join(lines)
    summary = splits.summary()
    tasks = sorted({t for counts in summary.values() for t in counts})
    lines += ["", "| split | episodes | " + " | ".join(tasks) + " |", "|---|---|" + "---|" * len(tasks)]
    for name, counts in summary.items():
        lines.append(f"| {name} | {sum(counts.values())} | " + " | ".join(str(counts.get(t, 0)) for t in tasks) + " |")
    lines.append("\nThe models were trained on `train`; every choice (gates, ablations) read `val`; the evaluation "
                 "below reads only `test`. Episode ids are in `pack.json` (`splits`).")
    if splits.recordings:
        lines += ["", "| recording | split | task | episodes | reset seeds (first–last) | action noise |", "|---|---|---|---|---|---|"]
        for r in splits.recordings:
            seeds = r.get("seeds")
            if isinstance(seeds, (list, tuple)) and len(seeds) == 2:
                seeds = f"{seeds[0]}–{seeds[1]}"
            lines.append(f"| `{r.get('file', '—')}` | {r.get('split', r.get('purpose', '—'))} | {r.get('task', '—')} | "
                         f"{r.get('episodes', '—')} | {seeds if seeds is not None else '—'} | {r.get('noise', '—')} |")
    return "\n".join(lines)


def _budget_section(info) -> str:
    models = info.manifest.get("models", {})
    if not models:
        return "This pack records no training manifest (steps, CPU time), so its budget is not known."
    lines = []
    if info.preset:
        lines.append(f"Built by `python -m training.pipeline` with the `{info.preset.get('model', '?')}` model preset"
                     f" (training seed {info.manifest.get('seed', '?')}).\n")
    lines += ["| model | optimizer steps | CPU-seconds | batch | EMA | sha256 |", "|---|---|---|---|---|---|"]
    for name, m in models.items():
        cpu = m.get("cpu_seconds")
        lines.append(f"| {name} | {m.get('steps', 0):,} | {f'{cpu:,.0f}' if cpu is not None else '—'} | {m.get('batch_size', '—')} | "
                     f"{m.get('ema', 0.0)} | `{str(m.get('sha256', ''))[:12]}` |")
    return "\n".join(lines)


def _evaluation_section(pack: ModelPack) -> str:
    results = pack.results.get("evaluation", pack.results) if pack.results else {}
    if not results.get("methods"):
        return ("**Not evaluated.** This pack has no `results.json` with evaluation results, so no quality claim is "
                "made for it. Run `python -m training.evaluate --pack PACK --data DATA --out results.json`.")
    if not any(entry.get("ci") for entry in results["methods"].values()):
        return ("**No confidence intervals.** The pack's `results.json` holds an evaluation from before intervals were "
                "computed, so no table is shown here; rerun `python -m training.evaluate` on the test split.")
    from rla.report import markdown_table

    protocol = results.get("protocol", {})
    scope = (f"{len(protocol['episode_ids'])} held-out `{protocol.get('split', 'test')}` episodes"
             if protocol.get("episode_ids") else "held-out episodes")
    windows = f", {protocol['windows']} windows" if protocol.get("windows") else ""
    reported = protocol.get("reported") or results.get("reported")
    return (f"Final frame after {protocol.get('num_chunks', '?')} chunks of {protocol.get('chunk', '?')} actions on {scope}{windows}; "
            "means with 95 % confidence intervals.\n\n"
            f"Command: `{protocol.get('command', 'python -m training.evaluate')}`\n\n"
            f"{markdown_table(results, pack.info.manifest, reported)}")


def model_card(pack: ModelPack, repo_id: str) -> str:
    """The README.md of the Hub repo, from the loaded ``pack``."""
    info = pack.info
    contents = ["| folder | model | parameters | role |", "|---|---|---|---|"]
    parts = {"autoencoder": pack.autoencoder, "dynamics": pack.dynamics, **pack.baselines}
    if pack.rgb_decoder is not None:
        parts["rgb_decoder"] = pack.rgb_decoder
    for name, model in parts.items():
        contents.append(f"| `{name}/` | `{type(model).__name__}` | {_params(model)} | {ROLES.get(name, '')} |")
    ae = pack.autoencoder.config
    extras = []
    if pack.latent_map is not None:
        extras.append(f"`latent_map.npz`: a 2-D map of {len(pack.latent_map.coords):,} training RLAs (for the app)")
    if pack.results:
        extras.append("`results.json`: the evaluation below")
    tags = "\n".join(f"  - {t}" for t in TAGS)
    return f"""---
library_name: pytorch
pipeline_tag: robotics
license: {LICENSE}
tags:
{tags}
---

# {repo_id}

## What it is

An **RLA-WM** (Residual Latent Action world model) pack trained with RLA Explorer, our own
implementation of the paper below (not the authors' weights). {info.description}

Given the feature tokens `z_t` of a frame and a chunk of actions, it predicts the tokens of the frame
after the chunk. The RLA autoencoder compresses the residual between two frames' tokens into a small
latent, the RLA ({ae.num_queries} × {ae.latent_dim} numbers here); the dynamics model samples that RLA by flow
matching, conditioned on `z_t` and the actions, and the autoencoder's decoder turns `(z_t, RLA)` into the
predicted tokens, which the encoder (or an RGB decoder) shows as an image.

## Contents

{chr(10).join(contents)}

- **Encoder**: {_encoder_line(info)}
- **Actions**: {info.action_dim}-D `{info.control_mode}` ({', '.join(info.action_names)}) \
in [{info.action_low}, {info.action_high}], chunks of {info.chunk} steps
{chr(10).join(f'- {e}' for e in extras)}

## Paper and official code

- Paper: *{PAPER['title']}*, {PAPER['authors']} ({PAPER['year']}), [arXiv {PAPER['arxiv']}](https://arxiv.org/abs/{PAPER['arxiv']}).
- The authors' official implementation: [{OFFICIAL_CODE.removeprefix('https://')}]({OFFICIAL_CODE}); their weights and data:
  [{OFFICIAL_WEIGHTS.removeprefix('https://huggingface.co/')}]({OFFICIAL_WEIGHTS}); project page: [{PROJECT_PAGE.removeprefix('https://')}]({PROJECT_PAGE}).
- This pack is smaller and trained on far less data than the paper's models; its numbers are not the paper's.

## Training data

{_data_section(pack)}

## Training budget

{_budget_section(info)}

## Evaluation

{_evaluation_section(pack)}

## Licence

These weights and the RLA Explorer code: MIT. The paper and the authors' code and weights are theirs,
under their own terms; a timm encoder's weights keep their own licence.

## Load it

```python
from rla import ModelPack
pack = ModelPack.load("{repo_id}")
z = pack.encoder.encode(frame)                      # uint8 (H, W, 3)
z_next = pack.world_model.predict(z, actions)       # actions (1, {info.chunk}, {info.action_dim})
image = pack.to_images(z_next)
```

Or run the app on it: `python app.py --pack {repo_id}`.
"""


def files_to_upload(pack_dir: Path) -> list[Path]:
    found = {p for pattern in UPLOAD_PATTERNS for p in pack_dir.glob(pattern)}
    return sorted(p.relative_to(pack_dir) for p in found if "checkpoint" not in p.parts)


def load_for_upload(pack_dir: Path, encoder_weights=None) -> ModelPack:
    """The pack, loaded as a user would load it; ``PackError`` (nothing is uploaded) if it does not load."""
    try:
        return ModelPack.load(pack_dir, encoder_weights=encoder_weights)
    except Exception as err:  # any failure to load means the upload would publish a broken pack
        raise PackError(f"refusing to publish {pack_dir}: it does not load with ModelPack.load "
                        f"({type(err).__name__}: {err}); fix or rebuild the pack first") from err


def problems(pack_dir: Path, files: list[Path], pack: ModelPack, card: str, repo_id: str) -> list[str]:
    """Everything wrong with the files about to be uploaded and the card; empty when all is well."""
    from huggingface_hub import ModelCard
    from safetensors import safe_open

    found = []
    for rel in files:
        path = pack_dir / rel
        if not path.is_file() or path.stat().st_size == 0:
            found.append(f"{rel}: missing or empty")
        elif path.suffix == ".json":
            try:
                json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                found.append(f"{rel}: not valid JSON ({err})")
        elif path.suffix == ".safetensors":
            try:
                with safe_open(str(path), "pt") as f:
                    if not list(f.keys()):
                        found.append(f"{rel}: holds no tensors")
            except Exception as err:  # safetensors raises its own error types
                found.append(f"{rel}: not a readable safetensors file ({err})")
    folders = ["autoencoder", "dynamics", *pack.baselines] + (["rgb_decoder"] if pack.rgb_decoder is not None else [])
    for name in folders:
        for part in ("model.safetensors", "config.json"):
            if Path(name, part) not in files:
                found.append(f"{name}/{part}: the pack uses this model but the file is not in the upload")
    for required in (PACK_FILE, "README.md"):
        if Path(required) not in files:
            found.append(f"{required}: not in the upload")
    meta = ModelCard(card).data.to_dict()  # parses the YAML front matter locally (no Hub validation call)
    for key, want in (("license", LICENSE), ("library_name", "pytorch")):
        if meta.get(key) != want:
            found.append(f"model card: front matter {key} is {meta.get(key)!r}, expected {want!r}")
    if not set(TAGS) <= set(meta.get("tags") or []):
        found.append(f"model card: tags {meta.get('tags')} lack {sorted(set(TAGS) - set(meta.get('tags') or []))}")
    for section in CARD_SECTIONS:
        if f"\n{section}\n" not in card:
            found.append(f"model card: section '{section}' is missing")
    for needle, what in (("More Information Needed", "placeholder text"), ("{", "an unfilled template field")):
        body = card.split("```")[0]  # the code block may use braces
        if needle in body:
            found.append(f"model card: contains {what} ({needle!r})")
    for needle in (f'ModelPack.load("{repo_id}")', OFFICIAL_CODE, f"arxiv.org/abs/{PAPER['arxiv']}"):
        if needle not in card:
            found.append(f"model card: does not mention {needle}")
    return found


def main(argv=None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", required=True, type=Path)
    parser.add_argument("--repo-id", required=True, help="USER/NAME on the Hub")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--encoder-weights", default=None, help="local weights of a timm encoder, to load the pack offline")
    parser.add_argument("--dry-run", action="store_true", help="check the pack, write the card and list the files; no network")
    args = parser.parse_args(argv)
    if not args.pack.exists():
        raise PackError(f"model pack not found: {args.pack} (publish uploads a local pack folder)")
    pack_dir = resolve_pack(args.pack)
    pack = load_for_upload(pack_dir, args.encoder_weights)
    card = model_card(pack, args.repo_id)
    (pack_dir / "README.md").write_text(card)
    files = files_to_upload(pack_dir)
    found = problems(pack_dir, files, pack, card, args.repo_id)
    if found:
        raise PackError(f"refusing to publish {pack_dir}; nothing was uploaded:\n  " + "\n  ".join(found))
    for f in files:
        print(f"  {f}")
    if args.dry_run:
        print(f"dry run: {len(files)} files checked; they would be uploaded to {args.repo_id}")
        return files
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(args.repo_id, repo_type="model", private=args.private, exist_ok=True)
    api.upload_folder(repo_id=args.repo_id, folder_path=str(pack_dir), allow_patterns=[str(f) for f in files],
                      commit_message="Upload RLA Explorer model pack")
    print(f"published https://huggingface.co/{args.repo_id}")
    return files


if __name__ == "__main__":
    from training.common import cli

    cli(main)
