"""A tiny model pack and synthetic episodes for the app tests, screenshots and benchmark smoke runs.

Frames are 64×64: a grey floor with a coloured square that moves by the first two action
dimensions (``dx``, ``dy``) and turns from orange to green when the gripper action is positive.
The pack uses the exact pixel-patch encoder (16 tokens of 16×16×3) and the ``tiny`` model preset,
trained for a few steps so that predictions depend on the actions.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

SIZE, PATCH, A, CHUNK = 64, 16, 4, 5
ACTION_NAMES = ["dx", "dy", "dz", "gripper"]


@dataclass
class SyntheticEpisode:
    """Duck-types ``rla.data.Episode``."""

    frames: np.ndarray  # (T+1, H, W, 3) uint8
    actions: np.ndarray  # (T, A) float32
    qpos: np.ndarray  # (T+1, 2) the square's position
    success: np.ndarray  # (T,) bool
    foreground: np.ndarray | None  # (T+1, H, W) bool
    task: str
    episode_id: str

    @property
    def num_steps(self) -> int:
        return len(self.actions)

    @property
    def succeeded(self) -> bool:
        return bool(self.success.any())


def render(pos: np.ndarray, grip: float, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """One frame ``(H, W, 3)`` and its foreground mask for a square at ``pos`` (pixels, top-left)."""
    img = np.full((size, size, 3), 90, np.uint8)
    img[:, :, 2] = 110
    img[size - 8:, :] = (60, 60, 70)  # a "table edge" so frames are not uniform
    x, y = int(round(pos[0])), int(round(pos[1]))
    mask = np.zeros((size, size), bool)
    mask[y:y + 12, x:x + 12] = True
    img[mask] = (70, 200, 90) if grip > 0 else (240, 140, 40)
    return img, mask


def synthetic_episodes(n: int = 3, steps: int = 30, seed: int = 0, size: int = SIZE) -> list[SyntheticEpisode]:
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(n):
        pos = rng.uniform(10, size - 24, size=2)
        direction = rng.uniform(-1, 1, size=2)
        acts = np.zeros((steps, A), np.float32)
        frames, masks, qpos = [], [], []
        grip = -1.0
        for t in range(steps + 1):
            img, mask = render(pos, grip, size)
            frames.append(img), masks.append(mask), qpos.append(pos.copy())
            if t == steps:
                break
            if t % 10 == 0:
                direction = rng.uniform(-1, 1, size=2)
                grip = float(rng.choice([-1.0, 1.0]))
            a = np.concatenate([direction + rng.normal(0, 0.1, 2), [0.0, grip]]).clip(-1, 1)
            acts[t] = a
            pos = np.clip(pos + 1.5 * a[:2], 0, size - 12)
        success = np.zeros(steps, bool)
        success[-3:] = i % 2 == 0
        episodes.append(SyntheticEpisode(np.stack(frames), acts, np.stack(qpos).astype(np.float32), success,
                                         np.stack(masks), task=["PushCube", "PullCube"][i % 2], episode_id=f"synthetic-{i}"))
    return episodes


def _pairs(episodes, chunk: int, encoder):
    z_t, z_k, acts, meta = [], [], [], {"task": [], "episode_id": [], "t": [], "k": [], "success": []}
    for ep in episodes:
        z = encoder.encode(ep.frames)
        for t in range(0, ep.num_steps - chunk + 1, 2):
            z_t.append(z[t]), z_k.append(z[t + chunk]), acts.append(torch.from_numpy(ep.actions[t:t + chunk]))
            meta["task"].append(ep.task), meta["episode_id"].append(ep.episode_id)
            meta["t"].append(t), meta["k"].append(chunk), meta["success"].append(bool(ep.success[t + chunk - 1]))
    return torch.stack(z_t), torch.stack(z_k), torch.stack(acts), {k: np.asarray(v) for k, v in meta.items()}


def _train(model, batch, steps, lr=3e-3):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    for _ in range(steps):
        loss, _ = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()


def build_tiny_pack(path: str | Path, episodes=None, train_steps: int = 60, seed: int = 0) -> Path:
    """Build, briefly train (on at most 48 pairs) and save a tiny pack (a few seconds on 2 cores)."""
    from rla import ModelPack, PixelPatchEncoder
    from rla.latent_map import LatentMap, map_features

    torch.manual_seed(seed)
    episodes = episodes or synthetic_episodes()
    enc = PixelPatchEncoder(image_size=SIZE, patch_size=PATCH)
    pack = ModelPack.from_presets("tiny", enc, action_dim=A, action_names=list(ACTION_NAMES), chunk=CHUNK,
                                  tasks=["PushCube", "PullCube"], description="tiny test pack (synthetic squares)")
    ae, dyn, reg, tf = pack.autoencoder, pack.dynamics, pack.baselines["regression"], pack.baselines["token_flow"]
    z_t, z_k, acts, meta = _pairs(episodes, CHUNK, enc)
    sub = torch.randperm(len(z_t))[:48]
    batch = {"z_t": z_t[sub], "z_k": z_k[sub], "actions": acts[sub]}
    for m in (ae, dyn, reg, tf):
        m.train()
    _train(ae, batch, train_steps)
    with torch.no_grad():
        u = ae.encode(z_t, z_k)  # (M, Q, C), every pair: the latent map's points
    dyn.set_latent_stats(u)
    tf.set_token_stats(z_k)
    _train(dyn, {**batch, "u": u[sub]}, train_steps)
    _train(reg, batch, max(1, train_steps // 3))  # the baselines only need to run, not to be good
    _train(tf, batch, max(1, train_steps // 6))
    with torch.no_grad():  # an untrained head maps everything to "no change": make sure actions matter
        for head in (dyn.out, tf.out):
            if head.weight.abs().max() < 1e-3:
                head.weight.normal_(0, 0.05)
    flat = torch.from_numpy(map_features(dyn, u))  # the map holds standardised latents
    centred = flat - flat.mean(0)
    coords = (centred @ torch.linalg.svd(centred, full_matrices=False).Vh[:2].T).numpy().astype(np.float32)  # PCA, not UMAP: fast
    pack.latent_map = LatentMap(latents=flat.numpy(), coords=coords, meta=meta)
    return pack.save(path)
