"""Frozen timm ViTs (DINOv2, DINOv3, …) as patch-token encoders.

Weights come from, in order: an explicit local file or folder (``weights=PATH``), the local
Hugging Face cache, or the Hub (``timm/<model name>``). With none reachable the constructor
raises :class:`EncoderWeightsError` at once, saying where it looked and how to provide weights;
it never waits on a retry loop and never falls back to random weights silently
(``weights="random"`` asks for them explicitly, for tests and benchmarks).
"""
from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch

from rla.encoders.base import FeatureEncoder, as_uint8_frames, resize_frames
from rla.hub import file_sha256

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


class EncoderWeightsError(RuntimeError):
    """Pretrained encoder weights could not be found or read."""


def _hub_is_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe of the Hub endpoint, so offline machines fail in seconds."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _file_in_folder(folder: Path) -> Path:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise EncoderWeightsError(f"no weight file ({', '.join(WEIGHT_FILES)}) in folder {folder}")


def resolve_timm_weights(name: str, weights: str | Path | None, revision: str | None = None) -> Path:
    """Return a local weight file for timm model ``name``.

    Args:
        name: full timm name with its tag, e.g. ``vit_small_patch14_dinov2.lvd142m``.
        weights: a local ``.safetensors``/``.pth`` file or a folder holding one; ``None`` looks in
            the Hugging Face cache and then on the Hub.
        revision: Hub revision (branch, tag or commit) for ``None`` weights.
    """
    if weights is not None:
        path = Path(weights).expanduser()
        if path.is_dir():
            return _file_in_folder(path)
        if path.is_file():
            return path
        raise EncoderWeightsError(f"encoder weights not found: {path} is neither a file nor a folder")

    import timm
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    cfg = timm.models.get_pretrained_cfg(name)
    repo_id = (cfg.hf_hub_id if cfg is not None else None) or f"timm/{name}"
    filename = (cfg.hf_hub_filename if cfg is not None else None) or "model.safetensors"
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    from huggingface_hub import constants

    where = f"the Hugging Face cache ({constants.HF_HUB_CACHE}) and the Hub repo {repo_id}"
    how = (
        "Connect to the internet once to download them, or pass a local file/folder "
        f"(weights=PATH, e.g. a model.safetensors saved from timm.create_model('{name}', pretrained=True))."
    )
    if not _hub_is_reachable():
        raise EncoderWeightsError(f"no weights for {name}: looked in {where}, and the Hub is unreachable (offline). {how}")
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision))
    except Exception as err:  # network, auth (gated models) or missing-file errors
        raise EncoderWeightsError(f"could not download weights for {name} from {repo_id}: {err}. {how}") from err


class TimmEncoder(FeatureEncoder):
    """Patch tokens (prefix/register tokens dropped) of a frozen timm ViT.

    Args:
        name: full timm model name with tag.
        image_size: square input size; must be a multiple of the patch size.
        weights: local file/folder, ``None`` (Hugging Face cache, then Hub) or ``"random"``.
        revision: Hub revision, recorded in the fingerprint.
        model_kwargs: extra ``timm.create_model`` arguments (e.g. ``depth=2`` for tiny test models).
    """

    def __init__(
        self,
        name: str = "vit_small_patch14_dinov2.lvd142m",
        image_size: int = 224,
        weights: str | Path | None = None,
        revision: str | None = None,
        model_kwargs: dict | None = None,
    ):
        super().__init__()
        import timm

        self.name, self.revision, self.image_size = name, revision, image_size
        kwargs = self.model_kwargs = dict(model_kwargs or {})
        if weights == "random":
            self.weights_tag = "random"
            model = timm.create_model(name, pretrained=False, img_size=image_size, num_classes=0, **kwargs)
        else:
            path = resolve_timm_weights(name, weights, revision)
            self.weights_tag = revision or "main"
            if weights is not None:  # a local file: its content identifies the weights
                self.weights_tag = "sha256-" + file_sha256(path)[:12]
            try:
                model = timm.create_model(
                    name, pretrained=True, img_size=image_size, num_classes=0,
                    pretrained_cfg_overlay=dict(file=str(path)), **kwargs,
                )
            except Exception as err:  # corrupt file, wrong architecture, …
                raise EncoderWeightsError(f"could not load encoder weights {path} into {name}: {err}") from err
        self.model = model.eval().requires_grad_(False)
        self.patch_size = int(model.patch_embed.patch_size[0])
        if image_size % self.patch_size:
            raise ValueError(f"image_size {image_size} is not a multiple of {name}'s patch size {self.patch_size}")
        self.dim = int(model.num_features)
        self.num_prefix_tokens = int(model.num_prefix_tokens)
        cfg = model.pretrained_cfg
        self.register_buffer("mean", torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406))).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.get("std", (0.229, 0.224, 0.225))).view(1, 3, 1, 1), persistent=False)

    @property
    def fingerprint(self) -> str:
        return f"timm:{self.name}@{self.weights_tag}:{self.image_size}px"

    def train(self, mode: bool = True):  # frozen: always stays in eval mode
        return super().train(False)

    @torch.no_grad()
    def encode(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = resize_frames(as_uint8_frames(images), self.image_size).to(self.mean.device)
        tokens = self.model.forward_features((x - self.mean) / self.std)  # (B, P + N, D)
        return tokens[:, self.num_prefix_tokens :].float()
