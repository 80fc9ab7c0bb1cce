"""A model pack: everything the app and the evaluation need, in one folder or Hub repo.

    pack/
      pack.json            PackInfo: encoder spec, action space, tasks, default chunk
      autoencoder/         RLAAutoencoder      (model.safetensors + config.json)
      dynamics/            LatentFlow          (the RLA world model's flow stage)
      regression/          RegressionWorldModel  (optional baseline)
      token_flow/          TokenFlowWorldModel   (optional baseline)
      rgb_decoder/         RGBDecoder          (only for encoders that are not invertible)
      latent_map.npz       LatentMap fitted offline (optional)
      results.json         evaluation results (optional)

The frozen encoder is not saved: ``pack.json`` names it (kind, full timm name, revision, size).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from rla.autoencoder import RLAAutoencoder
from rla.baselines import RegressionWorldModel, TokenFlowWorldModel
from rla.encoders import EncoderSpec, FeatureEncoder, build_encoder
from rla.hub import CheckpointError
from rla.latent_map import LatentMap
from rla.world_model import LatentFlow, RLAWorldModel

PACK_FILE = "pack.json"
BASELINES = {"regression": RegressionWorldModel, "token_flow": TokenFlowWorldModel}


class PackError(RuntimeError):
    """A model pack is missing, unreachable or incomplete."""


@dataclass
class PackInfo:
    encoder: EncoderSpec = field(default_factory=EncoderSpec)
    action_dim: int = 4  # A
    action_names: list = field(default_factory=lambda: ["dx", "dy", "dz", "gripper"])
    action_low: float = -1.0  # env action bounds (normalised controller space)
    action_high: float = 1.0
    control_mode: str = "pd_ee_delta_pos"
    chunk: int = 10  # default actions per predicted chunk
    tasks: list = field(default_factory=list)
    description: str = ""
    splits: dict = field(default_factory=dict)  # rla.data.Splits.to_dict(): train/val/test episode ids + recordings
    preset: dict = field(default_factory=dict)  # the pipeline preset it was built with (models + budgets)
    manifest: dict = field(default_factory=dict)  # what each model was trained on: steps, CPU-seconds, seed, sha256 (+ episodes, config, inputs)

    def __post_init__(self):
        if isinstance(self.encoder, dict):
            self.encoder = EncoderSpec(**self.encoder)
        if len(self.action_names) != self.action_dim:
            raise ValueError(f"PackInfo.action_names has {len(self.action_names)} names for action_dim {self.action_dim}")
        if self.chunk < 1:
            raise ValueError(f"PackInfo.chunk must be >= 1, got {self.chunk}")


class ModelPack:
    """Encoder + RLA autoencoder + flow dynamics (+ baselines, decoder, latent map)."""

    def __init__(self, info: PackInfo, encoder: FeatureEncoder, autoencoder: RLAAutoencoder, dynamics: LatentFlow,
                 baselines: dict | None = None, rgb_decoder=None, latent_map: LatentMap | None = None, results: dict | None = None):
        self.info, self.encoder = info, encoder
        self.autoencoder, self.dynamics = autoencoder.eval(), dynamics.eval()
        self.world_model = RLAWorldModel(autoencoder, dynamics)
        self.baselines = {k: v.eval() for k, v in (baselines or {}).items()}
        self.rgb_decoder, self.latent_map, self.results = rgb_decoder, latent_map, results or {}
        spec = EncoderSpec.of(encoder)
        stored = info.encoder
        if (spec.kind, spec.name, spec.image_size, spec.patch_size) != (stored.kind, stored.name, stored.image_size, stored.patch_size):
            raise PackError(f"PackInfo.encoder {info.encoder} does not describe the pack's encoder {spec}")
        if autoencoder.config.num_tokens != encoder.num_tokens or autoencoder.config.token_dim != encoder.dim:
            raise PackError(f"the autoencoder expects {autoencoder.config.num_tokens}x{autoencoder.config.token_dim} tokens, "
                            f"the encoder makes {encoder.num_tokens}x{encoder.dim}")
        if not encoder.invertible and rgb_decoder is None:
            raise PackError(f"encoder {encoder.fingerprint} is not invertible and the pack has no rgb_decoder")

    @property
    def splits(self):
        """The recorded :class:`rla.data.Splits`, or ``None`` for packs built before splits were recorded."""
        from rla.data.splits import Splits

        return Splits(**self.info.splits) if self.info.splits else None

    def world_models(self) -> dict:
        """Every world model of the pack by name: ``rla`` first, then the baselines."""
        return {"rla": self.world_model, **self.baselines}

    @torch.no_grad()
    def to_images(self, z: torch.Tensor) -> torch.Tensor:
        """Tokens ``(B, N, D)`` → uint8 frames ``(B, H, W, 3)``."""
        if self.encoder.invertible:
            return self.encoder.decode(z)
        return self.rgb_decoder.decode(z)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        info = asdict(self.info)
        (path / PACK_FILE).write_text(json.dumps(info, indent=2))
        self.autoencoder.save_pretrained(path / "autoencoder")
        self.dynamics.save_pretrained(path / "dynamics")
        for name, model in self.baselines.items():
            model.save_pretrained(path / name)
        if self.rgb_decoder is not None:
            self.rgb_decoder.save_pretrained(path / "rgb_decoder")
        if self.latent_map is not None:
            self.latent_map.save(path / "latent_map.npz")
        if self.results:
            (path / "results.json").write_text(json.dumps(self.results, indent=2))
        return path

    @classmethod
    def from_presets(cls, preset: str, encoder: FeatureEncoder, *, baselines: tuple = tuple(BASELINES),
                     model_kwargs: dict | None = None, **info) -> ModelPack:
        """An untrained pack: ``encoder`` and every model of the named size (``rla.presets.model_configs``:
        ``tiny``, ``cpu``, ``paper``) shaped for its tokens and ``info``'s action space.

        ``info`` holds :class:`PackInfo` fields (the encoder's is filled in); ``model_kwargs`` go to
        ``model_configs``. Models are built in the order autoencoder, dynamics, then ``baselines``, so a
        seeded run gets the same initial weights every time.
        """
        from rla.presets import model_configs

        pack_info = PackInfo(encoder=EncoderSpec.of(encoder), **info)
        cfg = model_configs(preset, encoder.num_tokens, encoder.dim, pack_info.action_dim, **(model_kwargs or {}))
        autoencoder, dynamics = RLAAutoencoder(cfg["autoencoder"]), LatentFlow(cfg["dynamics"])
        return cls(pack_info, encoder, autoencoder, dynamics, {name: BASELINES[name](cfg[name]) for name in baselines})

    @classmethod
    def load(cls, path_or_repo: str | Path, *, revision: str | None = None, encoder_weights=None) -> ModelPack:
        """Load from a local folder or a Hub repo id (downloaded once into the Hugging Face cache)."""
        root = resolve_pack(path_or_repo, revision)
        try:
            info = PackInfo(**json.loads((root / PACK_FILE).read_text()))
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            raise PackError(f"{root / PACK_FILE} is not a valid pack description: {err}") from err
        try:
            autoencoder = RLAAutoencoder.load(root / "autoencoder")
            dynamics = LatentFlow.load(root / "dynamics")
            baselines = {name: klass.load(root / name) for name, klass in BASELINES.items() if (root / name).exists()}
            rgb_decoder = None
            if (root / "rgb_decoder").exists():
                from rla.rgb_decoder import RGBDecoder

                rgb_decoder = RGBDecoder.load(root / "rgb_decoder")
        except CheckpointError as err:
            raise PackError(f"pack {path_or_repo}: {err}") from err
        encoder = build_encoder(info.encoder, weights=encoder_weights)
        latent_map, results = None, {}
        try:
            if (root / "latent_map.npz").exists():
                latent_map = LatentMap.load(root / "latent_map.npz")
        except Exception as err:  # zip/npz errors come in many types
            raise PackError(f"{root / 'latent_map.npz'} is corrupt or truncated ({type(err).__name__}: {err}); "
                            "rebuild it with training.pipeline or delete it to load the pack without a map") from err
        try:
            if (root / "results.json").exists():
                results = json.loads((root / "results.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise PackError(f"{root / 'results.json'} is corrupt or truncated ({err}); rerun training.evaluate "
                            "or delete it to load the pack without stored results") from err
        return cls(info, encoder, autoencoder, dynamics, baselines, rgb_decoder, latent_map, results)


def resolve_pack(path_or_repo: str | Path, revision: str | None = None) -> Path:
    """A local folder holding ``pack.json``: the path itself, or a Hub snapshot of a repo id."""
    path = Path(path_or_repo).expanduser()
    if path.exists():
        if not (path / PACK_FILE).is_file():
            raise PackError(f"{path} is not a model pack: it has no {PACK_FILE}")
        return path
    text = str(path_or_repo)
    if text.count("/") != 1 or text.startswith((".", "/", "~")):
        raise PackError(f"model pack not found: {text} is not a folder, nor a Hub repo id like 'user/name'")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(text, revision=revision, local_files_only=True))
    except Exception:
        pass  # not cached yet
    from rla.encoders.timm_encoder import _hub_is_reachable

    if not _hub_is_reachable():
        raise PackError(f"cannot download the pack {text}: the Hugging Face Hub is unreachable (offline) and it is not in the local cache")
    try:
        root = Path(snapshot_download(text, revision=revision))
    except Exception as err:
        raise PackError(f"could not download the pack {text} from the Hub: {type(err).__name__}: {err}") from err
    if not (root / PACK_FILE).is_file():
        raise PackError(f"the Hub repo {text} is not a model pack: it has no {PACK_FILE}")
    return root
