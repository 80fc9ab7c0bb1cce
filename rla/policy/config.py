"""The policy's configuration and its named sizes.

``PolicyConfig`` describes one network: the image trunk, the state input, the transformer over
image tokens + a state token + learnable output queries, the shared MLP and the two heads (an
action chunk, and the RLA of the coming frames). ``policy_config(preset, ...)`` fills the sizes.
"""
# No `from __future__ import annotations`: the Hub mixin reads the `config` annotation of the
# model that uses this dataclass.
from dataclasses import dataclass, field

TRUNKS = ("tokens", "resnet18")


@dataclass
class PolicyConfig:
    trunk: str = "tokens"  # "tokens": the pack's patch tokens, projected; "resnet18": timm ResNet-18 from scratch (GroupNorm)
    num_tokens: int = 64  # N, patch tokens per frame of the pack's encoder (tokens trunk)
    token_dim: int = 768  # D, their dimension
    image_size: int = 128  # square input of the resnet18 trunk, pixels
    encoder: dict = field(default_factory=dict)  # rla.encoders.EncoderSpec of the pack: how frames become tokens at run time
    state_dim: int = 9  # J, qpos dimensions; 0 = no state input (the learned token only, e.g. in an imagined env)
    action_dim: int = 4  # A, env action dimensions
    action_low: float = -1.0  # env action bounds: predicted actions are clipped to them
    action_high: float = 1.0
    chunk: int = 10  # K, actions predicted per call
    execute: int = 8  # actions of each chunk executed before predicting again
    width: int = 128  # transformer width
    depth: int = 4  # attention blocks
    heads: int = 4
    mlp_ratio: float = 4.0
    num_queries: int = 8  # learnable output queries; their outputs are flattened into the shared MLP
    hidden: int = 1024  # width of the two-layer shared MLP
    dropout: float = 0.1  # in the shared MLP
    rla_queries: int = 8  # Q of the pack's latent action (autoencoder.num_queries)
    rla_dim: int = 32  # C of the pack's latent action (autoencoder.latent_dim)
    rla_weight: float = 0.05  # weight of L1 + MSE on the RLA head; 0 = no RLA head (the BC baseline)

    def __post_init__(self):
        if self.trunk not in TRUNKS:
            raise ValueError(f"PolicyConfig.trunk must be one of {TRUNKS}, got {self.trunk!r}")
        for name in ("num_tokens", "token_dim", "image_size", "action_dim", "chunk", "execute", "width", "depth", "heads",
                     "num_queries", "hidden", "rla_queries", "rla_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"PolicyConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.state_dim < 0:
            raise ValueError(f"PolicyConfig.state_dim must be >= 0 (0 = no state input), got {self.state_dim}")
        if self.execute > self.chunk:
            raise ValueError(f"PolicyConfig.execute ({self.execute}) must be <= chunk ({self.chunk})")
        if self.width % self.heads:
            raise ValueError(f"PolicyConfig.width ({self.width}) must be divisible by heads ({self.heads})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"PolicyConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.rla_weight < 0:
            raise ValueError(f"PolicyConfig.rla_weight must be >= 0, got {self.rla_weight}")
        if self.action_low >= self.action_high:
            raise ValueError(f"PolicyConfig.action_low ({self.action_low}) must be < action_high ({self.action_high})")
        if self.trunk == "resnet18" and self.image_size % 32:
            raise ValueError(f"PolicyConfig.image_size must be a multiple of 32 for resnet18, got {self.image_size}")

    @property
    def has_rla_head(self) -> bool:
        return self.rla_weight > 0


#          width depth heads queries hidden chunk execute
_SIZES = {
    "tiny": (32, 1, 2, 2, 64, None, None),  # tests: seconds
    "cpu": (128, 3, 4, 8, 1024, None, None),  # ~0.4 CPU-seconds per step of 64 on one core
    "paper": (256, 6, 8, 16, 2048, 12, 8),  # the authors' policy (ResNet-18 trunk, 16 queries, MLP 4096→2048→2048)
}
POLICY_PRESETS = tuple(_SIZES)


def policy_config(preset: str, **fields) -> PolicyConfig:
    """A :class:`PolicyConfig` of a named size; ``fields`` (trunk, tokens, actions, …) override it.

    The ``paper`` preset also selects the resnet18 trunk and the authors' chunk of 12 (8 executed)
    unless ``fields`` say otherwise.
    """
    if preset not in _SIZES:
        raise ValueError(f"unknown policy preset {preset!r}; choose one of {POLICY_PRESETS}")
    width, depth, heads, queries, hidden, chunk, execute = _SIZES[preset]
    values = dict(width=width, depth=depth, heads=heads, num_queries=queries, hidden=hidden)
    if preset == "paper":
        values.update(trunk="resnet18", chunk=chunk, execute=execute)
    values.update(fields)
    return PolicyConfig(**values)
