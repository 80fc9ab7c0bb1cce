"""Residual Latent Action world models: frozen encoders, the RLA autoencoder, flow-matching
dynamics, baselines, metrics and model packs."""
from rla.autoencoder import AutoencoderConfig, RLAAutoencoder
from rla.baselines import RegressionConfig, RegressionWorldModel, TokenFlowConfig, TokenFlowWorldModel
from rla.encoders import EncoderSpec, EncoderWeightsError, PixelPatchEncoder, TimmEncoder, build_encoder
from rla.hub import CheckpointError
from rla.pack import ModelPack, PackError, PackInfo
from rla.presets import PRESETS, model_configs
from rla.world_model import LatentFlow, LatentFlowConfig, RLAWorldModel

__version__ = "0.1.0"
__all__ = [
    "AutoencoderConfig", "CheckpointError", "EncoderSpec", "EncoderWeightsError", "LatentFlow", "LatentFlowConfig",
    "ModelPack", "PRESETS", "PackError", "PackInfo", "PixelPatchEncoder", "RLAAutoencoder", "RLAWorldModel",
    "RegressionConfig", "RegressionWorldModel", "TimmEncoder", "TokenFlowConfig", "TokenFlowWorldModel",
    "build_encoder", "model_configs",
]
