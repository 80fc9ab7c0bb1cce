"""An imagined environment: the pack's world model is the simulator, a recorded video the reward (WMRL).

    recs = recordings_from_episodes(episodes, pack)                        # successful episodes, as tokens
    core = ImaginedCore.from_pack(pack, recs, num_envs=32, seeds=range(32))  # one batched model call per step
    z = core.reset()                                                        # (B, N, D) tokens
    z, r, terminated, truncated, info = core.step(a)                        # a (B, E, A) env actions
    env = ImaginedEnv.from_pack(pack, recs); obs, _ = env.reset(seed=0)     # the same core, one env: gymnasium.Env

The authors' environment (``wmrl/world_model_env.py``), on this project's models:

- **reset** picks a recorded successful episode (uniformly) and a start frame ``t0``: 0 with
  probability ``start_zero_prob`` (0.5), otherwise uniform over the frames that leave room for one
  step; the recorded tokens at ``t0`` become the state.
- **step(a)** runs ``E`` actions (``actions_per_step``, 8 = what a policy executes of each chunk):
  the world model predicts ``z_{t+E}`` from the state and the actions (clipped to the action
  bounds, as the simulator does); the prediction becomes the state (no re-encoding).
- **reward** ``= −scale · mean |z_pred − z_target|`` (scale 5) with ``z_target`` the recorded tokens
  at the same time ``t + E`` (``"corresponding"``) or the episode's last frame (``"goal"``). A
  control, ``"shuffled"``: the tokens at ``t + E`` of another recording (the one half the list
  away, :func:`shuffled_partner`), so the reward is shaped alike but rewards someone else's video;
  starts and noise are drawn exactly as with ``"corresponding"``.
- **end**: ``terminated`` when the recording has no room for another step (``t + E > T``);
  ``truncated`` after ``max_chunk_steps`` steps (6).

Randomness: each env has its own seed. Its reset choices come from ``numpy.random.default_rng(seed)``;
the world model's noise at chunk-step ``s`` of its ``n``-th episode is drawn from a torch generator
seeded with ``(seed, n, s)``. So env ``i`` of a batched core seeded with ``seeds`` behaves exactly
like a single env seeded with ``seeds[i]``, whatever the other envs do, and everything repeats
under the same seeds. For the RLA world model all envs share one batched call per step (the flow
samples from the stacked per-env noise); other stochastic models are called once per env so that
each keeps its own generator; deterministic models take one batched call.

``reward_validity`` checks that the reward means something: recorded actions must earn more than
the same actions with Gaussian noise, from recorded starts, under the same world-model noise.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from rla.world_model import RLAWorldModel

REWARDS = ("corresponding", "goal", "shuffled")
OBSERVATIONS = ("tokens", "image")


@dataclass
class Recording:
    """One recorded successful episode as the imagined env replays it."""

    episode_id: str
    tokens: torch.Tensor  # (T+1, N, D) float32 pack tokens of every frame
    actions: torch.Tensor  # (T, A) float32 env actions

    @property
    def num_steps(self) -> int:
        return len(self.actions)


def recordings_from_episodes(episodes: Sequence, pack, *, cache=None, successful_only: bool = True) -> list[Recording]:
    """Encode episodes (``rla.data.Episode``-like) with the pack's encoder (through ``cache`` when given)."""
    out = []
    for e in episodes:
        if successful_only and not e.succeeded:
            continue
        z = cache.episode_tokens(e, pack.encoder) if cache is not None else pack.encoder.encode(e.frames)
        out.append(Recording(str(e.episode_id), z.float(), torch.as_tensor(np.asarray(e.actions), dtype=torch.float32)))
    if not out:
        raise ValueError(f"none of the {len(episodes)} episodes succeeded: the imagined env starts from successful recordings")
    return out


