"""Publish a model pack to the Hugging Face Hub with a model card.

    python -m training.publish --pack assets/pack --repo-id USER/rla-explorer-pack [--private]

The whole pack folder becomes one model repo (each model in its own subfolder with
``model.safetensors`` + ``config.json``); ``README.md`` is the card: what the pack is, its
encoder, its data, the evaluation table and how to load it. ``--dry-run`` writes the card and
lists the files without any network access.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rla.pack import PACK_FILE, resolve_pack

UPLOAD_PATTERNS = ["pack.json", "README.md", "results.json", "evaluation.json", "latent_map.npz", "probes.npz", "*/model.safetensors", "*/config.json"]


def model_card(pack_dir: Path, repo_id: str) -> str:
    info = json.loads((pack_dir / PACK_FILE).read_text())
    enc = info["encoder"]
    encoder = f"timm `{enc['name']}` at {enc['image_size']} px" if enc["kind"] == "timm" else \
        f"pixel patches ({enc['image_size']} px, {enc['patch_size']} px patches; exactly invertible, no weights)"
    models = sorted(p.parent.name for p in pack_dir.glob("*/model.safetensors"))
    table = "No evaluation results in this pack."
    if (pack_dir / "evaluation.json").exists():
        from training.evaluate import markdown_table

        results = json.loads((pack_dir / "evaluation.json").read_text())
        table = f"Command: `{results['protocol'].get('command', 'python -m training.evaluate')}`\n\n{markdown_table(results)}"
    return f"""---
library_name: pytorch
tags: [world-model, latent-action, robotics, maniskill, flow-matching, rla-explorer]
license: mit
---

# {repo_id}

A Residual Latent Action world model pack (RLA-WM, arXiv 2605.07079) made with RLA Explorer.
{info.get('description', '')}

- **Encoder** (frozen, not stored here): {encoder}
- **Models**: {', '.join(f'`{m}/`' for m in models)} — each a `model.safetensors` + `config.json`
- **Actions**: {info['action_dim']}-D `{info['control_mode']}` ({', '.join(info['action_names'])}), chunks of {info['chunk']} steps
- **Data**: ManiSkill 3 tasks {', '.join(info.get('tasks', []))}, scripted-expert episodes (clean and with action noise)

## Evaluation (held-out episodes, final frame after 3 chunks of 10 actions)

{table}

## Load it

```python
from rla import ModelPack
pack = ModelPack.load("{repo_id}")
z = pack.encoder.encode(frame)                      # uint8 (H, W, 3)
z_next = pack.world_model.predict(z, actions)       # actions (1, {info['chunk']}, {info['action_dim']})
image = pack.to_images(z_next)
```

Or run the app on it: `python app.py --pack {repo_id}`.
"""


def files_to_upload(pack_dir: Path) -> list[Path]:
    found = {p for pattern in UPLOAD_PATTERNS for p in pack_dir.glob(pattern)}
    return sorted(p.relative_to(pack_dir) for p in found if "checkpoint" not in p.parts)


def main(argv=None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", required=True, type=Path)
    parser.add_argument("--repo-id", required=True, help="USER/NAME on the Hub")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--dry-run", action="store_true", help="write the card and list the files; no network")
    args = parser.parse_args(argv)
    pack_dir = resolve_pack(args.pack)
    (pack_dir / "README.md").write_text(model_card(pack_dir, args.repo_id))
    files = files_to_upload(pack_dir)
    for f in files:
        print(f"  {f}")
    if args.dry_run:
        print(f"dry run: {len(files)} files would be uploaded to {args.repo_id}")
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
