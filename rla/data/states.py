"""Recorded simulator states of an episode: end-effector and task-object positions, read lazily.

ManiSkill's ``RecordEpisode`` files hold, next to the frames that :mod:`rla.data.episodes` loads,
the simulator state of every step. Only two positions are read here, and only when asked for,
one episode at a time (the frames are never touched)::

    traj_<i>/obs/extra/tcp_pose                 (T+1, 7)   end-effector (tool centre point) pose: xyz, quaternion wxyz
    traj_<i>/env_states/actors/<name>           (T+1, 13)  actor pose xyz + wxyz, linear and angular velocity

Positions are in the world frame, in metres. ::

    states = load_states(episode)          # an rla.data.Episode loaded from an h5 file
    states.displacement("tcp", t, t + k)   # (3,) how far the end-effector moved
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from rla.data.episodes import DatasetError

#: The actor whose motion is "the object" of each task (the thing the robot is meant to move).
OBJECT_ACTORS = {"PushCube": "cube", "PullCube": "cube", "PokeCube": "cube", "PullCubeTool": "cube",
                 "RollBall": "ball", "PushT": "Tee", "play": "cubeA"}


@dataclass(frozen=True)
class EpisodeStates:
    """Positions over one episode's ``T + 1`` frames."""

    tcp: np.ndarray  # (T+1, 3) end-effector position, world frame, metres
    object: np.ndarray  # (T+1, 3) position of the task's object (OBJECT_ACTORS), world frame, metres
    object_name: str  # the actor read for ``object``

    def displacement(self, which: str, t0: int, t1: int) -> np.ndarray:
        """``position[t1] − position[t0]`` of ``"tcp"`` or ``"object"``: ``(3,)``."""
        if which not in ("tcp", "object"):
            raise ValueError(f"unknown state {which!r}; choose 'tcp' or 'object'")
        pos = getattr(self, which)
        return pos[t1] - pos[t0]


def traj_key(episode_id: str) -> str:
    """The h5 group of an episode id (``…/traj_3`` → ``traj_3``)."""
    key = str(episode_id).rsplit("/", 1)[-1]
    if not key.startswith("traj_"):
        raise DatasetError(f"episode id {episode_id!r} does not name a traj_<i> group of a RecordEpisode file")
    return key


def object_actor(task: str, actors) -> str:
    """The task's object among the recorded ``actors``: :data:`OBJECT_ACTORS`, else the only actor
    that is neither the table nor a goal marker."""
    name = OBJECT_ACTORS.get(task)
    if name in actors:
        return name
    movable = [a for a in actors if not a.startswith(("table", "goal", "ground"))]
    if len(movable) == 1:
        return movable[0]
    raise DatasetError(f"cannot tell which actor is the object of task {task!r} among {sorted(actors)}; "
                       "add it to rla.data.states.OBJECT_ACTORS")


def load_states(episode) -> EpisodeStates:
    """The recorded positions of ``episode`` (an :class:`rla.data.Episode` with a ``source`` h5).

    Raises:
        DatasetError: the episode was not loaded from a file, or the file lacks ``obs/extra/tcp_pose``
            or ``env_states`` (record with ``training.collect``, which keeps both).
    """
    source = getattr(episode, "source", "")
    if not source:
        raise DatasetError(f"episode {episode.episode_id}: not loaded from an h5 file, so it has no recorded simulator states")
    return _read(str(source), traj_key(episode.episode_id), episode.task)


@functools.lru_cache(maxsize=512)
def _read(source: str, key: str, task: str) -> EpisodeStates:
    import h5py

    where = f"{source}:{key}"
    try:
        with h5py.File(source, "r") as f:
            if key not in f:
                raise DatasetError(f"{where}: no such episode in the file")
            g = f[key]
            if "obs/extra/tcp_pose" not in g:
                raise DatasetError(f"{where}: no obs/extra/tcp_pose (end-effector pose) recorded")
            if "env_states/actors" not in g:
                raise DatasetError(f"{where}: no env_states/actors recorded")
            actors = g["env_states/actors"]
            name = object_actor(task, list(actors))
            tcp = g["obs/extra/tcp_pose"][:, :3].astype(np.float64)
            obj = actors[name][:, :3].astype(np.float64)
    except OSError as err:
        raise DatasetError(f"{where}: cannot read (truncated or corrupt file?): {err}") from err
    if tcp.shape != obj.shape:
        raise DatasetError(f"{where}: tcp_pose has {len(tcp)} steps but {name} has {len(obj)}")
    tcp.setflags(write=False)
    obj.setflags(write=False)
    return EpisodeStates(tcp=tcp, object=obj, object_name=name)
