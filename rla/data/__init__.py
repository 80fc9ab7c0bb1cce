"""ManiSkill 3 episodes for world-model training and evaluation.

    from rla.data import load_episodes, split_episodes, PairDataset, ChunkEvalSet, FeatureCache
    episodes = load_episodes("assets/examples")            # h5 files or folders
    train, val = split_episodes(episodes, val_fraction=0.1)  # by episode, per task, deterministic
    pairs = PairDataset(train, k_range=(1, 15))               # random-horizon (frame_t, actions, frame_{t+k})
    batch = pairs.sample_batch(32)                            # one shared k per batch
    evalset = ChunkEvalSet(val, num_chunks=3, chunk=10)       # start frame + 3 chunks of 10 actions

Recording lives in ``training/collect.py``; the task list and cameras in :mod:`rla.data.tasks`.
"""
from rla.data.cache import FeatureCache, frames_digest
from rla.data.dataset import ChunkEvalSet, PairDataset, split_episodes
from rla.data.episodes import DatasetError, Episode, find_h5_files, load_episodes, load_file
from rla.data.splits import SEED_RANGES, Splits, check_seeds
from rla.data.tasks import TASKS, CameraSpec, TaskSpec, get_task, make_env, segmentation_classes

__all__ = [
    "CameraSpec", "ChunkEvalSet", "DatasetError", "SEED_RANGES", "Splits", "check_seeds", "Episode", "FeatureCache", "PairDataset", "TASKS", "TaskSpec",
    "find_h5_files", "frames_digest", "get_task", "load_episodes", "load_file", "make_env", "segmentation_classes",
    "split_episodes",
]