@dataclass
class ImaginedEnvConfig:
    actions_per_step: int = 8  # E, env actions per step (the authors': 8, what a policy executes per chunk)
    euler_steps: int = 10  # Euler steps of the flow per prediction (the authors': 30)
    max_chunk_steps: int = 6  # steps before an episode is truncated
    reward: str = "corresponding"  # target: the recorded frame at the same time, the "goal" (last) frame, or "shuffled" (a control)
    reward_scale: float = 5.0  # reward = -scale * mean |z_pred - z_target|
    start_zero_prob: float = 0.5  # probability that an episode starts at the recording's first frame
    temperature: float = 1.0  # scale of the flow's starting noise (0: deterministic predictions)
    observation: str = "tokens"  # what step/reset return: "tokens" (N, D) or decoded "image" (H, W, 3) uint8

    def __post_init__(self):
        for name in ("actions_per_step", "euler_steps", "max_chunk_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"ImaginedEnvConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.reward not in REWARDS:
            raise ValueError(f"ImaginedEnvConfig.reward must be one of {REWARDS}, got {self.reward!r}")
        if self.observation not in OBSERVATIONS:
            raise ValueError(f"ImaginedEnvConfig.observation must be one of {OBSERVATIONS}, got {self.observation!r}")
        if not 0 <= self.start_zero_prob <= 1:
            raise ValueError(f"ImaginedEnvConfig.start_zero_prob must be in [0, 1], got {self.start_zero_prob}")
        if self.reward_scale <= 0 or self.temperature < 0:
            raise ValueError("ImaginedEnvConfig.reward_scale must be > 0 and temperature >= 0")


def shuffled_partner(recording: int, count: int) -> int:
    """The recording whose frames the ``"shuffled"`` control rewards: the one ``count // 2`` further on (never itself)."""
    return (recording + count // 2) % count


def noise_seed(seed: int, episode: int, step: int) -> int:
    """The torch seed of the world model's noise at chunk-step ``step`` of episode ``episode`` of an env."""
    return int(np.random.SeedSequence([int(seed) % 2**63, int(episode), int(step)]).generate_state(1, np.uint64)[0] % 2**63)


class ImaginedCore:
    """``num_envs`` imagined episodes stepped together (torch tensors in and out; no autoreset)."""

    def __init__(self, world_model, recordings: Sequence[Recording], num_envs: int, config: ImaginedEnvConfig | None = None, *,
                 action_low: float = -1.0, action_high: float = 1.0, to_images=None, seeds: Sequence[int] | None = None):
        self.world_model = world_model
        self.config = c = config or ImaginedEnvConfig()
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if not recordings:
            raise ValueError("the imagined env needs at least one recording")
        short = [r.episode_id for r in recordings if r.num_steps < c.actions_per_step]
        if short:
            raise ValueError(f"{len(short)} recordings (e.g. {short[0]}) have fewer than actions_per_step = {c.actions_per_step} actions")
        shapes = {(tuple(r.tokens.shape[1:]), r.actions.shape[1]) for r in recordings}
        if len(shapes) != 1:
            raise ValueError(f"recordings disagree on token or action shapes: {sorted(shapes)}")
        if c.reward == "shuffled" and len(recordings) < 2:
            raise ValueError("reward='shuffled' rewards another recording's frames: it needs at least 2 recordings")
        if c.observation == "image" and to_images is None:
            raise ValueError("observation='image' needs to_images (tokens -> uint8 frames, e.g. pack.to_images)")
        (self.token_shape, self.action_dim), = shapes
        self.recordings, self.num_envs = list(recordings), num_envs
        self.action_low, self.action_high, self.to_images = float(action_low), float(action_high), to_images
        self.z = torch.zeros(num_envs, *self.token_shape)  # (B, N, D) the imagined state
        self.rec = np.zeros(num_envs, np.int64)  # recording of each env
        self.t = np.zeros(num_envs, np.int64)  # time in the recording of the state
        self.steps = np.zeros(num_envs, np.int64)  # chunk-steps taken in the episode
        self.episode = np.zeros(num_envs, np.int64)  # episodes started since the env was seeded
        self.ended = np.ones(num_envs, bool)  # terminated or truncated (or never started): reset before stepping
        self.seeds = np.zeros(num_envs, np.int64)
        self.rngs: list[np.random.Generator] = [np.random.default_rng(0)] * num_envs
        self.seed(range(num_envs) if seeds is None else seeds)

    @classmethod
    def from_pack(cls, pack, recordings, num_envs: int, config: ImaginedEnvConfig | None = None, **kw) -> ImaginedCore:
        return cls(pack.world_model, recordings, num_envs, config, action_low=pack.info.action_low,
                   action_high=pack.info.action_high, to_images=pack.to_images, **kw)

    @property
    def action_shape(self) -> tuple[int, int]:
        return self.config.actions_per_step, self.action_dim

    def seed(self, seeds: Sequence[int], envs: Sequence[int] | None = None) -> None:
        """(Re)seed ``envs`` (all by default) with one seed each; their episode counters restart."""
        envs = range(self.num_envs) if envs is None else envs
        seeds = [int(s) for s in seeds]
        if len(seeds) != len(envs):
            raise ValueError(f"{len(seeds)} seeds for {len(envs)} envs")
        for i, s in zip(envs, seeds):
            self.seeds[i], self.episode[i], self.rngs[i] = s, 0, np.random.default_rng(s)

    # ---- episodes ---------------------------------------------------------------------------------

    def reset(self, envs: Sequence[int] | None = None):
        """Start new episodes in ``envs`` (all by default); returns their observations."""
        envs = list(range(self.num_envs) if envs is None else envs)
        e = self.config.actions_per_step
        for i in envs:
            rng = self.rngs[i]
            r = int(rng.integers(len(self.recordings)))
            last = self.recordings[r].num_steps - e  # the latest start that leaves room for one step
            t0 = 0 if rng.random() < self.config.start_zero_prob else int(rng.integers(last + 1))
            self.start(i, r, t0)
        return self.observe(envs)

    def start(self, i: int, recording: int, t0: int) -> None:
        """Put env ``i`` at frame ``t0`` of recording ``recording`` (a new episode)."""
        rec = self.recordings[recording]
        if not 0 <= t0 <= rec.num_steps - self.config.actions_per_step:
            raise ValueError(f"t0 = {t0} leaves no room for a step of {self.config.actions_per_step} actions in {rec.episode_id} "
                             f"({rec.num_steps} actions)")
        self.rec[i], self.t[i], self.steps[i], self.ended[i] = recording, t0, 0, False
        self.episode[i] += 1
        self.z[i] = rec.tokens[t0]

    def observe(self, envs: Sequence[int] | None = None):
        """Observations of ``envs``: tokens ``(b, N, D)`` float32, or frames ``(b, H, W, 3)`` uint8."""
        z = self.z if envs is None else self.z[list(envs)]
        return z.clone() if self.config.observation == "tokens" else self.to_images(z)

    def target(self, recording: int, t: int) -> torch.Tensor:
        """The tokens ``(N, D)`` the reward compares the state at recording time ``t`` with."""
        rec = self.recordings[recording]
        if self.config.reward == "goal":
            return rec.tokens[-1]
        if self.config.reward == "shuffled":
            other = self.recordings[shuffled_partner(recording, len(self.recordings))]
            return other.tokens[min(t, other.num_steps)]
        return rec.tokens[t]

    def check_actions(self, a) -> torch.Tensor:
        """``a (B, E, A)`` as a float32 tensor, clipped to the action bounds; a clear error if malformed."""
        try:
            a = torch.as_tensor(np.asarray(a) if not torch.is_tensor(a) else a, dtype=torch.float32)
        except (TypeError, ValueError) as err:
            raise ValueError(f"actions must be numbers of shape {(self.num_envs, *self.action_shape)}: {err}") from err
        want = (self.num_envs, *self.action_shape)
        if tuple(a.shape) != want:
            raise ValueError(f"actions must have shape {want} (envs, actions per step, action dims), got {tuple(a.shape)}")
        if not torch.isfinite(a).all():
            raise ValueError("actions contain NaN or infinite values")
        return a.clamp(self.action_low, self.action_high)

    def step(self, a):
        """Advance every env by one chunk-step.

        Returns ``obs``, ``reward (B,)`` float32 numpy, ``terminated (B,)``, ``truncated (B,)`` bool
        numpy and ``info`` (``t``, ``recording`` and ``goal_l1``: token L1 of the new state to the
        recording's last frame, the authors' logged "success" measure).
        """
        c = self.config
        a = self.check_actions(a)
        if self.ended.any():
            raise RuntimeError(f"envs {np.flatnonzero(self.ended).tolist()} have ended (or never started): reset them before stepping")
        seeds = [noise_seed(self.seeds[i], self.episode[i], self.steps[i]) for i in range(self.num_envs)]
        z = predict_seeded(self.world_model, self.z, a, seeds, c.euler_steps, c.temperature)
        t_next = self.t + c.actions_per_step
        recs = [self.recordings[r] for r in self.rec]
        target = torch.stack([self.target(r, t) for r, t in zip(self.rec, t_next)])
        goal = torch.stack([r.tokens[-1] for r in recs])
        reward = -c.reward_scale * (z - target).abs().mean(dim=(1, 2))
        self.z, self.t = z, t_next
        self.steps += 1
        terminated = np.array([t + c.actions_per_step > r.num_steps for r, t in zip(recs, t_next)])
        truncated = (self.steps >= c.max_chunk_steps) & ~terminated
        self.ended = terminated | truncated
        info = {"t": self.t.copy(), "recording": self.rec.copy(), "goal_l1": (z - goal).abs().mean(dim=(1, 2)).numpy()}
        return self.observe(), reward.numpy().astype(np.float32), terminated, truncated, info


@torch.no_grad()
def predict_seeded(world_model, z: torch.Tensor, a: torch.Tensor, seeds: Sequence[int], steps: int, temperature: float = 1.0) -> torch.Tensor:
    """``z_{t+E} (B, N, D)``: each row's noise drawn from its own generator ``seeds[b]``.

    The RLA world model takes one batched call on the stacked noise; other stochastic models one
    call per row; deterministic ones one call.
    """
    if isinstance(world_model, RLAWorldModel):
        q, c = world_model.dynamics.config.num_queries, world_model.dynamics.config.latent_dim
        noise = torch.stack([torch.randn(q, c, generator=torch.Generator().manual_seed(s)) for s in seeds]) * temperature
        return world_model.predict(z, a, steps=steps, noise=noise.to(z.device))
    if getattr(world_model, "stochastic", False):
        return torch.cat([world_model.predict(z[b:b + 1], a[b:b + 1], steps=steps, generator=torch.Generator().manual_seed(s))
                          for b, s in enumerate(seeds)])
    return world_model.predict(z, a, steps=steps)


class ImaginedEnv(gym.Env):
    """One imagined episode at a time: a ``gymnasium.Env`` on an :class:`ImaginedCore` of one env.

    Actions ``(E, A)`` float32 in the env's bounds; observations tokens ``(N, D)`` float32 (or a
    frame ``(H, W, 3)`` uint8). ``reset(seed=s)`` makes the episodes that follow the same as env
    ``i`` of a batched core seeded with ``s`` at index ``i``.
    """

    metadata = {"render_modes": []}

    def __init__(self, core: ImaginedCore):
        if core.num_envs != 1:
            raise ValueError(f"ImaginedEnv wraps a core of one env, got {core.num_envs}")
        self.core = core
        self.action_space = gym.spaces.Box(core.action_low, core.action_high, core.action_shape, np.float32)
        self.observation_space = observation_space(core)
        self._seeded = False

    @classmethod
    def from_pack(cls, pack, recordings, config: ImaginedEnvConfig | None = None) -> ImaginedEnv:
        return cls(ImaginedCore.from_pack(pack, recordings, 1, config))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None or not self._seeded:  # unseeded first reset: a seed from gymnasium's np_random
            self.core.seed([seed if seed is not None else int(self.np_random.integers(2**31))])
            self._seeded = True
        obs = self.core.reset()
        return _numpy(obs[0]), self._info(None)

    def step(self, action):
        a = np.asarray(action)
        if a.shape != self.core.action_shape:
            raise ValueError(f"action must have shape {self.core.action_shape} (actions per step, action dims), got {a.shape}")
        obs, reward, terminated, truncated, info = self.core.step(a[None])
        return _numpy(obs[0]), float(reward[0]), bool(terminated[0]), bool(truncated[0]), self._info(info)

    def _info(self, info: dict | None) -> dict:
        out = {"t": int(self.core.t[0]), "recording": self.core.recordings[int(self.core.rec[0])].episode_id}
        if info is not None:
            out["goal_l1"] = float(info["goal_l1"][0])
        return out


def observation_space(core: ImaginedCore) -> gym.spaces.Box:
    if core.config.observation == "tokens":
        return gym.spaces.Box(-np.inf, np.inf, core.token_shape, np.float32)
    h, w = core.to_images(core.z[:1]).shape[1:3]
    return gym.spaces.Box(0, 255, (h, w, 3), np.uint8)


def _numpy(x) -> np.ndarray:
    return x.numpy() if torch.is_tensor(x) else np.asarray(x)


# ---- does the reward mean anything? ----------------------------------------------------------------

@torch.no_grad()
def reward_validity(world_model, recordings: Sequence[Recording], *, starts_per_recording: int = 4, sigma: float = 0.5,
                    chunk_steps: int = 1, config: ImaginedEnvConfig | None = None, action_low: float = -1.0,
                    action_high: float = 1.0, seed: int = 0) -> dict:
    """The fraction of recorded starts where the recorded actions earn more reward than the same
    actions plus Gaussian noise of std ``sigma`` (clipped to the bounds), over ``chunk_steps`` steps.

    Starts: per recording, ``starts_per_recording`` frames drawn uniformly (seeded by ``seed``)
    among those that leave room for ``chunk_steps`` steps. Both arms of a start share the
    world model's noise (same env seed), so only the actions differ. ``world_model`` may be a
    pack (its RLA world model is used). Returns ``fraction``, ``n`` and the per-start returns.
    """
    world_model = getattr(world_model, "world_model", world_model)
    c = config or ImaginedEnvConfig()
    e = c.actions_per_step
    rng = np.random.default_rng(seed)
    starts = []
    for r, rec in enumerate(recordings):
        last = rec.num_steps - chunk_steps * e
        if last < 0:
            continue
        starts += [(r, int(t)) for t in rng.integers(0, last + 1, size=starts_per_recording)]
    if not starts:
        raise ValueError(f"no recording is long enough for {chunk_steps} steps of {e} actions")
    n = len(starts)
    core = ImaginedCore(world_model, recordings, 2 * n, c, action_low=action_low, action_high=action_high,
                        seeds=[seed * 1_000_003 + i for i in range(n)] * 2)
    for i, (r, t0) in enumerate(starts):
        core.start(i, r, t0)
        core.start(n + i, r, t0)
    g = torch.Generator().manual_seed(seed)
    returns = np.zeros(2 * n)
    for s in range(chunk_steps):
        recorded = torch.stack([recordings[r].actions[t0 + s * e: t0 + (s + 1) * e] for r, t0 in starts])  # (n, E, A)
        noisy = recorded + sigma * torch.randn(recorded.shape, generator=g)
        _, reward, _, _, _ = core.step(torch.cat([recorded, noisy]).clamp(action_low, action_high))
        returns += reward
    wins = returns[:n] > returns[n:]
    return {"fraction": float(wins.mean()), "n": n, "sigma": sigma, "chunk_steps": chunk_steps,
            "recorded_return": returns[:n].tolist(), "noisy_return": returns[n:].tolist(), "starts": starts}
