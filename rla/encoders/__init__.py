"""Frozen feature encoders: frames (B, H, W, 3) uint8 → patch tokens z (B, N, D)."""
from dataclasses import asdict, dataclass, field

from rla.encoders.base import FeatureEncoder, as_uint8_frames
from rla.encoders.pixel_patch import PixelPatchEncoder
from rla.encoders.timm_encoder import EncoderWeightsError, TimmEncoder, resolve_timm_weights


@dataclass
class EncoderSpec:
    """What a saved model pack records about its (unsaved, frozen) encoder."""

    kind: str = "pixel_patch"  # "pixel_patch" or "timm"
    name: str = ""  # full timm name with tag, e.g. "vit_small_patch14_dinov2.lvd142m" (timm only)
    image_size: int = 128  # square input size in pixels
    patch_size: int = 16  # pixel_patch only; timm takes it from the model
    revision: str | None = None  # Hub revision of the timm weights
    model_kwargs: dict = field(default_factory=dict)  # extra timm.create_model arguments

    def __post_init__(self):
        if self.kind not in ("pixel_patch", "timm"):
            raise ValueError(f"EncoderSpec.kind must be 'pixel_patch' or 'timm', got {self.kind!r}")
        if self.kind == "timm" and not self.name:
            raise ValueError("EncoderSpec.name must name a timm model when kind='timm'")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def of(cls, encoder: FeatureEncoder) -> "EncoderSpec":
        """The spec that rebuilds ``encoder`` (its weights aside)."""
        if isinstance(encoder, PixelPatchEncoder):
            return cls(kind="pixel_patch", image_size=encoder.image_size, patch_size=encoder.patch_size)
        if isinstance(encoder, TimmEncoder):
            return cls(kind="timm", name=encoder.name, image_size=encoder.image_size, patch_size=encoder.patch_size,
                       revision=encoder.revision, model_kwargs=dict(encoder.model_kwargs))
        raise TypeError(f"no EncoderSpec for {type(encoder).__name__}")


def build_encoder(spec: EncoderSpec, weights=None) -> FeatureEncoder:
    """Instantiate the encoder a spec describes (``weights`` as in :class:`TimmEncoder`)."""
    if spec.kind == "pixel_patch":
        return PixelPatchEncoder(spec.image_size, spec.patch_size)
    return TimmEncoder(spec.name, spec.image_size, weights=weights, revision=spec.revision, model_kwargs=spec.model_kwargs)


__all__ = [
    "EncoderSpec", "EncoderWeightsError", "FeatureEncoder", "PixelPatchEncoder", "TimmEncoder",
    "as_uint8_frames", "build_encoder", "resolve_timm_weights",
]
