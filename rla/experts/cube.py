"""PushCube and PullCube: close the gripper, come down behind the cube, push it to the goal.

Pulling is pushing from the cube's far side, so one closed-loop pusher serves both: the pushing
direction ``d`` is recomputed every step from the cube to the goal, and the tcp aims at a point
``standoff`` behind the cube on that line and a little past it, slowly (3 cm/step) in contact.
"""
from __future__ import annotations

import torch

from rla.experts.base import CLOSED, Command, WaypointExpert, xy_unit

CONTACT_Z = 0.02  # tcp height while pushing (cube centre height)
STANDOFF = 0.045  # tcp ↔ cube centre distance at contact: half cube + finger + margin


class PushToGoalExpert(WaypointExpert):
    """Push ``self.obj`` until its xy is within ``goal_tol`` of ``self.goal``."""

    phases = ("above", "down", "push", "hold")
    goal_tol = 0.025
    push_speed = 0.03

    @property
    def obj(self) -> torch.Tensor:
        return self.u.obj.pose.p

    @property
    def goal(self) -> torch.Tensor:
        return self.u.goal_region.pose.p

    def on_reset(self) -> None:
        self.start_dir = xy_unit(self.goal - self.obj)  # fixed approach direction

    def command(self, phase: str) -> Command:
        obj, goal = self.obj, self.goal
        behind = obj - self.start_dir * (STANDOFF + 0.01)
        if phase == "above":
            return Command(_at_z(behind, 0.08), CLOSED, speed=0.06, tol=0.015)
        if phase == "down":
            return Command(_at_z(behind, CONTACT_Z), CLOSED, speed=0.04, tol=0.01)
        if phase == "push":
            d = xy_unit(goal - obj)
            target = _at_z(obj - d * STANDOFF + d * 0.03, CONTACT_Z)
            passed = ((goal - obj) * self.start_dir).sum(-1) < 0  # cube went past the goal centre
            done = ((obj - goal)[:, :2].norm(dim=-1) < self.goal_tol) | passed
            return Command(target, CLOSED, speed=self.push_speed, done=done)
        return Command(self.hold, CLOSED, speed=0.02, done=torch.zeros_like(obj[:, 0], dtype=torch.bool))


def _at_z(p: torch.Tensor, z: float) -> torch.Tensor:
    p = p.clone()
    p[:, 2] = z
    return p
