"""Task-agnostic play: the arm visits random waypoints and sweeps through the two cubes of a
StackCube scene, opening and closing the gripper at random. There is no goal; the recorded
``success`` is StackCube's (almost always False) and means nothing for play data.

Each segment is either a *touch* (come down next to a random cube and sweep through it, 60 %)
or a *free* move to a random point in the workspace; speeds and gripper are random per segment.
"""
from __future__ import annotations

import numpy as np
import torch

from rla.experts.base import Command, WaypointExpert

WORKSPACE_LO = np.array([-0.2, -0.25, 0.02])
WORKSPACE_HI = np.array([0.2, 0.25, 0.25])
SEGMENT_STEPS = 25  # a waypoint not reached by then is abandoned


class PlayExpert(WaypointExpert):
    phases = ("move",)

    def on_reset(self) -> None:
        self.queue: list[list[np.ndarray]] = [[] for _ in range(self.num_envs)]
        self.target = self.tcp.clone()
        self.grip = torch.ones(self.num_envs, device=self.device)
        self.speed = torch.full((self.num_envs,), 0.04, device=self.device)
        self.age = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)

    def _plan(self, b: int) -> list[np.ndarray]:
        r = self.rng
        if r.random() < 0.6:  # touch: come down beside a cube and sweep through it
            cube = (self.u.cubeA if r.random() < 0.5 else self.u.cubeB).pose.p[b].cpu().numpy()
            ang = r.uniform(0, 2 * np.pi)
            side = np.array([np.cos(ang), np.sin(ang), 0.0])
            z = r.uniform(0.015, 0.035)
            start = cube - side * 0.07
            through = cube + side * r.uniform(0.0, 0.08)
            return [np.r_[start[:2], 0.08], np.r_[start[:2], z], np.r_[through[:2], z], np.r_[through[:2], 0.1]]
        return [r.uniform(WORKSPACE_LO, WORKSPACE_HI)]

    def command(self, phase: str) -> Command:
        return Command(self.target, self.grip, speed=0.05,
                       done=torch.zeros(self.num_envs, dtype=torch.bool, device=self.device))

    def act(self) -> torch.Tensor:
        reached = (self.target - self.tcp).norm(dim=-1) < 0.012
        for b in range(self.num_envs):
            if reached[b] or self.age[b] >= SEGMENT_STEPS:
                if not self.queue[b]:
                    self.queue[b] = self._plan(b)
                    self.grip[b] = float(self.rng.choice([-1.0, 1.0]))
                    self.speed[b] = float(self.rng.uniform(0.02, 0.06))
                self.target[b] = torch.as_tensor(self.queue[b].pop(0), dtype=torch.float32, device=self.device)
                self.age[b] = 0
        self.age += 1
        return self.to_action(self.target, self.speed, self.grip)
