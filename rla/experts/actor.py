"""The scripted expert as an actor of :func:`rla.policy.rollout.run_episode` (evaluations, the app's live runs)."""
from __future__ import annotations

import numpy as np
import torch


class ExpertActor:
    """The scripted expert that recorded the data (true simulator state; the ceiling of imitation).

    Its random choices are seeded by the episode's reset seed, so an episode repeats exactly.
    """

    def __init__(self, task: str):
        self.task, self.expert = task, None

    def reset(self, env, reset_seed: int) -> None:
        from rla.experts import make_expert

        self.expert = make_expert(self.task, env, rng=np.random.default_rng(reset_seed))
        self.expert.reset()

    def act(self, obs: dict) -> torch.Tensor:
        return self.expert.act().clamp(-1, 1)
