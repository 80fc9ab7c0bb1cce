"""Scripted ``pd_ee_delta_pos`` experts, one per task, reading true poses from the simulator.

``make_expert(task, env, control_mode, rng)`` returns an object with ``reset()`` (call after
``env.reset``) and ``act() -> Tensor (B, A)``. ``ExpertActor(task)`` wraps it as an actor of
``rla.policy.rollout.run_episode`` (policy evaluations, the app's live runs).
"""
from __future__ import annotations

import numpy as np

from rla.experts.actor import ExpertActor
from rla.experts.base import Command, WaypointExpert
from rla.experts.cube import PushToGoalExpert
from rla.experts.play import PlayExpert
from rla.experts.poke_cube import PokeCubeExpert
from rla.experts.pull_cube_tool import PullCubeToolExpert
from rla.experts.push_t import PushTExpert
from rla.experts.roll_ball import RollBallExpert

EXPERTS: dict[str, type[WaypointExpert]] = {
    "PushCube": PushToGoalExpert,
    "PullCube": PushToGoalExpert,
    "PokeCube": PokeCubeExpert,
    "PullCubeTool": PullCubeToolExpert,
    "RollBall": RollBallExpert,
    "PushT": PushTExpert,
    "play": PlayExpert,
}


def make_expert(task: str, env, control_mode: str = "pd_ee_delta_pos", rng: np.random.Generator | None = None):
    """The scripted expert of ``task`` bound to ``env``."""
    if task not in EXPERTS:
        raise ValueError(f"no expert for task {task!r}; experts exist for {', '.join(EXPERTS)}")
    return EXPERTS[task](env, control_mode=control_mode, rng=rng)


__all__ = ["EXPERTS", "Command", "ExpertActor", "WaypointExpert", "make_expert"]
