"""Named model sizes. ``tiny`` is for tests (seconds), ``cpu`` trains in minutes on 2 cores,
``paper`` matches the official RLA-WM configuration (width 1024, 12 + 12 autoencoder blocks,
32 × 64 latent action, 8 + 8 world-model blocks, 30 Euler steps)."""
from __future__ import annotations

from rla.autoencoder import AutoencoderConfig
from rla.baselines import RegressionConfig, TokenFlowConfig
from rla.world_model import LatentFlowConfig

_SIZES = {
    #        width heads ae_enc ae_dec queries latent cond flow steps
    "tiny": (32, 2, 1, 1, 4, 8, 1, 1, 4),
    "cpu": (128, 4, 3, 3, 8, 32, 3, 2, 10),
    "paper": (1024, 16, 12, 12, 32, 64, 8, 8, 30),
}
PRESETS = tuple(_SIZES)


def model_configs(preset: str, num_tokens: int, token_dim: int, action_dim: int, change_threshold: float = 0.05) -> dict:
    """Configs for every model of a pack: ``autoencoder``, ``dynamics``, ``regression``, ``token_flow``.

    The regression baseline gets as many blocks as the RLA world model's condition stage plus the
    autoencoder's decoder, and the token-flow baseline the same stages as the RLA world model, so
    each comparison is at matched size.
    """
    if preset not in _SIZES:
        raise ValueError(f"unknown preset {preset!r}; choose one of {PRESETS}")
    width, heads, enc, dec, q, c, cond, flow, steps = _SIZES[preset]
    boost = 0.0 if preset == "paper" else 10.0  # the paper uses a plain loss and interaction-focused sampling
    shared = dict(num_tokens=num_tokens, token_dim=token_dim, width=width, heads=heads)
    return {
        "autoencoder": AutoencoderConfig(**shared, encoder_depth=enc, decoder_depth=dec, num_queries=q, latent_dim=c, change_boost=boost, change_threshold=change_threshold),
        "dynamics": LatentFlowConfig(**shared, action_dim=action_dim, num_queries=q, latent_dim=c, condition_depth=cond, flow_depth=flow, sample_steps=steps),
        "regression": RegressionConfig(**shared, action_dim=action_dim, depth=cond + dec, change_boost=boost, change_threshold=change_threshold),
        "token_flow": TokenFlowConfig(**shared, action_dim=action_dim, condition_depth=cond, flow_depth=flow, sample_steps=steps),
    }
