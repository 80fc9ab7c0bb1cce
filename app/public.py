"""Which model packs a visitor may load, and the resource bounds of a public deployment.

Locally (the default) the pack box loads any folder or Hub repo id. In **public mode** (``--public``,
on by default on a Hugging Face Space) it loads only the packs the operator offers: the bundled
``assets/pack``, each pack folder in the packs directory (``--packs-dir`` / ``$RLA_PACKS_DIR``)
and the Hub repos named by ``--hub-packs`` / ``$RLA_HUB_PACKS``. A visitor's text is only compared
with those names: it never reaches the filesystem or the network, and every refusal has the same
wording, so nothing can be learnt about the server's files. The threat model is in docs/app.md.
"""
from __future__ import annotations

import json
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from app.errors import user_error
from app.packs import DEFAULT_PACK_DIR, pack_id
from rla import PackError

log = logging.getLogger("rla.app")

MAX_LOCAL_NAME = 4096  # characters in a local path or repo id (Linux PATH_MAX)
MAX_PACK_JSON = 1 << 20  # bytes: a pack.json is a few kB
TITLE = "Model pack"


@dataclass(frozen=True)
class Limits:
    """Resource bounds handed to ``queue()`` and ``launch()``."""

    max_file_size: int | None  # bytes per upload, refused by Gradio's upload route while it streams in
    max_body: int | None  # bytes of any other request body (JSON calls; images sent inline as data: URLs)
    max_queue: int | None  # waiting events; beyond it a visitor is told the app is busy
    max_sessions: int  # sessions whose gr.State is kept in memory (oldest dropped first)
    concurrency: int = 2  # events processed at once per event (the costly ones set their own)

    def queue_kwargs(self) -> dict:
        return {"default_concurrency_limit": self.concurrency, "max_size": self.max_queue}

    def launch_kwargs(self) -> dict:
        kwargs = {"max_file_size": self.max_file_size, "state_session_capacity": self.max_sessions}
        if self.max_body is not None:
            from starlette.middleware import Middleware

            kwargs["app_kwargs"] = {"middleware": [Middleware(BodyLimit, max_bytes=self.max_body)]}
        return kwargs


