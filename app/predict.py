"""Growing a session's rollout: predict chunks with the RLA world model and (optionally) the baselines.

Pure of Gradio except for the user-facing errors; the world-model tab calls these.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from app.errors import user_error
from app.frames import Picked
from app.state import Rollout

RLA = "rla"


def start_rollout(pack, pack_key: str, features, picked: Picked) -> Rollout:
    """A fresh rollout from a picked frame (encoded through the feature cache)."""
    tokens, ms = features.encode(pack.encoder, picked.frame[None])
    ro = Rollout(pack_key=pack_key, start_key=picked.key, start_frame=picked.frame, start_tokens=tokens[0].numpy(),
                 chunk=int(pack.info.chunk), episode_id=None if picked.episode is None else str(picked.episode.episode_id),
                 t0=picked.t)
    ro.timings = {"encode": ms}
    return ro


def recorded_chunks(episode, t0: int, done_steps: int, chunk: int, count: int) -> list[np.ndarray]:
    """Up to ``count`` chunks ``(K, A)`` of an episode's recorded actions after the steps already predicted."""
    out, start = [], t0 + done_steps
    for c in range(count):
        a = episode.actions[start + c * chunk: start + (c + 1) * chunk]
        if len(a) < chunk:
            break
        out.append(np.asarray(a, dtype=np.float32))
    return out


def _generator(seed: int, index: int, method: str) -> torch.Generator:
    """Noise for chunk ``index`` of ``method``: reproducible, and different for every chunk."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + index * 7919 + sum(map(ord, method))) % 2**63)


@torch.no_grad()
def predict_chunk(model, pack, z_t: np.ndarray, actions: np.ndarray, *, steps: int, samples: int, seed: int, index: int,
                  method: str) -> dict:
    """One chunk: ``z_t (N, D)``, ``actions (K, A)`` → tokens, frame, per-pixel spread and timings.

    With ``samples > 1`` (stochastic models only) the first sample continues the rollout and the
    spread is the per-pixel standard deviation of the decoded samples, averaged over channels.
    """
    z = torch.from_numpy(np.asarray(z_t, dtype=np.float32))[None]  # (1, N, D)
    a = torch.from_numpy(np.asarray(actions, dtype=np.float32))[None]  # (1, K, A)
    n = samples if getattr(model, "stochastic", False) else 1
    gen = _generator(seed, index, method)
    start = time.perf_counter()
    z_next = model.predict_samples(z, a, n, steps=steps, generator=gen)[:, 0] if n > 1 else model.predict(z, a, steps=steps, generator=gen)
    predict_ms = (time.perf_counter() - start) * 1e3
    start = time.perf_counter()
    images = pack.to_images(z_next).numpy()  # (S, H, W, 3)
    decode_ms = (time.perf_counter() - start) * 1e3
    spread = images.astype(np.float32).std(0).mean(-1) if n > 1 else None
    return {"tokens": z_next[0].numpy(), "frame": images[0], "spread": spread, "predict": predict_ms, "decode": decode_ms}


def extend(ro: Rollout, pack, chunks: list[np.ndarray], recorded: bool, *, steps: int, samples: int, seed: int,
           baselines: bool) -> None:
    """Append predicted chunks (one per action chunk ``(K, A)``) to the rollout, in place."""
    timing = {RLA: {"predict": 0.0, "decode": 0.0}}
    for a in chunks:
        index = ro.num_chunks
        out = predict_chunk(pack.world_model, pack, ro.last_tokens(RLA), a, steps=steps, samples=samples, seed=seed,
                            index=index, method=RLA)
        ro.tokens.setdefault(RLA, []).append(out["tokens"])
        ro.frames.setdefault(RLA, []).append(out["frame"])
        ro.actions.append(a), ro.recorded.append(recorded), ro.spread.append(out["spread"]), ro.samples.append(samples)
        ro.settings.append({"steps": steps, "seed": seed})
        timing[RLA]["predict"] += out["predict"]
        timing[RLA]["decode"] += out["decode"]
    if baselines:
        timing.update(sync_baselines(ro, pack, steps=steps, seed=seed))
    ro.timings = {"encode": ro.timings.get("encode", 0.0), "chunks": len(chunks), "steps": steps, "samples": samples, **timing}


def sync_baselines(ro: Rollout, pack, *, steps: int, seed: int) -> dict:
    """Predict every chunk the baselines have not seen yet (same actions as the RLA rollout)."""
    timing = {}
    for name, model in pack.baselines.items():
        t = {"predict": 0.0, "decode": 0.0}
        seq_z, seq_f = ro.tokens.setdefault(name, []), ro.frames.setdefault(name, [])
        while len(seq_z) < ro.num_chunks:
            i = len(seq_z)
            out = predict_chunk(model, pack, ro.last_tokens(name), ro.actions[i], steps=steps, samples=1, seed=seed, index=i, method=name)
            seq_z.append(out["tokens"]), seq_f.append(out["frame"])
            t["predict"] += out["predict"]
            t["decode"] += out["decode"]
        timing[name] = t
    return timing


def check_settings(chunks, steps, samples, seed) -> tuple[int, int, int, int]:
    """Widget values → validated ints (``gr.Error`` naming the bad one)."""
    def whole(value, name, lo, hi):
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise user_error(f"{name} must be a number, got {value!r}.", "Bad input") from None
        if not np.isfinite(f) or f != int(f) or not lo <= f <= hi:
            raise user_error(f"{name} must be a whole number from {lo} to {hi}, got {value!r}.", "Bad input")
        return int(f)

    return (whole(chunks, "Chunks", 1, 20), whole(steps, "Euler steps", 1, 100), whole(samples, "Samples", 1, 32),
            whole(seed, "Seed", 0, 2**31 - 1))
