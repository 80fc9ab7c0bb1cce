"""Model packs for the app: which one to start with, loading each once per process, a summary.

Loaded packs are read-only after loading and shared by every session through :class:`PackCache`
(keyed by the pack id: an absolute folder path or a Hub repo id). What a *session* has loaded is
only that id, held in its ``gr.State``.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import gradio as gr

from rla import CheckpointError, EncoderWeightsError, ModelPack, PackError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PACK_DIR = REPO_ROOT / "assets" / "pack"
HOW_TO_GET_A_PACK = (
    "Train the default pack with the scripts in `training/` (it is written to `assets/pack`), "
    "or load a pack folder or a Hugging Face Hub repo id (`user/name`) in the **Model pack** box above."
)


def pack_id(path_or_repo: str | Path) -> str:
    """A stable cache key: the absolute path of a local folder, else the (stripped) repo id."""
    text = str(path_or_repo).strip()
    path = Path(text).expanduser()
    return str(path.resolve()) if path.exists() else text


def default_pack(cli_value: str | None = None) -> str | None:
    """The pack to start with: ``--pack``, else ``$RLA_PACK``, else ``assets/pack`` if it exists."""
    for value in (cli_value, os.environ.get("RLA_PACK")):
        if value and value.strip():
            return pack_id(value)
    return str(DEFAULT_PACK_DIR) if (DEFAULT_PACK_DIR / "pack.json").is_file() else None


class PackCache:
    """At most ``max_packs`` loaded packs, least recently used evicted; safe across threads."""

    def __init__(self, max_packs: int = 2):
        self.max_packs = max_packs
        self._packs: OrderedDict[str, ModelPack] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> ModelPack:
        """The pack for ``key``, loading it on first use; raises :class:`rla.PackError`."""
        key = pack_id(key)
        with self._lock:  # one load at a time; packs are small and loading twice wastes memory
            if key in self._packs:
                self._packs.move_to_end(key)
                return self._packs[key]
            try:
                pack = ModelPack.load(key)
            except (CheckpointError, EncoderWeightsError) as err:
                raise PackError(str(err)) from err
            except OSError as err:  # unreadable files: a clear reason, not a raw OS error
                raise PackError(f"could not read the pack: {err.strerror or type(err).__name__}") from err
            self._packs[key] = pack
            while len(self._packs) > self.max_packs:
                self._packs.popitem(last=False)
            return pack

    def __contains__(self, key: str) -> bool:
        return pack_id(key) in self._packs


PACKS = PackCache()  # process-wide model cache (read-only models), not per-user state


def require_pack(key: str | None) -> ModelPack:
    """The session's pack, or a ``gr.Error`` that says how to get one."""
    if not key:
        raise gr.Error(f"No model pack is loaded. {HOW_TO_GET_A_PACK}", title="No model pack")
    try:
        return PACKS.get(key)
    except PackError as err:
        raise gr.Error(f"Could not load the model pack {key!r}: {err}", title="Model pack") from err


def describe(pack: ModelPack, key: str) -> str:
    """One Markdown line about a loaded pack."""
    info, enc = pack.info, pack.encoder
    name = Path(key).name if Path(key).exists() else key
    baselines = ", ".join(pack.baselines) or "none"
    tasks = ", ".join(info.tasks) or "—"
    rows, cols = enc.grid
    return (
        f"**Pack** `{name}` · encoder `{enc.fingerprint}` ({rows}×{cols} tokens × {enc.dim}) · "
        f"latent action {pack.autoencoder.config.num_queries}×{pack.autoencoder.config.latent_dim} · "
        f"actions {info.action_dim}-D `{info.control_mode}`, chunk {info.chunk} · baselines: {baselines} · tasks: {tasks}"
        + (f"<br>{info.description}" if info.description else "")
    )
