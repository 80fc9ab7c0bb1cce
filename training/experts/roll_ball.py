"""RollBall (panda_stick): put the stick tip behind the ball on the ball→goal line, then strike
through the ball; the strike speed grows with the distance the ball has to roll.

The robot stands at the far end of the table, rotated −90° about z; ``WaypointExpert.to_action``
turns world deltas into its root frame.
"""
from __future__ import annotations

import torch

from training.experts.base import Command, WaypointExpert, xy_unit
from training.experts.cube import _at_z

BALL_R = 0.035
BEHIND = 0.1  # run-up: gap between stick tip and ball surface before the strike
STRIKE_SPEED = 0.062  # metres/step of stick speed that rolls the ball ~1.2 m; distance ∝ speed²
STRIKE_REF_DIST = 1.2
FOLLOW_THROUGH = 0.12  # strike target beyond the ball centre


class RollBallExpert(WaypointExpert):
    phases = ("above", "down", "strike", "retreat", "hold")

    def on_reset(self) -> None:
        ball, goal = self.u.ball.pose.p, self.u.goal_region.pose.p
        self.dir = xy_unit(goal - ball)  # (B, 3) fixed strike direction
        self.start = ball.clone()
        self.dist = (goal - ball)[:, :2].norm(dim=-1)  # (B,)

    def command(self, phase: str) -> Command:
        d, ball0 = self.dir, self.start
        never = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        pre = ball0 - d * (BALL_R + BEHIND)
        if phase == "above":
            return Command(_at_z(pre, 0.1), speed=0.06, tol=0.015)
        if phase == "down":
            return Command(_at_z(pre, BALL_R), speed=0.04, tol=0.006)
        if phase == "strike":
            speed = float((STRIKE_SPEED * (self.dist / STRIKE_REF_DIST).sqrt()).clamp(0.02, 0.1).mean())
            target = _at_z(ball0 + d * FOLLOW_THROUGH, BALL_R)
            return Command(target, speed=speed, tol=0.02)
        if phase == "retreat":  # lift clear so the stick does not touch the rolling ball
            return Command(_at_z(self.hold, 0.12), speed=0.05, tol=0.02)
        return Command(self.hold, speed=0.01, done=never)

    def debug(self) -> str:
        ball, goal = self.u.ball.pose.p, self.u.goal_region.pose.p
        err = (goal - ball)[0, :2]
        along = float((err * self.dir[0, :2]).sum())
        v = float(self.u.ball.linear_velocity[0].norm())
        return f"dist0={float(self.dist[0]):.2f} along={along:.2f} lateral={float((err.norm()**2 - along**2).clamp_min(0).sqrt()):.2f} v={v:.2f} ball0={self.start[0].numpy().round(2)}"
