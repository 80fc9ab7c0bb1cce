"""Named model sizes. ``tiny`` is for tests (seconds), ``cpu`` trains in minutes on 2 cores,
``paper`` matches the official RLA-WM configuration (width 1024, 12 + 12 autoencoder blocks,
32 × 64 latent action, 8 + 8 world-model blocks, 30 Euler steps)."""
from __future__ import annotations

from dataclasses import dataclass

from rla.autoencoder import AutoencoderConfig
from rla.baselines import RegressionConfig, TokenFlowConfig
from rla.world_model import LatentFlowConfig


@dataclass(frozen=True)
class ModelSize:
    """Transformer sizes of every model of a pack."""

    width: int  # transformer width of every model
    heads: int
    ae_encoder_depth: int  # RLA autoencoder: blocks over the residual tokens
    ae_decoder_depth: int  # ... and over z_t + latent tokens
    num_queries: int  # Q latent-action tokens
    latent_dim: int  # C dims per latent-action token
    condition_depth: int  # world models: blocks over z_t tokens (once per prediction)
    flow_depth: int  # flow blocks (every Euler step)
    sample_steps: int  # default Euler steps


SIZES = {
    "tiny": ModelSize(32, 2, 1, 1, 4, 8, 1, 1, 4),
    "cpu": ModelSize(128, 4, 3, 3, 8, 32, 3, 2, 10),
    "paper": ModelSize(1024, 16, 12, 12, 32, 64, 8, 8, 30),
}
PRESETS = tuple(SIZES)


def model_configs(preset: str, num_tokens: int, token_dim: int, action_dim: int, change_threshold: float = 0.05, *,
                  whiten: bool = False, time_mean: float = 0.0) -> dict:
    """Configs for every model of a pack: ``autoencoder``, ``dynamics``, ``regression``, ``token_flow``.

    The regression baseline gets as many blocks as the RLA world model's condition stage plus the
    autoencoder's decoder, and the token-flow baseline the same stages as the RLA world model, so
    each comparison is at matched size. ``whiten`` configures the RLA dynamics (ZCA-whitened
    latents); ``time_mean`` both flow models, RLA-WM and the token-space flow alike (logit-normal
    training times shifted toward noise for ``time_mean > 0``).
    """
    if preset not in SIZES:
        raise ValueError(f"unknown preset {preset!r}; choose one of {PRESETS}")
    m = SIZES[preset]
    boost = 0.0 if preset == "paper" else 10.0  # the paper uses a plain loss
    shared = dict(num_tokens=num_tokens, token_dim=token_dim, width=m.width, heads=m.heads)
    return {
        "autoencoder": AutoencoderConfig(**shared, encoder_depth=m.ae_encoder_depth, decoder_depth=m.ae_decoder_depth, num_queries=m.num_queries,
                                         latent_dim=m.latent_dim, change_boost=boost, change_threshold=change_threshold),
        "dynamics": LatentFlowConfig(**shared, action_dim=action_dim, num_queries=m.num_queries, latent_dim=m.latent_dim,
                                     condition_depth=m.condition_depth, flow_depth=m.flow_depth, sample_steps=m.sample_steps,
                                     whiten=whiten, time_mean=time_mean),
        "regression": RegressionConfig(**shared, action_dim=action_dim, depth=m.condition_depth + m.ae_decoder_depth, change_boost=boost,
                                       change_threshold=change_threshold),
        "token_flow": TokenFlowConfig(**shared, action_dim=action_dim, condition_depth=m.condition_depth, flow_depth=m.flow_depth,
                                      sample_steps=m.sample_steps, change_boost=boost, change_threshold=change_threshold,
                                      time_mean=time_mean),
    }
