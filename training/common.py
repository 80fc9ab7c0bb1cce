"""What every training stage shares: CLI arguments, the encoder, episodes and their tokens."""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from rla.encoders import EncoderSpec, FeatureEncoder, build_encoder
from training.loop import TrainConfig

DEFAULT_CACHE = Path(os.environ.get("RLA_CACHE", Path.home() / ".cache" / "rla-explorer"))


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", required=True, help="recorded .h5 files or folders of them")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--preset", default="cpu", help="model size: tiny, cpu or paper")
    parser.add_argument("--encoder", default="pixel_patch", help="'pixel_patch' or a full timm name, e.g. vit_small_patch14_dinov2.lvd142m")
    parser.add_argument("--encoder-weights", default=None, help="local weights for a timm encoder (default: HF cache / Hub)")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--patch-size", type=int, default=16, help="pixel_patch only")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="feature cache folder")
    parser.add_argument("--splits", type=Path, default=None,
                        help="splits.json (rla.data.Splits, written by training.pipeline): train on 'train', report on 'val'")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="without --splits: episodes held out per task by hash (ad-hoc runs only)")
    parser.add_argument("--minutes", type=float, default=None, help="wall-clock training budget")
    parser.add_argument("--steps", type=int, default=None, help="maximum optimizer steps")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--ema", type=float, default=0.0, help="EMA decay of the weights (0 = off); the EMA weights are saved")
    parser.add_argument("--interaction", type=float, default=0.0,
                        help="fraction of training pairs drawn near robot-object interaction (from the recorded states)")
    parser.add_argument("--exclude-task", action="append", default=[], help="leave a task out of training (repeatable)")
    parser.add_argument("--tasks", nargs="+", default=None, help="use only these tasks (e.g. the tasks of one robot)")


def train_config(args, **defaults) -> TrainConfig:
    """A TrainConfig from the stage's defaults, overridden by the CLI."""
    values = dict(defaults)
    for arg, field in (("minutes", "max_minutes"), ("steps", "max_steps"), ("batch_size", "batch_size"), ("lr", "lr")):
        if getattr(args, arg) is not None:
            values[field] = getattr(args, arg)
    return TrainConfig(seed=args.seed, ema_decay=args.ema, **values)


def encoder_spec(args) -> EncoderSpec:
    if args.encoder == "pixel_patch":
        return EncoderSpec(kind="pixel_patch", image_size=args.image_size, patch_size=args.patch_size)
    return EncoderSpec(kind="timm", name=args.encoder, image_size=args.image_size)


@dataclass
class TokenData:
    """Episodes of one split with their tokens ``(T+1, N, D)`` each."""

    episodes: list
    tokens: list

    def pairs(self, k_range: tuple[int, int], seed: int = 0, interaction: float = 0.0):
        """Training pairs; ``interaction`` of each batch drawn near robot–object interaction."""
        from rla.data import PairDataset
        from rla.data.interaction import start_weights

        pairs = PairDataset(self.episodes, k_range=k_range, seed=seed, tokens=self.tokens)
        if interaction > 0:
            pairs.set_focus(start_weights(self.episodes, horizon=k_range[1]), interaction)
        return pairs


def load_splits(args, encoder: FeatureEncoder | None = None) -> tuple[FeatureEncoder, TokenData, TokenData]:
    """Encoder plus train and validation token data.

    With ``--splits`` the recorded split decides (test episodes are never loaded for training);
    without it, ``--val-fraction`` of each task's episodes (by hash) is held out.
    """
    from rla.data import FeatureCache, Splits, load_episodes, split_episodes

    if args.threads:
        torch.set_num_threads(args.threads)
    encoder = encoder or build_encoder(encoder_spec(args), weights=args.encoder_weights)
    episodes = load_episodes(args.data)
    if args.tasks:
        episodes = [ep for ep in episodes if ep.task in set(args.tasks)]
    check_one_action_space(episodes)
    if args.splits:
        splits = Splits.load(args.splits)
        train, val = splits.select(episodes, "train", tasks=args.tasks), splits.select(episodes, "val", tasks=args.tasks)
    else:
        train, val = split_episodes(episodes, val_fraction=args.val_fraction, seed=0)
    train = [ep for ep in train if ep.task not in set(args.exclude_task)]
    if not train:
        raise SystemExit(f"no training episodes left after excluding {args.exclude_task}")
    cache = FeatureCache(args.cache)
    encode = lambda eps: [cache.episode_tokens(ep, encoder) for ep in eps]  # noqa: E731
    return encoder, TokenData(train, encode(train)), TokenData(val, encode(val))


def check_one_action_space(episodes: list) -> None:
    """World models are trained per action space (per robot), as in the paper."""
    if not episodes:
        raise SystemExit("no episodes found in --data (after --tasks filtering)")
    by_dim: dict[int, set] = {}
    for ep in episodes:
        by_dim.setdefault(int(ep.actions.shape[1]), set()).add(ep.task)
    if len(by_dim) > 1:
        groups = "; ".join(f"{dim}-D actions: {', '.join(sorted(tasks))}" for dim, tasks in sorted(by_dim.items()))
        raise SystemExit(f"--data mixes action spaces ({groups}). Train one model per robot: pass --tasks with the tasks of one robot.")


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=float))


def cli(main) -> None:
    """Run a ``python -m training.X`` entry point: bad input prints its message and exits 2
    (no traceback); ``--debug`` anywhere on the command line keeps the traceback."""
    from rla.data import DatasetError
    from rla.encoders import EncoderWeightsError
    from rla.hub import CheckpointError
    from rla.pack import PackError

    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    try:
        main()
    except SystemExit as err:
        if isinstance(err.code, str):  # raise SystemExit("message"): a refusal, not a crash
            if debug:
                raise
            print(f"error: {err.code}", file=sys.stderr)
            sys.exit(2)
        raise
    except (DatasetError, PackError, CheckpointError, EncoderWeightsError, FileNotFoundError, ValueError) as err:
        if debug:
            raise
        print(f"error: {err}\n(run with --debug for the traceback)", file=sys.stderr)
        sys.exit(2)
