"""PullCubeTool: grasp the L-tool near the end of its handle, carry it high over the cube, lower
the hook just beyond the cube and drag everything back towards the robot base.

Tool geometry (tool frame): the handle runs from the origin along +x for 0.2 m; the hook sits at
x ∈ [0.15, 0.20], y ∈ [0, 0.10]. Grasping 2 cm from the origin gives the most reach, but the
tool then pitches down under its own weight, so the expert steers the hook's *actual* world
position (from the tool's pose) rather than assuming a rigid grasp.
"""
from __future__ import annotations

import torch

from rla.experts.base import CLOSED, OPEN, Command, WaypointExpert, quat_to_matrix
from rla.experts.cube import _at_z

GRASP_X = 0.03  # grasp point along the handle, from the tool origin
CARRY_Z = 0.2  # tcp height while carrying the tool over the cube (the hook droops)
HOOK_FACE = torch.tensor([0.15, 0.06, 0.0])  # inner face of the hook, tool frame
HOOK_BOTTOM = torch.tensor([0.175, 0.05, -0.025])  # lowest point of the hook, tool frame
HOOK_TO_CUBE = torch.tensor([0.045, 0.0, 0.0])  # where the hook face goes, relative to the cube
PULL_TO = 0.45  # pull until the cube is this close (xy) to the base; success is < 0.6


class PullCubeToolExpert(WaypointExpert):
    phases = ("above_tool", "down_tool", "grasp", "lift", "over_cube", "lower", "pull", "hold")

    def on_reset(self) -> None:
        self.grasp_pt = self.u.l_shape_tool.pose.p.clone()
        self.grasp_pt[:, 0] += GRASP_X
        self.grasp_z = float(self.u.l_shape_tool.pose.p[0, 2])

    def _tool_point(self, local: torch.Tensor) -> torch.Tensor:
        pose = self.u.l_shape_tool.pose
        return pose.p + quat_to_matrix(pose.q) @ local.to(self.device)  # (B, 3)

    def command(self, phase: str) -> Command:
        u, tcp = self.u, self.tcp
        cube = u.cube.pose.p
        base = u.agent.robot.get_links()[0].pose.p
        never = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        if phase == "above_tool":
            return Command(_at_z(self.grasp_pt, 0.1), OPEN, speed=0.06, tol=0.015)
        if phase == "down_tool":
            return Command(_at_z(self.grasp_pt, self.grasp_z), OPEN, speed=0.04, tol=0.008)
        if phase == "grasp":
            return Command(self.hold, CLOSED, done=self.steps_in_phase >= 6)
        if phase == "lift":
            return Command(_at_z(self.hold, CARRY_Z), CLOSED, speed=0.06, tol=0.02)
        face_err = cube + HOOK_TO_CUBE.to(self.device) - self._tool_point(HOOK_FACE)
        face_err[:, 2] = 0
        if phase == "over_cube":
            return Command(_at_z(tcp + face_err, CARRY_Z), CLOSED, speed=0.05,
                           done=face_err.norm(dim=-1) < 0.015)
        if phase == "lower":  # keep the hook over its spot until it touches the table
            target = tcp + face_err
            target[:, 2] = 0.03
            done = self._tool_point(HOOK_BOTTOM)[:, 2] < 0.008
            return Command(target, CLOSED, speed=0.04, done=done)
        if phase == "pull":  # straight back towards the base
            d = base - cube
            d[:, 2] = 0
            d = d / d.norm(dim=-1, keepdim=True)
            target = tcp + d * 0.05
            target[:, 2] = tcp[:, 2]
            done = (cube - base)[:, :2].norm(dim=-1) < PULL_TO
            return Command(target, CLOSED, speed=0.03, done=done)
        return Command(self.hold, CLOSED, speed=0.01, done=never)
