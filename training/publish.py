"""Publish a model pack, or a folder of trained policies, to the Hugging Face Hub with a model card.

    python -m training.publish --pack assets/pack --repo-id USER/rla-explorer-pack [--private]
    python -m training.publish --policies assets/policies/PullCube --repo-id USER/rla-policies-pullcube
    python -m training.publish --policies assets/policies/PullCube --repo-id USER/rla-policies-pullcube --dry-run
    python -m training.publish --pack assets/pack --repo-id USER/rla-explorer-pack --space-readme README.md

The repo is first written as a folder (``--out``, default ``runs/publish/USER__NAME``): the files to
upload, copied, and ``README.md``, the card (:mod:`rla.cards`: what the models are, the paper and
the authors' official code, training data and budget, the evaluation table with its confidence
intervals, licence and tags, every number read from the files). Then that folder is checked, and
only if every check passes is it uploaded:

- a pack: ``model.safetensors`` + ``config.json`` per model, ``pack.json``, ``results.json``, the map
  and the probes; the copy must load with ``ModelPack.load``;
- policies (``<task>/<arm>/seed<k>/`` folders): ``config.json`` + ``model.safetensors`` +
  ``train.json`` (``wmrl.json`` for WMRL) + ``eval_*.json``, never ``checkpoint/``; the reference rows
  (``<task>/expert/``, ``<task>/zero/``) bring their evaluation files. Each copy must load with
  ``rla.wmrl.load_any_policy`` with every tensor bit-identical to its file, and its metadata and
  evaluation files must name the same task, arm, seed and autoencoder; ``--arms`` picks arms.

Every JSON must parse, every safetensors file must open, and the card must be complete; otherwise
nothing is sent and the command lists what is wrong. ``--dry-run`` writes and checks the folder and
prints what would be uploaded, with no network and no token.

``--space-readme README.md`` then names the uploaded repo in the ``models:`` list of that Space
README's front matter (the Hub links the Space to it); the file is read before anything is sent
and written only after the upload succeeded (a dry run says what it would add).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

from rla.pack import PACK_FILE, ModelPack, PackError, resolve_pack

PACK_PATTERNS = ["pack.json", "results.json", "evaluation.json", "latent_map.npz", "probes.npz",
                 "*/model.safetensors", "*/config.json"]
POLICY_FILES = ("config.json", "model.safetensors", "train.json", "wmrl.json")  # and eval*.json
REFERENCE_ARMS = ("expert", "zero")  # evaluation rows without a trained policy
MARKER = ".rla-publish"  # marks a folder this script wrote (and may overwrite); never uploaded
SEED_DIR = re.compile(r"seed(\d+)")


class PublishError(PackError):
    """A refusal to publish: what is wrong; nothing was uploaded."""


# ---- the repo folder --------------------------------------------------------------------------------

def default_out(repo_id: str) -> Path:
    return Path("runs") / "publish" / repo_id.replace("/", "__")


def stage(files: dict[Path, Path], out: Path) -> list[Path]:
    """Copy ``files`` (path in the repo → source file) into ``out``, emptied first; the repo paths, sorted."""
    out = Path(out)
    if out.exists():
        if (out / MARKER).is_file():
            shutil.rmtree(out)
        elif any(out.iterdir()):
            raise PublishError(f"--out {out} exists and was not written by training.publish; pass an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("written by python -m training.publish; safe to delete\n")
    for rel, src in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out / rel)
    return sorted(files)


def file_problems(root: Path, files: list[Path]) -> list[str]:
    """Files that are missing, empty, not JSON or not readable safetensors."""
    from safetensors import safe_open

    found = []
    for rel in files:
        path = root / rel
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
    return found


def refuse_if(found: list[str], what) -> None:
    if found:
        raise PublishError(f"refusing to publish {what}; nothing was uploaded:\n  " + "\n  ".join(found))


# ---- a model pack -----------------------------------------------------------------------------------

def files_to_upload(pack_dir: Path) -> list[Path]:
    found = {p for pattern in PACK_PATTERNS for p in pack_dir.glob(pattern)}
    return sorted(p.relative_to(pack_dir) for p in found if "checkpoint" not in p.parts)


def load_for_upload(pack_dir: Path, encoder_weights=None, shown: Path | None = None) -> ModelPack:
    """The pack, loaded as a user would load it; :class:`PublishError` (nothing is uploaded) if it does not load."""
    try:
        return ModelPack.load(pack_dir, encoder_weights=encoder_weights)
    except Exception as err:  # any failure to load means the upload would publish a broken pack
        raise PublishError(f"refusing to publish {shown or pack_dir}: it does not load with ModelPack.load "
                           f"({type(err).__name__}: {err}); fix or rebuild the pack first") from err


def pack_problems(files: list[Path], pack: ModelPack, card: str, repo_id: str) -> list[str]:
    """Models the pack uses that are not in the upload, and gaps in the card."""
    from rla.cards import PACK_TAGS, card_problems

    found = []
    folders = ["autoencoder", "dynamics", *pack.baselines] + (["rgb_decoder"] if pack.rgb_decoder is not None else [])
    for name in folders:
        for part in ("model.safetensors", "config.json"):
            if Path(name, part) not in files:
                found.append(f"{name}/{part}: the pack uses this model but the file is not in the upload")
    for required in (PACK_FILE, "README.md"):
        if Path(required) not in files:
            found.append(f"{required}: not in the upload")
    return found + card_problems(card, PACK_TAGS, must_mention=[f'ModelPack.load("{repo_id}")'])


def publish_pack(args) -> tuple[Path, list[Path]]:
    """Write and check the repo folder of a pack; its path and files."""
    from rla.cards import pack_card

    if not args.pack.exists():
        raise PublishError(f"model pack not found: {args.pack} (publish uploads a local pack folder)")
    pack_dir = resolve_pack(args.pack)
    files = stage({rel: pack_dir / rel for rel in files_to_upload(pack_dir)}, args.out)
    pack = load_for_upload(args.out, args.encoder_weights, shown=pack_dir)  # the copy: exactly what would be uploaded
    card = pack_card(pack, args.repo_id, files)
    (args.out / "README.md").write_text(card)
    files = sorted([*files, Path("README.md")])
    refuse_if(file_problems(args.out, files) + pack_problems(files, pack, card, args.repo_id), pack_dir)
    return args.out, files


# ---- policies ---------------------------------------------------------------------------------------

def find_policy_folders(root: Path, arms: list[str] | None = None) -> tuple[dict[Path, Path], list[str]]:
    """``{folder in the repo: local folder}`` of every policy and reference row under ``root``, and layout problems.

    ``root`` is a task folder (``assets/policies/PullCube``: its name becomes the repo's top folder)
    or a folder of task folders (``assets/policies``).
    """
    seeds = [d for d in root.rglob("seed*") if d.is_dir() and SEED_DIR.fullmatch(d.name) and "checkpoint" not in d.parts]
    refs = [d for d in root.rglob("*") if d.is_dir() and d.name in REFERENCE_ARMS and "checkpoint" not in d.parts]
    if arms:
        seeds = [d for d in seeds if d.parent.name in arms]
    depths = {len(d.relative_to(root).parts) for d in seeds} | {len(d.relative_to(root).parts) + 1 for d in refs}
    found = []
    if not seeds:
        found.append(f"{root}: no policy folders (<task>/<arm>/seed<k>/)" + (f" of the arms {arms}" if arms else ""))
    if len(depths) > 1 or depths - {2, 3}:
        found.append(f"{root}: expected <task>/<arm>/seed<k>/ folders (or <arm>/seed<k>/ inside a task folder), found "
                     + ", ".join(sorted(str(d.relative_to(root)) for d in seeds + refs)))
    prefix = Path(root.resolve().name) if depths == {2} else Path()
    return {prefix / d.relative_to(root): d for d in sorted(seeds + refs)}, found


def bit_exact_problems(model, weights: Path, where: str) -> list[str]:
    """Tensors of the loaded ``model`` that differ, in any bit, dtype or shape, from those stored in ``weights``."""
    import torch
    from safetensors.torch import load_file

    def bits(t: torch.Tensor) -> torch.Tensor:
        return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)

    stored, state = load_file(str(weights)), model.state_dict()
    found = []
    for key, t in stored.items():
        v = state.get(key)
        if v is None:
            if t.numel() == 0:  # an empty buffer older files kept (a policy without qpos); it holds no value to lose
                continue
            found.append(f"{where}: {key} is in model.safetensors but not in the loaded model")
        elif v.dtype != t.dtype or v.shape != t.shape or not torch.equal(bits(v), bits(t)):
            found.append(f"{where}: {key} loads as {v.dtype} {tuple(v.shape)}, not bit-exactly the stored {t.dtype} {tuple(t.shape)}")
    shared = {state[k].data_ptr() for k in stored if k in state}  # safetensors stores tied tensors once
    missing = [k for k, v in state.items() if k not in stored and v.data_ptr() not in shared]
    if missing:
        found.append(f"{where}: the loaded model has tensors model.safetensors lacks: {missing[:5]}")
    return found


def read_recordings(paths: list[str]) -> dict:
    """Reset seeds of the recordings under ``paths`` (ManiSkill's JSON beside each .h5), by recording stem.

    Recordings that are not on this machine are left out (the card then says it could not read them).
    """
    out = {}
    for p in paths:
        p = Path(p)
        jsons = sorted(p.glob("*.json")) if p.is_dir() else [p.with_suffix(".json")]
        for j in jsons:
            try:
                meta = json.loads(j.read_text())
                episodes = meta["episodes"]
                env_id = meta["env_info"]["env_id"]
            except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                continue
            seed_of = {f"traj_{e['episode_id']}": int(e.get("episode_seed", e.get("reset_kwargs", {}).get("seed")))
                       for e in episodes}
            success = sum(bool((e.get("rla") or {}).get("success_once", e.get("success"))) for e in episodes)
            kwargs = meta["env_info"].get("env_kwargs") or {}
            out[j.stem] = {"task": env_id.split("-v")[0], "seeds": sorted(seed_of.values()), "successes": success, "seed_of": seed_of,
                           "robot": str(kwargs.get("robot_uids", "")).capitalize(), "control_mode": kwargs.get("control_mode")}
    return out


def _policy_meta(folder: Path) -> tuple[str | None, dict | None]:
    for name in ("train.json", "wmrl.json"):
        if (folder / name).is_file():
            try:
                return name, json.loads((folder / name).read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                return name, None
    return None, None


def check_policy(out: Path, rel: Path, problems: list[str]):
    """Load the copy at ``out / rel`` with ``load_any_policy``; a :class:`rla.cards.PolicyEntry` or ``None`` (problems appended)."""
    from rla.cards import PolicyEntry
    from rla.hub import file_sha256
    from rla.wmrl import load_any_policy

    folder = out / rel
    task, arm, seed = rel.parts[-3], rel.parts[-2], int(SEED_DIR.fullmatch(rel.name).group(1))
    name, meta = _policy_meta(folder)
    if meta is None:
        problems.append(f"{rel}/{name}: not valid JSON" if name else f"{rel}: no train.json (or wmrl.json) describing the run")
        return None
    try:
        model = load_any_policy(folder)
    except Exception as err:  # CheckpointError, ValueError from a config, anything: the user's load would fail too
        problems.append(f"{rel}: does not load with rla.wmrl.load_any_policy ({type(err).__name__}: {str(err)[:300]})")
        return None
    problems += bit_exact_problems(model, folder / "model.safetensors", str(rel))
    # the arm is the folder's (a bc_nostate run's train.json says "bc"); task and seed must agree with it
    for key, want in (("task", task), ("seed", seed)):
        if meta.get(key) != want:
            problems.append(f"{rel}/{name} says {key} {meta.get(key)!r}, but the folder is {key} {want!r}: its evaluation rows "
                            f"would be filed under the wrong {key}; fix the folder or retrain with the matching settings")
    config = json.loads((folder / "config.json").read_text())
    return PolicyEntry(path=rel.as_posix(), task=task, arm=arm, seed=seed, model=type(model).__name__,
                       parameters=sum(p.numel() for p in model.parameters()), config=config, info=meta,
                       weights_sha256=file_sha256(folder / "model.safetensors"))


def check_results(out: Path, files: list[Path], entries: dict, problems: list[str]) -> list[dict]:
    """Every evaluation file, loaded; each must name the task, arm and seed of its folder and its policy's autoencoder."""
    from rla.policy.results import load_result

    results = []
    for rel in (f for f in files if f.name.startswith("eval") and f.suffix == ".json"):
        try:
            r = load_result(out / rel)
        except ValueError as err:
            problems.append(f"{rel}: {str(err).removeprefix(str(out / rel) + ': ')}")
            continue
        folder = rel.parent
        seed_match = SEED_DIR.fullmatch(folder.name)
        task, arm = (folder.parts[-3], folder.parts[-2]) if seed_match else (folder.parts[-2], folder.name)
        want = {"task": task, "arm": arm, "train_seed": int(seed_match.group(1)) if seed_match else None}
        for key, value in want.items():
            if r.get(key) != value:
                problems.append(f"{rel} says {key} {r.get(key)!r}, but its folder is {key} {value!r}")
        if not r.get("episodes"):
            problems.append(f"{rel}: holds no episodes")
        entry = entries.get(folder.as_posix())
        made_by = (r.get("train") or {}).get("autoencoder_sha256")
        trained_with = entry.info.get("pack_autoencoder_sha256") if entry else None
        if made_by and trained_with and made_by != trained_with:
            problems.append(f"{rel}: evaluated a policy whose RLA targets came from autoencoder {made_by[:12]}, but the folder's "
                            f"policy used {trained_with[:12]}: the file belongs to another run")
        r["repo_file"] = rel.as_posix()
        results.append(r)
    return results


def publish_policies(args) -> tuple[Path, list[Path]]:
    """Write and check the repo folder of the policies under ``args.policies``; its path and files."""
    from rla.cards import POLICY_TAGS, card_problems, policy_card

    root = args.policies
    if not root.is_dir():
        raise PublishError(f"policy folder not found: {root} (pass e.g. assets/policies/PullCube)")
    folders, problems = find_policy_folders(root, args.arms)
    refuse_if(problems, root)
    files = {}
    for rel, local in folders.items():
        if SEED_DIR.fullmatch(rel.name):
            missing = [n for n in ("config.json", "model.safetensors") if not (local / n).is_file()]
            if missing:
                finished = (local / "train.json").is_file() or (local / "wmrl.json").is_file()
                started = (local / "run.json").is_file() or (local / "checkpoint").is_dir()
                why = ("; the run finished but its weights are not here (git holds seed 0's weights only: publish from the "
                       "machine that trained the others, or leave the arm out with --arms)" if finished
                       else "; its training has not finished (finish it, or leave the arm out with --arms)" if started else "")
                problems.append(f"{rel}: no {' or '.join(missing)}{why}")
                continue
            names = [n for n in POLICY_FILES if (local / n).is_file()]
        else:
            names = []
        names += sorted(p.name for p in local.glob("eval*.json") if p.is_file())
        files.update({rel / n: local / n for n in names})
    refuse_if(problems, root)
    repo_files = stage(files, args.out)
    entries = {}
    for rel in folders:
        if SEED_DIR.fullmatch(rel.name):
            entry = check_policy(args.out, rel, problems)
            if entry is not None:
                entries[entry.path] = entry
    results = check_results(args.out, repo_files, entries, problems)
    for task in sorted({e.task for e in entries.values()}):
        hashes = {e.info.get("pack_autoencoder_sha256") for e in entries.values() if e.task == task} - {None}
        if len(hashes) > 1:
            problems.append(f"{task}: the policies' RLA targets came from {len(hashes)} different autoencoders "
                            f"({', '.join(h[:12] for h in sorted(hashes))}); publish runs of one pack together")
    refuse_if(problems + file_problems(args.out, repo_files), root)
    entry_list = sorted(entries.values(), key=lambda e: (e.task, e.arm, e.seed))
    recordings = read_recordings(sorted({d for e in entry_list for d in e.info.get("data", [])}))
    card = policy_card(entry_list, results, args.repo_id, recordings)
    (args.out / "README.md").write_text(card)
    tags = POLICY_TAGS + (["reinforcement-learning"] if any(e.model == "WMRLPolicy" for e in entry_list) else [])
    must = [args.repo_id, "load_any_policy"] + (["success % [95 % CI]"] if results else [])
    refuse_if(card_problems(card, tags, must_mention=must), root)
    return args.out, sorted([*repo_files, Path("README.md")])


# ---- the Space --------------------------------------------------------------------------------------

def space_card(readme: Path):
    """The Space card (front matter + text) of ``readme``; refused when it is not a Space README."""
    from huggingface_hub import SpaceCard

    if not readme.is_file():
        raise PublishError(f"--space-readme {readme}: no such file")
    card = SpaceCard.load(readme)
    if not card.data.to_dict().get("sdk"):
        raise PublishError(f"--space-readme {readme}: its front matter names no sdk; it is not a Hugging Face Space README")
    return card


def link_space(readme: Path, repo_id: str) -> bool:
    """Add ``repo_id`` to the ``models:`` of the Space README ``readme``; ``False`` when it is already there."""
    card = space_card(readme)
    models = list(card.data.models or [])
    if repo_id in models:
        return False
    card.data.models = [*models, repo_id]
    card.save(readme)
    return True


# ---- the command ------------------------------------------------------------------------------------

def main(argv=None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--pack", type=Path, help="a model pack folder")
    what.add_argument("--policies", type=Path, help="a task folder of policies (assets/policies/PullCube) or a folder of them")
    parser.add_argument("--repo-id", required=True, help="USER/NAME on the Hub")
    parser.add_argument("--arms", nargs="+", default=None, help="with --policies: only these arms (default: every arm found)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the repo folder (default runs/publish/USER__NAME)")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--encoder-weights", default=None, help="local weights of a timm encoder, to load the pack offline")
    parser.add_argument("--dry-run", action="store_true", help="write and check the repo folder, list the files; no network")
    parser.add_argument("--space-readme", type=Path, default=None,
                        help="after the upload, name the repo in this Space README's front matter (models:), e.g. README.md")
    args = parser.parse_args(argv)
    if args.repo_id.count("/") != 1 or not all(args.repo_id.split("/")):
        raise PublishError(f"--repo-id {args.repo_id!r}: expected USER/NAME")
    if args.space_readme is not None:
        space_card(args.space_readme)  # a wrong file is refused before anything is written or sent
    args.out = args.out or default_out(args.repo_id)
    out, files = publish_pack(args) if args.pack is not None else publish_policies(args)
    for f in files:
        print(f"  {f}")
    if args.dry_run:
        print(f"dry run: {len(files)} files checked in {out} (card: {out / 'README.md'}); they would be uploaded to {args.repo_id}")
        if args.space_readme is not None:
            print(f"dry run: {args.repo_id} would be added to the models: of {args.space_readme}")
        return files
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(args.repo_id, repo_type="model", private=args.private, exist_ok=True)
    api.upload_folder(repo_id=args.repo_id, folder_path=str(out), allow_patterns=[f.as_posix() for f in files],
                      commit_message=f"Upload RLA Explorer {'model pack' if args.pack is not None else 'policies'}")
    print(f"published https://huggingface.co/{args.repo_id}")
    if args.space_readme is not None:
        added = link_space(args.space_readme, args.repo_id)
        print(f"{args.space_readme}: models: {'now names' if added else 'already named'} {args.repo_id}")
    return files


if __name__ == "__main__":
    from training.common import cli

    cli(main)