MB = 1 << 20
# A session's rollout holds at most 40 chunks × 3 methods of tokens and frames (about 32 MB with
# the default pack at its worst), so 100 sessions bound the state to about 3 GB.
PUBLIC_LIMITS = Limits(max_file_size=5 * MB, max_body=1 * MB, max_queue=64, max_sessions=100)
LOCAL_LIMITS = Limits(max_file_size=50 * MB, max_body=None, max_queue=64, max_sessions=1000)
UPLOAD_ROUTES = ("/upload", "/process_recording")  # bounded by max_file_size instead


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` (413) on every route but uploads.

    Gradio bounds uploads, but an image can also arrive inline in a JSON call as a ``data:`` URL,
    which Gradio decodes to a file: without this, such a call writes a file of any size to disk.
    """

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].rstrip("/").endswith(UPLOAD_ROUTES):
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._refuse(send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # a chunked body with no length: stop reading it
                    return {"type": "http.disconnect"}
            return message

        return await self.app(scope, limited, send)

    async def _refuse(self, send):
        body = f"Request too large: at most {self.max_bytes // 1024} kB (upload images as files instead).".encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def check_text(text, limit: int = MAX_LOCAL_NAME) -> str:
    """A pack name from a widget, stripped; ``ValueError`` with a clear reason for malformed text."""
    if not isinstance(text, str):
        raise ValueError(f"a pack name is text, not {type(text).__name__}")
    text = text.strip()
    if not text:
        raise ValueError("no pack name given")
    if len(text) > limit:
        raise ValueError(f"a pack name has at most {limit} characters, this one has {len(text)}")
    if any(unicodedata.category(c)[0] == "C" for c in text):  # NUL, newlines, other control characters
        raise ValueError("a pack name cannot contain control characters")
    return text


def read_pack_json(root: Path) -> dict:
    """``root/pack.json`` as a dict (bounded read); ``PackError`` when missing or unreadable."""
    path = root / "pack.json"
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PACK_JSON + 1)
    except OSError as err:
        raise PackError(f"could not read {path.name}: {err.strerror or type(err).__name__}") from err
    if len(data) > MAX_PACK_JSON:
        raise PackError(f"{path.name} is larger than {MAX_PACK_JSON} bytes")
    try:
        info = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PackError(f"{path.name} is not valid JSON: {err}") from err
    if not isinstance(info, dict):
        raise PackError(f"{path.name} does not describe a pack")
    return info


TIMM_NAME = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)?")  # a timm registry name with its tag, no source prefix


def check_encoder(info: dict) -> None:
    """What a public pack's encoder may ask of timm: a registry name, and no arguments of its own.

    ``model_kwargs`` reach ``timm.create_model`` (a ``pretrained_cfg_overlay`` can name any file or
    URL); a prefixed name (``hf-hub:user/repo``, ``local-dir:/path``) loads from anywhere.
    """
    encoder = info.get("encoder") or {}
    if not isinstance(encoder, dict):
        raise PackError("its encoder description is not an object")
    if encoder.get("model_kwargs"):
        raise PackError("its encoder asks for extra timm.create_model arguments (model_kwargs), "
                        "which a public app does not accept")
    if encoder.get("kind") == "timm" and not TIMM_NAME.fullmatch(str(encoder.get("name", ""))):
        raise PackError("its encoder must be a plain timm model name (like vit_small_patch14_dinov2.lvd142m), "
                        "not a Hub repo or a folder")


@dataclass
class PackPolicy:
    """What the pack box accepts. ``PackPolicy()`` is local mode: any folder or Hub repo id."""

    public: bool = False
    offered: dict = field(default_factory=dict)  # public name → pack key (absolute folder path or Hub repo id)
    _vetted: set = field(default_factory=set, repr=False)  # keys whose pack.json passed check_encoder

    @classmethod
    def public_mode(cls, packs_dir: str | Path | None = None, hub_repos=(), default: str | None = None,
                    bundled: Path = DEFAULT_PACK_DIR) -> PackPolicy:
        """The allowlist, built once at startup from the operator's settings (never from a visitor's text)."""
        offered = {}
        if (bundled / "pack.json").is_file():
            offered["assets/pack"] = str(bundled.resolve())
        root = Path(packs_dir).expanduser() if packs_dir else None
        if root is not None and not root.is_dir():
            log.warning("the packs directory %s does not exist: no packs offered from it", root)
        elif root is not None:
            for p in sorted(p for p in root.iterdir() if (p / "pack.json").is_file()):
                offered.setdefault(p.name, str(p.resolve()))
        for repo in hub_repos:
            repo = check_text(repo, 200)
            if repo.count("/") != 1 or repo.startswith((".", "/", "~")):
                raise ValueError(f"--hub-packs takes Hub repo ids like 'user/name', not {repo!r}")
            offered[repo] = repo
        if default and default not in offered.values():
            path = Path(default)
            offered.setdefault(path.name if path.is_absolute() else default, default)
        return cls(public=True, offered=offered)

    def name_of(self, key: str | None) -> str:
        """What the pack box shows for a pack key: its public name in public mode, else the key."""
        if not key:
            return ""
        if self.public:
            return next((name for name, k in self.offered.items() if k == key), "")
        return key

    def refusal(self) -> gr.Error:
        """The one answer to every pack name public mode does not offer (it reveals nothing about files)."""
        names = ", ".join(f"`{n}`" for n in self.offered) or "none"
        return user_error(f"This app loads only the model packs it offers: {names}.", TITLE)

    def resolve(self, text) -> str:
        """A visitor's pack name → the pack key to load; ``gr.Error`` when it is refused.

        Public mode: an exact match against the offered names and nothing else (no filesystem call,
        no network); then the offered pack's ``pack.json`` is checked once (:func:`check_encoder`),
        which downloads an offered Hub repo first.
        Local mode: any folder or repo id, with a clear message for malformed or unreadable names.
        """
        if not self.public:
            return _local_key(text)
        key = self.offered.get(text.strip()) if isinstance(text, str) else None
        if key is None:
            raise self.refusal()
        try:
            self.vet(key)
        except PackError as err:
            log.warning("refused the offered pack %s: %s", key, err)
            raise user_error(f"The pack `{text.strip()}` cannot be loaded here: {err}.", TITLE) from None
        return key

    def vet(self, key: str) -> None:
        """Public mode: refuse an offered pack whose encoder fails :func:`check_encoder` (``PackError``).

        Folders are read in place; a Hub repo (offered, so trusted to download) is fetched first.
        """
        if not self.public or key in self._vetted:
            return
        path = Path(key)
        if path.is_absolute():
            root = path
        else:
            from rla.pack import resolve_pack

            root = resolve_pack(key)
        check_encoder(read_pack_json(root))
        self._vetted.add(key)


def _local_key(text) -> str:
    try:
        text = check_text(text)
    except ValueError as err:
        raise user_error(f"Enter a pack folder (e.g. assets/pack) or a Hub repo id (user/name): {err}.", TITLE) from None
    try:
        return pack_id(text)
    except OSError as err:  # e.g. a path component over 255 bytes, or a folder we may not read
        raise user_error(f"Cannot use that pack path: {err.strerror or type(err).__name__}.", TITLE) from None
