"""RollBall (panda_stick): put the stick tip behind the ball on the ball→goal line, then strike
through the ball; the strike speed grows with the distance the ball has to roll.

The robot stands at the far end of the table, rotated −90° about z; ``WaypointExpert.to_action``
turns world deltas into its root frame.
"""
from __future__ import annotations

import torch

from rla.experts.base import Command, WaypointExpert, xy_unit
from rla.experts.cube import _at_z

BALL_R = 0.035
BEHIND = 0.1  # run-up: gap between stick tip and ball surface before the strike
STRIKE_SPEED = 0.062  # metres/step of stick speed that rolls the ball ~1.2 m; distance ∝ speed²
STRIKE_REF_DIST = 1.2
HEADING_BIAS = 0.8  # rad of heading error per metre of ball offset from the base's x
FOLLOW_THROUGH = 0.12  # strike target beyond the ball centre


class RollBallExpert(WaypointExpert):
    phases = ("above", "down", "aim", "strike", "retreat", "hold")

    def on_reset(self) -> None:
        ball, goal = self.u.ball.pose.p, self.u.goal_region.pose.p
        d = xy_unit(goal - ball)
        # The ball leaves at an angle ≈ -HEADING_BIAS·(x - base x) from the strike line (the
        # stick is not vertical away from the arm's centre line; measured over 7 episodes):
        # aim the other way.
        a = HEADING_BIAS * (ball[:, 0] - self.u.agent.robot.pose.p[:, 0])
        c, s = torch.cos(a), torch.sin(a)
        self.dir = torch.stack([c * d[:, 0] - s * d[:, 1], s * d[:, 0] + c * d[:, 1], d[:, 2]], -1)  # (B, 3)
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
        if phase == "aim":  # a lateral offset of e at contact turns the ball by asin(e / r): settle to 2 mm
            return Command(_at_z(pre, BALL_R), speed=0.01, done=((_at_z(pre, BALL_R) - self.tcp).norm(dim=-1) < 0.002)
                           | (self.steps_in_phase >= 8))
        if phase == "strike":
            speed = float((STRIKE_SPEED * (self.dist / STRIKE_REF_DIST).sqrt()).clamp(0.02, 0.1).mean())
            target = _at_z(ball0 + d * FOLLOW_THROUGH, BALL_R)
            return Command(target, speed=speed, tol=0.02)
        if phase == "retreat":  # lift clear so the stick does not touch the rolling ball
            return Command(_at_z(self.hold, 0.12), speed=0.05, tol=0.02)
        return Command(self.hold, speed=0.01, done=never)
