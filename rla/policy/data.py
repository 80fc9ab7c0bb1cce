"""Training data of the World Action Model: a few labelled episodes and many action-less ones.

    data = PolicyData.build(episodes, pack, labelled_fraction=0.05, heldout=10, cache=FeatureCache(root))
    batch = data.sample_batch(64, generator)      # 32 labelled rows first, then 32 action-less rows

Split (deterministic, in the order the episodes were loaded): the last ``heldout`` episodes are
never trained on (they score the heads); of the rest, the first ``n`` successful episodes are
labelled, ``n = max(1, round(fraction × successful))``; every other episode is action-less and is
stored **without** its actions and qpos (:class:`Demo` holds ``None``), so no batch row built from
it can carry them.

Targets of the RLA head: the pack's frozen autoencoder on the tokens of frames ``t`` and
``t + k`` (``k`` = the pack's chunk, inside the autoencoder's training range), standardised with
the dynamics' latent statistics ``(u − u_mean) / u_std``, computed once when the data is built.
Tokens come from :class:`rla.data.FeatureCache` (each frame is encoded once per encoder).

Batches and the controlled comparison: each call draws ONE seed from the caller's generator and
derives two generators from it, one for the labelled rows and one for the action-less rows. A BC
run (``action_less=False``) returns exactly the labelled rows of the WAM batch drawn with the same
generator state, so BC seed k and WAM seed k see the same labelled samples in the same order.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rla.hub import file_sha256  # noqa: F401  (the autoencoder that made the RLA targets is recorded by it)

SEED_SPACE = 2**62


@dataclass
class Demo:
    """One episode as the policy's data holds it. Action-less demos have ``actions = qpos = None``."""

    episode_id: str
    task: str
    num_steps: int  # T actions, T + 1 frames
    success: bool  # solved at some step (success_once)
    tokens: torch.Tensor | None  # (T+1, N, D) float16 pack tokens (tokens trunk)
    frames: np.ndarray | None  # (T+1, H, W, 3) uint8 (image trunks)
    rla: torch.Tensor  # (T+1-k, Q, C) standardised RLA targets for t = 0 … T-k
    actions: np.ndarray | None = None  # (T, A) float32, labelled and held-out demos only
    qpos: np.ndarray | None = None  # (T+1, J) float32, labelled and held-out demos only

    @property
    def has_actions(self) -> bool:
        return self.actions is not None


def split_episodes(episodes: Sequence, labelled_fraction: float, heldout: int = 0) -> tuple[list, list, list]:
    """``(labelled, action_less, heldout)`` episode lists; see the module docstring."""
    if not 0 < labelled_fraction <= 1:
        raise ValueError(f"labelled_fraction must be in (0, 1], got {labelled_fraction}")
    if heldout < 0 or heldout >= len(episodes):
        raise ValueError(f"heldout must be in [0, {len(episodes)}) for {len(episodes)} episodes, got {heldout}")
    pool, held = list(episodes[: len(episodes) - heldout]), list(episodes[len(episodes) - heldout:])
    successful = [e for e in pool if e.succeeded]
    if not successful:
        raise ValueError(f"none of the {len(pool)} training episodes succeeded: there is nothing to imitate")
    n = max(1, round(labelled_fraction * len(successful)))
    labelled = successful[:n]
    ids = {e.episode_id for e in labelled}
    return labelled, [e for e in pool if e.episode_id not in ids], held


@torch.no_grad()
def rla_targets(autoencoder, dynamics, tokens: torch.Tensor, k: int, batch_size: int = 256) -> torch.Tensor:
    """Standardised latent actions ``(T+1-k, Q, C)`` between frames ``t`` and ``t + k`` of one episode.

    ``tokens (T+1, N, D)``; ``autoencoder.encode(z_t, z_{t+k})`` standardised by
    ``dynamics.u_mean`` / ``dynamics.u_std`` (the statistics the world model samples in).
    """
    if not 1 <= k < len(tokens):
        raise ValueError(f"k must be in [1, {len(tokens) - 1}] for an episode of {len(tokens)} frames, got {k}")
    z = tokens.float()
    out = []
    for i in range(0, len(z) - k, batch_size):
        j = min(i + batch_size, len(z) - k)
        out.append(autoencoder.encode(z[i:j], z[i + k:j + k]))
    return ((torch.cat(out) - dynamics.u_mean) / dynamics.u_std).float()


def make_demo(episode, tokens: torch.Tensor, rla: torch.Tensor, *, with_actions: bool, obs: str = "tokens") -> Demo:
    """A :class:`Demo` of an episode; actions and qpos are copied only ``with_actions``."""
    return Demo(
        episode_id=str(episode.episode_id), task=str(episode.task), num_steps=int(episode.num_steps), success=bool(episode.succeeded),
        tokens=tokens.half() if obs == "tokens" else None,
        frames=np.asarray(episode.frames) if obs == "image" else None,
        rla=rla,
        actions=np.array(episode.actions, dtype=np.float32) if with_actions else None,
        qpos=np.array(episode.qpos, dtype=np.float32) if with_actions else None,
    )


