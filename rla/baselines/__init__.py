"""Baselines trained on the same data with the same interface as the RLA world model."""
from rla.baselines.regression import RegressionConfig, RegressionWorldModel
from rla.baselines.token_flow import TokenFlowConfig, TokenFlowWorldModel

__all__ = ["RegressionConfig", "RegressionWorldModel", "TokenFlowConfig", "TokenFlowWorldModel"]
