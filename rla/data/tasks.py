"""The ManiSkill 3 tasks this project records, with their robot and camera, and the env factory.

Short task names (``PullCube``, ``play``, …) map to ManiSkill env ids. Every task uses one fixed
``base_camera`` chosen so that the robot's end-effector and the task objects fill a useful part
of a 128×128 frame (ManiSkill's own default cameras leave a cube 2–3 px wide at 64 px). The
camera is recorded in each dataset's json, so a frame can always be traced to its viewpoint.

``mani_skill`` is imported lazily inside :func:`make_env`: the loader side of ``rla.data`` works
without it.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_CONTROL_MODE = "pd_ee_delta_pos"  # xyz ±0.1 m per step in [-1, 1] (+ gripper for panda)
SUPPORTED_CONTROL_MODES = ("pd_ee_delta_pos", "pd_ee_delta_pose")  # what the scripted experts drive
CAMERA_NAME = "base_camera"


@dataclass(frozen=True)
class CameraSpec:
    """A pinhole camera placed with ``look_at(eye, target)``; world frame, metres, radians."""

    eye: tuple[float, float, float]  # camera position
    target: tuple[float, float, float]  # point the optical axis passes through
    fov: float  # vertical field of view in radians

    def to_dict(self) -> dict:
        return {"eye": list(self.eye), "target": list(self.target), "fov": self.fov}


@dataclass(frozen=True)
class TaskSpec:
    """One recordable task."""

    name: str  # short CLI name, e.g. "PullCube"
    env_id: str  # ManiSkill env id, e.g. "PullCube-v1"
    robot: str  # robot uid; only the Panda family ships with the mani_skill wheel
    camera: CameraSpec  # the recorded base camera
    steps: int  # default episode length T (actions); frames are T + 1
    description: str = ""  # one line for docs and the app
    env_kwargs: dict = field(default_factory=dict)  # extra gym.make kwargs

    @property
    def has_gripper(self) -> bool:
        return self.robot != "panda_stick"

    def action_dim(self, control_mode: str = DEFAULT_CONTROL_MODE) -> int:
        """Size ``A`` of the normalised action for ``control_mode`` (ee-delta modes only)."""
        arm = {"pd_ee_delta_pos": 3, "pd_ee_delta_pose": 6}[control_mode]
        return arm + int(self.has_gripper)


# Cameras were chosen by rendering three seeds per task at 128 px and looking at them
# (docs/data.md shows the result): a 3/4 view from the front-left, high enough that the arm
# does not hide the objects. RollBall's ball travels ~1.5 m, so its view is wide and the ball
# is only ~5 px across.
TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec("PushCube", "PushCube-v1", "panda", CameraSpec((0.35, 0.4, 0.45), (0.02, 0.0, 0.0), 0.95), 50,
                 "push the blue cube forward onto the target"),
        TaskSpec("PullCube", "PullCube-v1", "panda", CameraSpec((0.2, 0.4, 0.45), (-0.12, 0.0, 0.0), 0.95), 50,
                 "pull the blue cube back onto the target"),
        TaskSpec("PokeCube", "PokeCube-v1", "panda", CameraSpec((0.52, 0.42, 0.42), (0.14, 0.0, 0.0), 0.9), 80,
                 "grasp the peg and poke the red cube onto the target"),
        TaskSpec("PullCubeTool", "PullCubeTool-v1", "panda", CameraSpec((0.3, -0.55, 0.6), (-0.05, -0.08, 0.0), 1.05),
                 100, "grasp the L-shaped tool and hook the out-of-reach cube back"),
        TaskSpec("RollBall", "RollBall-v1", "panda_stick", CameraSpec((0.6, 0.02, 1.5), (-0.1, 0.02, 0.0), 1.15), 80,
                 "strike the ball so it rolls onto the far target"),
        TaskSpec("PushT", "PushT-v1", "panda_stick", CameraSpec((0.08, 0.12, 0.6), (-0.24, -0.02, 0.0), 1.05), 200,
                 "push the T block onto the grey T outline"),
        TaskSpec("play", "StackCube-v1", "panda", CameraSpec((0.35, 0.4, 0.45), (0.0, 0.0, 0.0), 0.95), 100,
                 "no goal: the arm visits random waypoints and pokes two cubes"),
    )
}
ENV_ID_TO_TASK = {t.env_id: t.name for t in TASKS.values() if t.name != "play"}


def get_task(name: str) -> TaskSpec:
    """Look a task up by short name or env id; raise ``ValueError`` listing the valid names."""
    if name in TASKS:
        return TASKS[name]
    if name in ENV_ID_TO_TASK:
        return TASKS[ENV_ID_TO_TASK[name]]
    raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")


def make_env(
    task: str | TaskSpec,
    *,
    size: int = 128,
    control_mode: str = DEFAULT_CONTROL_MODE,
    sim_backend: str = "cpu",
    num_envs: int = 1,
    obs_mode: str = "rgb+segmentation",
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    **kwargs: Any,
):
    """Build the ManiSkill env of ``task`` with this project's camera.

    Args:
        task: short name (``"PullCube"``) or spec.
        size: camera width = height in pixels.
        control_mode: ManiSkill controller, ``pd_ee_delta_pos`` by default.
        sim_backend: ``"cpu"`` (one env, CPU renderer) or ``"gpu"`` (``num_envs`` parallel envs,
            GPU physics and renderer; needs CUDA).
        max_episode_steps: time limit; defaults to the task's ``steps``.

    Returns:
        The gymnasium env (not wrapped for recording).
    """
    spec = get_task(task) if isinstance(task, str) else task
    if sim_backend not in ("cpu", "gpu"):
        raise ValueError(f"sim_backend must be 'cpu' or 'gpu', got {sim_backend!r}")
    if sim_backend == "cpu" and num_envs != 1:
        raise ValueError("the CPU simulator runs one env per process; use --sim-backend gpu for --num-envs > 1")
    os.environ.setdefault("MS_SKIP_ASSET_DOWNLOAD_PROMPT", "1")
    import gymnasium as gym
    import mani_skill.envs  # noqa: F401  (registers the envs)
    from mani_skill.utils import sapien_utils

    cam = spec.camera
    pose = sapien_utils.look_at(eye=list(cam.eye), target=list(cam.target))
    sensor_configs = {CAMERA_NAME: dict(pose=pose, fov=cam.fov, width=size, height=size)}
    return gym.make(
        spec.env_id,
        num_envs=num_envs,
        obs_mode=obs_mode,
        control_mode=control_mode,
        robot_uids=spec.robot,
        sim_backend=sim_backend,
        render_backend=sim_backend,
        render_mode=render_mode,
        sensor_configs=sensor_configs,
        max_episode_steps=max_episode_steps or spec.steps,
        **{**spec.env_kwargs, **kwargs},
    )


def segmentation_classes(env) -> dict[int, dict]:
    """Classify every segmentation id of ``env``'s scene.

    Returns ``{id: {"name": str, "kind": "robot" | "object" | "static"}}``: robot links are
    ``robot``; dynamic actors (cube, peg, tool, ball, T) are ``object``; kinematic and static
    actors (table, ground, goal markers) are ``static``. Id 0 (empty space) is absent and is
    background. Foreground = robot + object.
    """
    classes = {}
    for seg_id, entity in env.unwrapped.segmentation_id_map.items():
        if type(entity).__name__ == "Link":
            kind = "robot"
        else:
            kind = "object" if getattr(entity, "px_body_type", None) == "dynamic" else "static"
        classes[int(seg_id)] = {"name": str(entity.name), "kind": kind}
    return dict(sorted(classes.items()))


def camera_record(spec: TaskSpec, size: int) -> dict:
    """The json-serialisable camera description stored with each dataset."""
    return {"name": CAMERA_NAME, "width": size, "height": size, **spec.camera.to_dict()}


def task_record(spec: TaskSpec) -> dict:
    return {k: v for k, v in asdict(spec).items() if k != "camera"}