class PolicyData:
    """Labelled, action-less and held-out demos, and the batches drawn from them."""

    def __init__(self, labelled: list[Demo], action_less: list[Demo], heldout: list[Demo], *, chunk: int, rla_k: int,
                 obs: str = "tokens", labelled_share: float = 0.5, action_less_rows: bool = True):
        if not labelled:
            raise ValueError("PolicyData needs at least one labelled demo")
        if any(not d.has_actions for d in labelled):
            raise ValueError("every labelled demo must carry actions and qpos")
        if any(d.has_actions for d in action_less):
            raise ValueError("action-less demos must not carry actions or qpos")
        if obs not in ("tokens", "image"):
            raise ValueError(f"obs must be 'tokens' or 'image', got {obs!r}")
        if not 0 < labelled_share <= 1:
            raise ValueError(f"labelled_share must be in (0, 1], got {labelled_share}")
        if action_less_rows and not action_less and labelled_share < 1:
            raise ValueError("no action-less demos to fill the action-less rows: pass action_less_rows=False (BC)")
        self.labelled, self.action_less, self.heldout = labelled, action_less, heldout
        self.chunk, self.rla_k, self.obs = chunk, rla_k, obs
        self.labelled_share = labelled_share
        self.action_less_rows = action_less_rows  # False: the BC arm, batches are the labelled rows only

    @classmethod
    def build(cls, episodes: Sequence, pack, *, labelled_fraction: float = 0.05, heldout: int = 0, chunk: int | None = None,
              rla_k: int | None = None, obs: str = "tokens", cache=None, action_less_rows: bool = True,
              labelled_share: float = 0.5, progress=None) -> PolicyData:
        """Split ``episodes`` (one task), encode them (through ``cache`` when given) and compute RLA targets.

        ``chunk`` and ``rla_k`` default to the pack's chunk. With ``action_less_rows=False`` (the
        BC arm) the action-less episodes are not even encoded.
        """
        chunk = chunk or pack.info.chunk
        rla_k = rla_k or pack.info.chunk
        lab, rest, held = split_episodes(episodes, labelled_fraction, heldout)
        dims = {int(e.actions.shape[1]) for e in lab}
        if dims != {pack.info.action_dim}:
            raise ValueError(f"the episodes have {sorted(dims)}-D actions, the pack {pack.info.action_dim}-D: "
                             "record them with the pack's robot and control mode")
        rest = rest if action_less_rows else []

        def demos(eps, with_actions):
            out = []
            for e in eps:
                z = cache.episode_tokens(e, pack.encoder) if cache is not None else pack.encoder.encode(e.frames)
                out.append(make_demo(e, z, rla_targets(pack.autoencoder, pack.dynamics, z, rla_k), with_actions=with_actions, obs=obs))
                if progress:
                    progress(1)
            return out

        return cls(demos(lab, True), demos(rest, False), demos(held, True), chunk=chunk, rla_k=rla_k, obs=obs,
                   labelled_share=labelled_share, action_less_rows=action_less_rows)

    # ---- statistics ------------------------------------------------------------------------------

    def normalizer_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All labelled actions ``(M, A)`` and qpos ``(M', J)``: the normaliser is fitted on these only."""
        actions = torch.from_numpy(np.concatenate([d.actions for d in self.labelled]))
        qpos = torch.from_numpy(np.concatenate([d.qpos for d in self.labelled]))
        return actions, qpos

    def summary(self) -> dict:
        return {
            "labelled_episodes": [d.episode_id for d in self.labelled],
            "action_less_episodes": len(self.action_less),
            "heldout_episodes": [d.episode_id for d in self.heldout],
            "labelled_samples": sum(d.num_steps for d in self.labelled),
            "action_less_samples": sum(d.num_steps for d in self.action_less),
            "chunk": self.chunk, "rla_k": self.rla_k, "obs": self.obs, "labelled_share": self.labelled_share,
        }

    # ---- batches ---------------------------------------------------------------------------------

    def rows(self, batch_size: int) -> tuple[int, int]:
        """(labelled rows, action-less rows) of a batch of ``batch_size``."""
        n_lab = max(1, round(self.labelled_share * batch_size))
        return n_lab, (batch_size - n_lab if self.action_less_rows else 0)

    def sample_batch(self, batch_size: int, generator: torch.Generator | None = None) -> dict:
        """Labelled rows first, then action-less rows (none for BC); see the module docstring."""
        seed = int(torch.randint(0, SEED_SPACE, (1,), generator=generator))
        n_lab, n_free = self.rows(batch_size)
        parts = [self.draw(self.labelled, n_lab, torch.Generator().manual_seed(seed))]
        if n_free:
            parts.append(self.draw(self.action_less, n_free, torch.Generator().manual_seed((seed + 1) % SEED_SPACE)))
        return collate(parts)

    def draw(self, demos: list[Demo], n: int, generator: torch.Generator) -> dict:
        """``n`` rows ``(demo, t)`` drawn uniformly over every step ``t < T`` of ``demos``."""
        steps = torch.tensor([d.num_steps for d in demos], dtype=torch.float64)
        di = torch.multinomial(steps, n, replacement=True, generator=generator)
        t = (torch.rand(n, generator=generator) * steps[di]).long()
        return self.rows_of(demos, di.tolist(), t.tolist())

    def rows_of(self, demos: list[Demo], which: list[int], ts: list[int]) -> dict:
        """The batch rows of ``demos[which[i]]`` at step ``ts[i]``.

        Always: ``tokens (n, N, D)`` float32 or ``image (n, H, W, 3)`` uint8, ``rla (n, Q, C)``,
        ``rla_valid (n,)`` (``t + k <= T``), ``labelled (n,)``, ``t (n,)``. Only when the demos carry
        actions: ``qpos (n, J)``, ``actions (n, K, A)`` and ``action_pad (n, K)``.
        """
        picked = [demos[i] for i in which]
        rla_shape = picked[0].rla.shape[1:]
        batch = {
            "rla": torch.stack([d.rla[t] if t < len(d.rla) else torch.zeros(rla_shape) for d, t in zip(picked, ts)]),
            "rla_valid": torch.tensor([t < len(d.rla) for d, t in zip(picked, ts)]),
            "t": torch.tensor(ts, dtype=torch.long),
        }
        if self.obs == "tokens":
            batch["tokens"] = torch.stack([d.tokens[t] for d, t in zip(picked, ts)]).float()
        else:
            batch["image"] = torch.from_numpy(np.stack([d.frames[t] for d, t in zip(picked, ts)]))
        with_actions = [d.has_actions for d in picked]
        if any(with_actions) and not all(with_actions):
            raise ValueError("rows_of: draw labelled and action-less demos separately")
        batch["labelled"] = torch.full((len(picked),), all(with_actions), dtype=torch.bool)
        if all(with_actions):
            k = self.chunk
            acts, pad = [], []
            for d, t in zip(picked, ts):
                a = d.actions[t:t + k]
                pad.append(np.arange(k) >= len(a))
                acts.append(np.concatenate([a, np.repeat(a[-1:], k - len(a), 0)]) if len(a) < k else a)
            batch["actions"] = torch.from_numpy(np.stack(acts))
            batch["action_pad"] = torch.from_numpy(np.stack(pad))
            batch["qpos"] = torch.from_numpy(np.stack([d.qpos[t] for d, t in zip(picked, ts)]))
        return batch


def collate(parts: list[dict]) -> dict:
    """Concatenate batch parts row-wise; keys that only some parts have (actions, qpos) cover those parts' rows."""
    out = {}
    for key in dict.fromkeys(k for p in parts for k in p):
        out[key] = torch.cat([p[key] for p in parts if key in p])
    return out


@torch.no_grad()
def heldout_report(policy, data: PolicyData, batch_size: int = 256) -> dict:
    """Scores on the held-out demos (never trained on): action MSE (normalised units, with qpos)
    and the RLA head's R² against predicting the held-out targets' mean (``1 − SSE / SST``)."""
    demos = data.heldout
    if not demos:
        return {}
    policy = policy.eval()
    pairs = [(i, t) for i, d in enumerate(demos) for t in range(d.num_steps)]
    sse_a = n_a = 0.0
    preds, targets = [], []
    for s in range(0, len(pairs), batch_size):
        chunk = pairs[s:s + batch_size]
        b = data.rows_of(demos, [i for i, _ in chunk], [t for _, t in chunk])
        h = policy.features(b, b.get("qpos"), b["labelled"])
        err = (policy.action_chunk(h) - policy.normalize_actions(b["actions"])).square().mean(-1)  # (n, K)
        keep = ~b["action_pad"]
        sse_a += float((err * keep).sum())
        n_a += float(keep.sum())
        if policy.rla_head is not None:
            v = b["rla_valid"]
            preds.append(policy.rla(h)[v])
            targets.append(b["rla"][v])
    report = {"heldout_episodes": len(demos), "heldout_action_mse": sse_a / max(n_a, 1.0)}
    if preds:
        p, y = torch.cat(preds), torch.cat(targets)
        sse = float((p - y).square().sum())
        sst = float((y - y.mean(0)).square().sum())
        report.update(heldout_rla_r2=1.0 - sse / sst if sst > 0 else float("nan"), heldout_rla_pairs=len(y))
    return report
