"""PokeCube: grasp the peg behind its middle, line its head up with the cube, poke the cube
onto the goal, then hold still (success also needs a static robot)."""
from __future__ import annotations

import torch

from rla.experts.base import CLOSED, OPEN, Command, WaypointExpert, xy_unit
from rla.experts.cube import _at_z

GRASP_BACK = 0.05  # grasp this far behind the peg centre, leaving the head free
CARRY_Z = 0.035  # tcp height while carrying: peg bottom 1 cm above the table
CUBE_HALF = 0.02


class PokeCubeExpert(WaypointExpert):
    phases = ("above_peg", "down_peg", "grasp", "lift", "align", "poke", "settle", "hold")
    goal_tol = 0.015

    def on_reset(self) -> None:
        self.grasp_xy = self.u.peg.pose.p.clone()
        self.grasp_xy[:, 0] -= GRASP_BACK

    def _head_offset(self) -> torch.Tensor:
        return self.u.peg_head_pos - self.tcp  # (B, 3), constant once grasped

    def command(self, phase: str) -> Command:
        u = self.u
        cube, goal = u.cube.pose.p, u.goal_region.pose.p
        never = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        if phase == "above_peg":
            return Command(_at_z(self.grasp_xy, 0.12), OPEN, speed=0.06, tol=0.015)
        if phase == "down_peg":
            return Command(_at_z(self.grasp_xy, 0.02), OPEN, speed=0.04, tol=0.008)
        if phase == "grasp":
            return Command(self.hold, CLOSED, done=self.steps_in_phase >= 6)
        if phase == "lift":
            return Command(_at_z(self.hold, CARRY_Z), CLOSED, speed=0.03, tol=0.008)
        d = xy_unit(goal - cube)
        off = self._head_offset()
        if phase == "align":  # head 3 cm behind the cube face, on the cube→goal line
            head = cube - d * (CUBE_HALF + 0.03)
            return Command(_at_z(head - off, CARRY_Z), CLOSED, speed=0.04, tol=0.006)
        if phase == "poke":
            head = cube - d * CUBE_HALF + d * 0.02
            done = (cube - goal)[:, :2].norm(dim=-1) < self.goal_tol
            return Command(_at_z(head - off, CARRY_Z), CLOSED, speed=0.02, done=done)
        if phase == "settle":  # back off 1 cm so the cube and arm come to rest
            return Command(self.hold - d * 0.01, CLOSED, speed=0.01, done=self.steps_in_phase >= 4)
        return Command(self.hold, CLOSED, speed=0.01, done=never)
