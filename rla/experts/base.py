"""Scripted experts that drive ``pd_ee_delta_pos`` from the simulator's true object poses.

An expert is a list of named phases. Each phase maps the current scene to a :class:`Command`
(a world-frame end-effector target, a gripper value, a speed and a per-env ``done`` flag); the
base class keeps one phase index per parallel env, so the same code runs one CPU env or N GPU
envs. Positions are torch tensors ``(B, 3)`` on the env's device.

Action convention (ManiSkill ``pd_ee_delta_pos``): arm dims in [-1, 1] ↔ ±0.1 m of
end-effector translation per control step (20 Hz) *in the robot's root frame*; the optional
last dim is the gripper, +1 open / −1 closed.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch

METRES_PER_UNIT = 0.1  # pd_ee_delta_pos: action 1.0 = 0.1 m
OPEN, CLOSED = 1.0, -1.0


@dataclass
class Command:
    """What one phase asks of the arm, for every env at once."""

    target: torch.Tensor  # (B, 3) world-frame tcp target, metres
    gripper: float | torch.Tensor = CLOSED  # scalar or (B,)
    speed: float = 0.05  # max tcp travel per step, metres
    done: torch.Tensor | None = None  # (B,) bool; None = "target reached within tol"
    tol: float = 0.01  # metres, used when done is None


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """wxyz quaternions ``(B, 4)`` → rotation matrices ``(B, 3, 3)``.

    Kept on purpose instead of ManiSkill's ``rotation_conversions.quaternion_to_matrix``: that one
    differs by 1–3 ulp on about half of all unit quaternions, which the simulator amplifies in
    closed loop. Measured with the swap (teacher-forced actions agree to 3.2e-7): PullCubeTool and
    RollBall episodes drift by 3e-5 and 4e-5, PushT picks another push. PullCubeTool recordings
    train and test the default pack, so the swap would break "the same command records the same
    files" for the pack's data. ManiSkill's utilities are the reference these functions are tested
    against instead (``tests/data/test_experts.py``).
    """
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*q.shape[:-1], 3, 3)


def yaw(q: torch.Tensor) -> torch.Tensor:
    """Rotation about world z of wxyz quaternions ``(B, 4)`` → ``(B,)`` radians."""
    w, x, y, z = q.unbind(-1)
    return torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def xy_unit(v: torch.Tensor) -> torch.Tensor:
    """``(B, 3)`` → unit vectors in the xy plane ``(B, 3)`` (z = 0)."""
    v = v.clone()
    v[:, 2] = 0
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-6)


class WaypointExpert(ABC):
    """Base class: per-env phase machine → normalised ee-delta actions ``(B, A)``.

    Subclasses set ``phases`` and implement :meth:`command`; they may override
    :meth:`on_reset` to sample per-episode choices with ``self.rng``.
    """

    phases: tuple[str, ...] = ()
    max_phase_steps: int = 60  # a phase that takes longer than this is skipped (stuck)

    def __init__(self, env, control_mode: str = "pd_ee_delta_pos", rng: np.random.Generator | None = None):
        self.u = env.unwrapped
        self.control_mode = control_mode
        self.has_gripper = self.u.robot_uids != "panda_stick"
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.device = self.u.device
        self.num_envs = self.u.num_envs

    # ----------------------------------------------------------------- scene access
    @property
    def tcp(self) -> torch.Tensor:
        return self.u.agent.tcp.pose.p  # (B, 3)

    def reset(self) -> None:
        """Call after ``env.reset``: restart every env at phase 0."""
        self.phase = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.steps_in_phase = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self.hold = self.tcp.clone()
        self.on_reset()

    def on_reset(self) -> None:  # noqa: B027 (an optional hook, empty by default)
        """Per-episode setup (sample offsets, remember initial poses)."""

    @abstractmethod
    def command(self, phase: str) -> Command:
        """The command of ``phase`` for all envs (cheap; evaluated for every phase)."""

    def phase_name(self, env_idx: int = 0) -> str:
        return self.phases[int(self.phase[env_idx])]

    # ----------------------------------------------------------------- control
    def act(self) -> torch.Tensor:
        """Advance the phase machine and return actions ``(B, A)`` in [-1, 1]."""
        n = len(self.phases)
        for _ in range(2):  # a phase that finishes hands over within the same step
            cmds = [self.command(p) for p in self.phases]
            done = torch.stack([self._done(c) for c in cmds])  # (P, B)
            cur_done = done.gather(0, self.phase[None]).squeeze(0)
            stuck = self.steps_in_phase >= self.max_phase_steps
            advance = (cur_done | stuck) & (self.phase < n - 1)
            if not advance.any():
                break
            self.phase = self.phase + advance.long()
            self.steps_in_phase = torch.where(advance, torch.zeros_like(self.steps_in_phase), self.steps_in_phase)
            self.hold = torch.where(advance[:, None], self.tcp, self.hold)
        self.steps_in_phase += 1
        target = torch.stack([c.target for c in cmds])  # (P, B, 3)
        target = target.gather(0, self.phase[None, :, None].expand(1, -1, 3)).squeeze(0)
        speed = torch.tensor([c.speed for c in cmds], device=self.device)[self.phase]  # (B,)
        grip = torch.stack([torch.as_tensor(c.gripper, dtype=torch.float32, device=self.device).expand(self.num_envs)
                            for c in cmds])
        grip = grip.gather(0, self.phase[None]).squeeze(0)
        return self.to_action(target, speed, grip)

    def _done(self, c: Command) -> torch.Tensor:
        if c.done is not None:
            return c.done.to(self.device).bool()
        return (c.target - self.tcp).norm(dim=-1) < c.tol

    def to_action(self, target: torch.Tensor, speed: torch.Tensor, grip: torch.Tensor) -> torch.Tensor:
        """World-frame tcp target ``(B, 3)`` → normalised action ``(B, A)``."""
        delta = target - self.tcp
        norm = delta.norm(dim=-1, keepdim=True)
        delta = delta * torch.clamp(speed[:, None] / norm.clamp_min(1e-9), max=1.0)
        rot = quat_to_matrix(self.u.agent.robot.pose.q)  # (B, 3, 3) root → world
        delta_root = torch.einsum("bji,bj->bi", rot, delta)  # world → root frame
        arm = (delta_root / METRES_PER_UNIT).clamp(-1, 1)
        parts = [arm]
        if self.control_mode == "pd_ee_delta_pose":
            parts.append(torch.zeros_like(arm))  # keep the orientation
        if self.has_gripper:
            parts.append(grip[:, None])
        return torch.cat(parts, dim=-1).float()
