"""PushT (panda_stick): a greedy pusher. Each segment picks one push from the T's pose error —
rotate (push near one end of the cross-bar, perpendicular to it) while the angle error is over
~8°, else translate (push through the centre of mass towards the goal) — then lifts over the T,
comes down at the contact point and pushes a few centimetres.

This is a heuristic, not a planner: success needs 90 % area overlap, which it reaches only
sometimes within the episode (see docs/data.md for the measured rate).
"""
from __future__ import annotations

import math

import torch

from training.experts.base import Command, WaypointExpert, yaw

LIFT_Z = 0.07  # clears the 4 cm T
PUSH_Z = 0.02
CLEAR = 0.03  # gap between stick and T edge before a push
ANGLE_TOL = 0.14  # rad


def _rot(theta: float, v: tuple[float, float]) -> tuple[float, float]:
    c, s = math.cos(theta), math.sin(theta)
    return (c * v[0] - s * v[1], s * v[0] + c * v[1])


class PushTExpert(WaypointExpert):
    phases = ("segment",)

    def on_reset(self) -> None:
        self.queue: list[list[tuple]] = [[] for _ in range(self.num_envs)]
        self.target = self.tcp.clone()
        self.speed = torch.full((self.num_envs,), 0.04, device=self.device)
        self.age = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)

    def _errors(self, b: int) -> tuple[tuple[float, float], float, tuple[float, float], float]:
        tee, goal = self.u.tee.pose, self.u.goal_tee.pose
        p, g = tee.p[b, :2].tolist(), goal.p[b, :2].tolist()
        th = float(yaw(tee.q[b:b + 1])[0])
        dth = (float(yaw(goal.q[b:b + 1])[0]) - th + math.pi) % (2 * math.pi) - math.pi
        return (g[0] - p[0], g[1] - p[1]), dth, (p[0], p[1]), th

    def _plan(self, b: int) -> list[tuple]:
        """Waypoints ``(x, y, z, speed)`` of one push."""
        e, dth, p, th = self._errors(b)
        if abs(dth) > ANGLE_TOL:  # rotate: push the bar end along the T's local +y (or -y)
            side = 1.0 if dth > 0 else -1.0
            contact = _rot(th, (side * 0.08, -0.0375 - 0.025 - CLEAR))
            d = _rot(th, (0.0, 1.0))
            dist = min(0.06, 0.03 + 0.1 * abs(dth))
        else:  # translate through the centre of mass
            n = math.hypot(*e)
            if n < 0.004:
                return [(self.tcp[b, 0].item(), self.tcp[b, 1].item(), LIFT_Z, 0.02)]
            d = (e[0] / n, e[1] / n)
            contact = (-d[0] * (0.09 + CLEAR), -d[1] * (0.09 + CLEAR))
            dist = min(n + 0.0, 0.05)
        start = (p[0] + contact[0], p[1] + contact[1])
        end = (start[0] + d[0] * (CLEAR + dist), start[1] + d[1] * (CLEAR + dist))
        return [(*start, LIFT_Z, 0.06), (*start, PUSH_Z, 0.04), (*end, PUSH_Z, 0.02), (*end, LIFT_Z, 0.04)]

    def command(self, phase: str) -> Command:
        return Command(self.target, speed=0.04, done=torch.zeros(self.num_envs, dtype=torch.bool, device=self.device))

    def act(self) -> torch.Tensor:
        reached = (self.target - self.tcp).norm(dim=-1) < 0.008
        for b in range(self.num_envs):
            if reached[b] or self.age[b] >= 20:
                if not self.queue[b]:
                    self.queue[b] = self._plan(b)
                x, y, z, v = self.queue[b].pop(0)
                self.target[b] = torch.tensor([x, y, z], device=self.device)
                self.speed[b] = v
                self.age[b] = 0
        self.age += 1
        return self.to_action(self.target, self.speed, torch.zeros(self.num_envs, device=self.device))

    def debug(self) -> str:
        e, dth, _, _ = self._errors(0)
        return f"pos_err={math.hypot(*e):.3f} ang_err={dth:.2f}"
