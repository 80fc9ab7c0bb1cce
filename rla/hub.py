"""Saving and loading models: one ``model.safetensors`` + ``config.json`` per model.

Every trainable model derives from :class:`HubModule` (``nn.Module`` +
``huggingface_hub.PyTorchModelHubMixin``), whose ``__init__`` takes one dataclass ``config``.
:meth:`HubModule.load` wraps ``from_pretrained`` with ``strict=True`` and turns every failure
into a :class:`CheckpointError` that names the file and the problem. Nothing is unpickled:
weights are safetensors, configs JSON.
"""
# No `from __future__ import annotations` here: PyTorchModelHubMixin reads the `config`
# annotation at runtime to rebuild the dataclass from config.json.
import contextlib
import io
import json
from dataclasses import fields
from pathlib import Path

from huggingface_hub import PyTorchModelHubMixin
from torch import nn

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, truncated or does not match its model."""


class HubModule(nn.Module, PyTorchModelHubMixin):
    """Base for every saved model. Subclasses define ``__init__(self, config: SomeConfig)``."""

    config_class: type = None  # set by subclasses

    def save_pretrained(self, save_directory, **kwargs):
        """``model.safetensors`` + ``config.json``, without the mixin's generic ``README.md`` (its
        "More Information Needed" card): model cards are written from the files by
        :mod:`rla.cards` when ``training.publish`` uploads them. A README already there is kept."""
        readme = Path(save_directory) / "README.md"
        kept = readme.exists()
        out = super().save_pretrained(save_directory, **kwargs)
        if not kept:
            readme.unlink(missing_ok=True)
        return out

    @classmethod
    def load(cls, path_or_repo: str | Path, *, revision: str | None = None, local_files_only: bool = False):
        """Load from a local folder or a Hub repo id; raise :class:`CheckpointError` on any problem."""
        path = Path(path_or_repo).expanduser()
        if path.exists():
            _check_folder(path, cls)
        elif _looks_like_path(str(path_or_repo)):
            raise CheckpointError(f"checkpoint folder not found: {path}")
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the mixin prints on every local load
                model = cls.from_pretrained(str(path_or_repo), revision=revision, local_files_only=local_files_only, strict=True)
        except CheckpointError:
            raise
        except Exception as err:
            raise CheckpointError(_explain(err, path_or_repo, cls)) from err
        return model.eval()


def _looks_like_path(s: str) -> bool:
    return s.startswith((".", "/", "~")) or s.count("/") != 1 or "\\" in s


def _check_folder(path: Path, cls: type) -> None:
    """Check a local checkpoint folder before handing it to ``from_pretrained``."""
    if not path.is_dir():
        raise CheckpointError(f"expected a checkpoint folder (with {WEIGHTS_NAME} and {CONFIG_NAME}), got the file {path}")
    for name in (WEIGHTS_NAME, CONFIG_NAME):
        if not (path / name).is_file():
            raise CheckpointError(f"checkpoint {path} has no {name}")
    try:
        cfg = json.loads((path / CONFIG_NAME).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path / CONFIG_NAME} is not valid JSON: {err}") from err
    if cls.config_class is not None and isinstance(cfg, dict):
        known = {f.name for f in fields(cls.config_class)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise CheckpointError(
                f"{path / CONFIG_NAME} does not describe a {cls.__name__}: unknown fields {unknown}"
            )
    from safetensors import safe_open

    try:
        with safe_open(str(path / WEIGHTS_NAME), framework="pt") as f:
            f.keys()
    except Exception as err:
        raise CheckpointError(f"{path / WEIGHTS_NAME} is corrupt or truncated: {err}") from err


def _explain(err: Exception, where, cls: type) -> str:
    text = str(err)
    if "Missing key" in text or "Unexpected key" in text or "size mismatch" in text:
        return f"checkpoint {where} does not match {cls.__name__}: {text[:500]}"
    if type(err).__name__ in ("LocalEntryNotFoundError", "ConnectError", "ConnectTimeout", "OfflineModeIsEnabled"):
        return f"cannot reach the Hugging Face Hub to fetch {where} (offline?), and it is not in the local cache: {text[:300]}"
    if type(err).__name__ in ("RepositoryNotFoundError", "EntryNotFoundError", "RevisionNotFoundError"):
        return f"{where} was not found on the Hub: {text[:300]}"
    return f"could not load {cls.__name__} from {where}: {type(err).__name__}: {text[:500]}"


def file_sha256(path) -> str:
    """sha256 of a file (checkpoints are recorded by it in pack manifests and policy reports)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
