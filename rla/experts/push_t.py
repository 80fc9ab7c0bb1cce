"""PushT (panda_stick): a greedy contact-selection pusher.

Before every push the expert scores candidate contacts — points on the T's outer edges, each
pushed along the edge's inward normal — with a quasi-static guess of what a push of length
``s`` does (ellipsoidal limit surface, sticking contact): with ``r`` the contact relative to
the centre of mass, ``τ = r × d`` and ``ρ`` ≈ the T's radius of gyration, the T translates by
``k·d`` and turns by ``k·τ/ρ²`` where ``k = s / (1 + τ²/ρ²)``. It executes the
(contact, ``s``) that leaves the smallest weighted pose error: lift over the T, come down
``CLEAR`` before the edge, push, repeat.

This is a heuristic, not a planner: success needs 90 % area overlap with the goal T; the
measured rate is in docs/data.md.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from rla.experts.base import Command, WaypointExpert, yaw

LIFT_Z = 0.055  # clears the 4 cm T
PUSH_Z = 0.02
CLEAR = 0.02  # gap between stick and edge before a push
RHO2 = 0.06 ** 2  # radius of gyration², m²
POS_SCALE, ANG_SCALE = 0.005, 0.06  # 5 mm of position error weighs as much as 0.06 rad
PUSH_LENGTHS = (0.004, 0.008, 0.015, 0.025, 0.04, 0.06, 0.09, 0.12)


def _edges() -> np.ndarray:
    """Candidate contacts in the T frame: rows ``(rx, ry, dx, dy)``, ``d`` pointing into the T."""
    rows = []

    def edge(x0, y0, x1, y1, d, n):
        for a in np.linspace(0.15, 0.85, n):
            rows.append((x0 + a * (x1 - x0), y0 + a * (y1 - y0), *d))

    edge(-0.1, -0.0625, 0.1, -0.0625, (0, 1), 7)  # bar bottom
    edge(-0.1, -0.0125, -0.025, -0.0125, (0, -1), 3)  # bar top, left of the stem
    edge(0.025, -0.0125, 0.1, -0.0125, (0, -1), 3)  # bar top, right of the stem
    edge(-0.1, -0.0625, -0.1, -0.0125, (1, 0), 2)  # bar ends
    edge(0.1, -0.0625, 0.1, -0.0125, (-1, 0), 2)
    edge(-0.025, -0.0125, -0.025, 0.1375, (1, 0), 5)  # stem sides
    edge(0.025, -0.0125, 0.025, 0.1375, (-1, 0), 5)
    edge(-0.025, 0.1375, 0.025, 0.1375, (0, -1), 2)  # stem top
    return np.asarray(rows)


EDGES = _edges()


class PushTExpert(WaypointExpert):
    phases = ("segment",)

    def on_reset(self) -> None:
        self.queue: list[list[tuple]] = [[] for _ in range(self.num_envs)]
        self.target = self.tcp.clone()
        self.speed = torch.full((self.num_envs,), 0.05, device=self.device)
        self.age = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.last_cost = [math.inf] * self.num_envs  # pose cost when the previous push was planned
        self.stalls = [0] * self.num_envs  # consecutive pushes that did not lower the cost

    def _errors(self, b: int) -> tuple[np.ndarray, float, np.ndarray, float]:
        """Position error (goal − T) ``(2,)``, angle error, T position ``(2,)``, T yaw."""
        tee, goal = self.u.tee.pose, self.u.goal_tee.pose
        p, g = tee.p[b, :2].cpu().numpy(), goal.p[b, :2].cpu().numpy()
        th = float(yaw(tee.q[b:b + 1])[0])
        dth = (float(yaw(goal.q[b:b + 1])[0]) - th + math.pi) % (2 * math.pi) - math.pi
        return g - p, dth, p, th

    def _plan(self, b: int) -> list[tuple]:
        """Waypoints ``(x, y, z, speed)`` of the best next push."""
        e, dth, p, th = self._errors(b)
        c, s = math.cos(th), math.sin(th)
        rot = np.array([[c, -s], [s, c]])
        r = EDGES[:, :2] @ rot.T  # (C, 2) contacts, world-aligned, relative to the COM
        d = EDGES[:, 2:] @ rot.T  # (C, 2) push directions
        torque = r[:, 0] * d[:, 1] - r[:, 1] * d[:, 0]  # (C,)
        now = (e @ e) / POS_SCALE ** 2 + dth ** 2 / ANG_SCALE ** 2
        self.stalls[b] = self.stalls[b] + 1 if now > self.last_cost[b] - 1e-3 else 0
        self.last_cost[b] = now
        costs = []  # (cost, contact, length)
        for length in PUSH_LENGTHS:
            k = length / (1 + torque ** 2 / RHO2)  # (C,) COM travel
            pe = e[None] - k[:, None] * d  # (C, 2)
            ae = dth - k * torque / RHO2
            cost = (pe ** 2).sum(1) / POS_SCALE ** 2 + ae ** 2 / ANG_SCALE ** 2
            costs += [(float(cost[i]), i, length) for i in range(len(cost))]
        costs.sort()
        if costs[0][0] >= now:  # nothing helps: stay clear above the T
            return [(*self.tcp[b, :2].tolist(), LIFT_Z, 0.03)]
        # stuck (e.g. the best contact is out of reach): try one of the next best instead
        pick = int(self.rng.integers(1, 8)) if self.stalls[b] >= 2 else 0
        _, i, length = costs[pick]
        start = p + r[i] - d[i] * CLEAR
        end = p + r[i] + d[i] * length
        tcp = self.tcp[b].cpu().numpy()
        if np.linalg.norm(tcp[:2] - start) < 0.015:  # already there: push again
            path = []
        else:  # up, over, down
            path = [(*tcp[:2], LIFT_Z, 0.06)] if tcp[2] < LIFT_Z - 0.01 else []
            path += [(*start, LIFT_Z, 0.1), (*start, PUSH_Z, 0.06)]
        return path + [(*end, PUSH_Z, 0.025 if length < 0.03 else 0.04)]

    def command(self, phase: str) -> Command:
        return Command(self.target, speed=0.05, done=torch.zeros(self.num_envs, dtype=torch.bool, device=self.device))

    def act(self) -> torch.Tensor:
        reached = (self.target - self.tcp).norm(dim=-1) < 0.01
        for b in range(self.num_envs):
            if reached[b] or self.age[b] >= 10:
                if not self.queue[b]:
                    self.queue[b] = self._plan(b)
                x, y, z, v = self.queue[b].pop(0)
                self.target[b] = torch.tensor([x, y, z], dtype=torch.float32, device=self.device)
                self.speed[b] = v
                self.age[b] = 0
        self.age += 1
        return self.to_action(self.target, self.speed, torch.zeros(self.num_envs, device=self.device))
