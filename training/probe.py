"""Linear probes: does a latent action encode the executed actions and the motion of arm and object?

    python -m training.probe --pack assets/pack --data data/pipeline --out runs/probes.json

For every test pair ``(t, t + k)`` (``k`` = the pack's action chunk, every ``--stride`` steps) a
ridge probe, cross-validated by episode (:mod:`rla.probes`), reads from the flattened latent
action ``u``: (a) the executed action chunk ``a_t … a_{t+k−1}``, (b) the end-effector displacement
and (c) the object displacement (both from the recorded simulator states, :mod:`rla.data.states`).
The same probes on two nulls that could also score: a PCA of the raw residual ``z_{t+k} − z_t``
with as many dimensions as ``u``, and ``u`` from an untrained autoencoder of the same shape. R² and
paired differences carry 95 % bootstrap CIs by episode (:mod:`rla.stats`); a target counts as
encoded only if ``u`` beats both nulls.

Writes ``--out`` (json; the markdown table is printed) and, unless ``--weights none``, the probes
fitted on all pairs to ``--weights`` (default ``PACK/probes.npz``), which the app's *Latent actions*
tab reads. Episodes: the pack's recorded test split, or, for packs without splits, every episode
in ``--data`` (said so in the output).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rla.probing import held_out_episodes, render_probes, run_probes


def main(argv=None) -> dict:
    from rla.data import FeatureCache
    from rla.pack import ModelPack
    from training.common import DEFAULT_CACHE

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", required=True)
    parser.add_argument("--data", nargs="+", required=True, help="recorded .h5 files or folders holding the pack's test split")
    parser.add_argument("--out", type=Path, required=True, help="report (.json)")
    parser.add_argument("--weights", default=None, help="where to save the probes fitted on all pairs (default PACK/probes.npz; 'none' skips)")
    parser.add_argument("--k", type=int, default=None, help="frames between the two of a pair (default: the pack's chunk)")
    parser.add_argument("--stride", type=int, default=2, help="steps between consecutive pairs of an episode")
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="feature cache folder")
    args = parser.parse_args(argv)
    pack = ModelPack.load(args.pack)
    episodes, note = held_out_episodes(pack, args.data)
    cache = FeatureCache(args.cache)
    report, probes = run_probes(pack, episodes, [cache.episode_tokens(e, pack.encoder).half() for e in episodes],  # exact: cached as float16
                                k=args.k, stride=args.stride, seed=args.seed, n_boot=args.n_boot)
    report["episodes_from"] = note
    report["command"] = "python -m training.probe " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    weights = args.weights or str(Path(args.pack) / "probes.npz")
    if weights.lower() != "none":
        probes.save(weights)
    print(f"Episodes: {note}\n\n{render_probes(report)}")
    return report


if __name__ == "__main__":
    from training.common import cli

    cli(main)
