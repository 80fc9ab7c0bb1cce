"""The experts' pose math (rla.experts.base.quat_to_matrix and yaw, kept hand-written so that recordings
repeat seed for seed) against ManiSkill's own rotation utilities as the independent reference, and
closed-loop episodes of the tasks whose experts use it."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mani_skill.utils.geometry.rotation_conversions import matrix_to_euler_angles, quaternion_to_matrix
from mani_skill.utils.structs.pose import Pose

from rla.experts.base import WaypointExpert, quat_to_matrix, yaw
from rla.experts.pull_cube_tool import PullCubeToolExpert
from rla.experts.push_t import PushTExpert


def random_quats(n: int, seed: int = 0) -> torch.Tensor:
    """Unit wxyz quaternions, plus the simulator's off-unit identity (norm 1 + 1.2e-7) and RollBall's root."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, generator=g)
    q = q / q.norm(dim=-1, keepdim=True)
    sim = torch.tensor([[1.0000001192092896, 0, 0, 0], [0.7070568203926086, 0, 7.2e-10, -0.7071568369865417]])
    return torch.cat([q, sim])


def z_quat(angle: float, tilt: float = 0.0) -> torch.Tensor:
    """wxyz of a rotation by ``angle`` about z after a small ``tilt`` about x."""
    qz = torch.tensor([math.cos(angle / 2), 0, 0, math.sin(angle / 2)])
    qx = torch.tensor([math.cos(tilt / 2), math.sin(tilt / 2), 0, 0])
    w1, x1, y1, z1 = qz
    w2, x2, y2, z2 = qx
    return torch.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def fake_env(num_envs: int, robot: str = "panda", **scene) -> SimpleNamespace:
    """Just what an expert reads: ``env.unwrapped`` with the robot, its tcp and the named objects."""
    agent = SimpleNamespace(tcp=SimpleNamespace(pose=SimpleNamespace(p=torch.zeros(num_envs, 3))),
                            robot=SimpleNamespace(pose=SimpleNamespace(q=z_quat(0.0).expand(num_envs, 4))))
    u = SimpleNamespace(robot_uids=robot, device=torch.device("cpu"), num_envs=num_envs, agent=agent, **scene)
    return SimpleNamespace(unwrapped=u)


class _Still(WaypointExpert):
    phases = ("still",)

    def command(self, phase):
        raise NotImplementedError


def test_quat_to_matrix_and_yaw_agree_with_maniskill():
    q = random_quats(2000)
    torch.testing.assert_close(quat_to_matrix(q), quaternion_to_matrix(q), atol=1e-6, rtol=0)
    flat = torch.stack([z_quat(a, tilt) for a, tilt in zip(np.linspace(-3.1, 3.1, 50), np.linspace(0, 0.05, 50))])
    torch.testing.assert_close(yaw(flat), matrix_to_euler_angles(quaternion_to_matrix(flat), "ZYX")[:, 0], atol=1e-6, rtol=0)


def test_to_action_turns_world_deltas_into_the_root_frame():
    q = random_quats(500)
    n = len(q)
    env = fake_env(n)
    env.unwrapped.agent.robot.pose.q = q
    delta = torch.randn(n, 3, generator=torch.Generator().manual_seed(1)) * 0.02  # inside ±0.1 m: no clamping
    action = _Still(env).to_action(delta, torch.ones(n), torch.full((n,), -1.0))
    want = (Pose.create_from_pq(q=q).inv() * Pose.create_from_pq(p=delta)).p / 0.1  # ManiSkill: world → root
    assert action.shape == (n, 4) and (action[:, 3] == -1).all()
    torch.testing.assert_close(action[:, :3], want, atol=1e-5, rtol=0)
    # by hand: RollBall's root is turned −90° about z, so world +x is the root's +y
    one = fake_env(1, robot="panda_stick")
    one.unwrapped.agent.robot.pose.q = z_quat(-math.pi / 2)[None]
    a = _Still(one).to_action(torch.tensor([[0.05, 0.0, 0.0]]), torch.ones(1), torch.zeros(1))
    torch.testing.assert_close(a, torch.tensor([[0.0, 0.5, 0.0]]), atol=1e-6, rtol=0)


def test_pull_cube_tool_finds_tool_points_in_the_world():
    q = random_quats(200, seed=2)
    p = torch.randn(len(q), 3, generator=torch.Generator().manual_seed(3))
    tool = Pose.create_from_pq(p, q)
    expert = PullCubeToolExpert(fake_env(len(q), l_shape_tool=SimpleNamespace(pose=tool)))
    local = torch.tensor([0.175, 0.05, -0.025])
    torch.testing.assert_close(expert._tool_point(local), (tool * Pose.create_from_pq(p=local)).p, atol=1e-5, rtol=0)
    # by hand: a tool at (1, 2, 0) turned +90° about z puts its (0.15, 0.06, 0) at (1 − 0.06, 2 + 0.15, 0)
    turned = Pose.create_from_pq(torch.tensor([[1.0, 2.0, 0.0]]), z_quat(math.pi / 2)[None])
    hand = PullCubeToolExpert(fake_env(1, l_shape_tool=SimpleNamespace(pose=turned)))
    torch.testing.assert_close(hand._tool_point(torch.tensor([0.15, 0.06, 0.0])), torch.tensor([[0.94, 2.15, 0.0]]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("th, th_goal, tilt", [(0.3, 1.2, 0.0), (3.0, -3.0, 0.0), (-2.5, 0.7, 0.02), (1.0, 1.0, 0.05)])
def test_push_t_measures_the_tee_yaw_and_the_wrapped_angle_error(th, th_goal, tilt):
    tee = SimpleNamespace(pose=Pose.create_from_pq(torch.tensor([[0.1, -0.2, 0.02]]), z_quat(th, tilt)[None]))
    goal = SimpleNamespace(pose=Pose.create_from_pq(torch.tensor([[-0.1, 0.1, 0.0]]), z_quat(th_goal)[None]))
    e, dth, p, got_th = PushTExpert(fake_env(1, "panda_stick", tee=tee, goal_tee=goal))._errors(0)
    assert got_th == pytest.approx(th, abs=1e-5)  # a small tilt about x leaves the yaw alone
    want = (th_goal - th + math.pi) % (2 * math.pi) - math.pi  # e.g. 3.0 → −3.0 is +0.28 rad, not −6.0
    assert dth == pytest.approx(want, abs=1e-5) and -math.pi <= dth < math.pi
    np.testing.assert_allclose(e, [-0.2, 0.3], atol=1e-6)
    np.testing.assert_allclose(p, [0.1, -0.2], atol=1e-6)


@pytest.mark.slow  # ManiSkill, ~5–20 s per task
@pytest.mark.parametrize("task, seed", [("PullCubeTool", 100), ("RollBall", 101), ("PushT", 100)])  # expert_check seeds it solves
def test_the_pose_math_experts_solve_an_episode(task, seed):
    from rla.data import TASKS, make_env
    from rla.experts import ExpertActor

    torch.set_num_threads(1)
    env = make_env(task, obs_mode="state")
    try:
        obs, _ = env.reset(seed=seed)
        actor = ExpertActor(task)
        actor.reset(env, seed)
        solved = False
        for _ in range(TASKS[task].steps):
            obs, _, _, _, info = env.step(actor.act(obs))
            solved = solved or bool(info["success"].any())
    finally:
        env.close()
    assert solved
