"""Running an actor (a policy, a scripted expert, zero actions) for one episode in ManiSkill.

    env = make_policy_env("PullCube")                     # rla.data.make_env: the project's camera, rgb only
    out = run_episode(env, PolicyActor(policy), reset_seed=41_000, max_steps=episode_steps("PullCube"))
    out.success, out.steps                                 # success-once: solved at some step; steps taken

Every actor runs under the episode length of :func:`rla.data.make_env` for the task (the task's
``steps``: the expert's recordings have that length, ManiSkill's registered limit can be shorter).
An episode stops at its first success (success-once, the paper's and ManiSkill's metric).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from rla.data.tasks import CAMERA_NAME, get_task, make_env


class Actor(Protocol):
    def reset(self, env, reset_seed: int) -> None:
        """Called after ``env.reset(seed=reset_seed)``."""

    def act(self, obs: dict) -> torch.Tensor:
        """The next env action ``(1, A)`` from a raw ManiSkill observation."""


def observation(obs: dict) -> dict:
    """A ManiSkill observation → what a policy sees: ``image (H, W, 3)`` uint8 and ``qpos (J,)`` float32."""
    rgb = obs["sensor_data"][CAMERA_NAME]["rgb"]
    qpos = obs["agent"]["qpos"]
    rgb = rgb[0] if rgb.ndim == 4 else rgb
    qpos = qpos[0] if qpos.ndim == 2 else qpos
    return {"image": torch.as_tensor(rgb).cpu(), "qpos": torch.as_tensor(qpos, dtype=torch.float32).cpu()}


class PolicyActor:
    """A :class:`rla.policy.Policy` acting from the camera frame and qpos (a chunk every ``execute`` steps)."""

    def __init__(self, policy):
        self.policy = policy.eval()

    def reset(self, env, reset_seed: int) -> None:
        self.policy.reset()

    def act(self, obs: dict) -> torch.Tensor:
        return self.policy.select_action(observation(obs))


class ZeroActor:
    """Zero actions: the arm holds still (the floor every policy must beat)."""

    def __init__(self, action_dim: int):
        self.action_dim = action_dim

    def reset(self, env, reset_seed: int) -> None:
        pass

    def act(self, obs: dict) -> torch.Tensor:
        return torch.zeros(1, self.action_dim)


@dataclass
class EpisodeOutcome:
    reset_seed: int
    success: bool  # solved at some step (success-once)
    steps: int  # actions taken (stops at the first success)
    seconds: float  # wall time of the episode
    frames: list = field(default_factory=list, repr=False)  # (H, W, 3) uint8 per step when kept

    def to_dict(self) -> dict:
        return {"reset_seed": self.reset_seed, "success": self.success, "steps": self.steps, "seconds": round(self.seconds, 3)}


def episode_steps(task: str) -> int:
    """The episode length every row of a policy evaluation runs under (``make_env``'s default)."""
    return get_task(task).steps


def make_policy_env(task: str, size: int = 128):
    """The task's env as the policies see it (rgb frames of the recorded camera, qpos), CPU simulator."""
    return make_env(task, size=size, obs_mode="rgb", max_episode_steps=episode_steps(task))


def run_episode(env, actor: Actor, reset_seed: int, max_steps: int, *, keep_frames: bool = False,
                on_step: Callable[[int, int], None] | None = None) -> EpisodeOutcome:
    """One episode from ``env.reset(seed=reset_seed)``, at most ``max_steps`` actions, success-once.

    ``on_step(step, max_steps)`` is called after every action (progress bars).
    """
    start = time.perf_counter()
    obs, _ = env.reset(seed=int(reset_seed))
    actor.reset(env, int(reset_seed))
    frames = [observation(obs)["image"].numpy()] if keep_frames else []
    success, steps = False, 0
    for steps in range(1, max_steps + 1):
        action = torch.as_tensor(actor.act(obs), dtype=torch.float32).reshape(1, -1).clamp(-1, 1)
        obs, _, _, _, info = env.step(action)
        if keep_frames:
            frames.append(observation(obs)["image"].numpy())
        if on_step:
            on_step(steps, max_steps)
        if bool(np.asarray(info["success"]).reshape(-1)[0]):
            success = True
            break
    return EpisodeOutcome(int(reset_seed), success, steps, time.perf_counter() - start, frames)
