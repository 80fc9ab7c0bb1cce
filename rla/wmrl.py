"""WMRL: a residual action head on a frozen behaviour-cloning policy, trained with PPO in imagination.

    wmrl = WMRLPolicy.from_policy(Policy.load("runs/bc"))       # residual head = 0: acts as the BC policy
    venv = ImaginedVecEnv(ImaginedCore.from_pack(pack, recs, 32, seeds=range(32)))
    ppo = make_ppo(wmrl, venv, PPOSettings(), seed=0)           # stable-baselines3 PPO + GAE
    ppo.learn(total_timesteps=200 * ppo.n_steps * venv.num_envs)
    wmrl.save_pretrained("runs/wmrl/seed0")                     # model.safetensors + config.json

The authors' design (``wmrl/``): the BC policy is frozen; a zero-initialised linear head on its
features adds ``residual_scale · tanh(·)`` (0.1) to the normalised mean of the executed actions;
the Gaussian's std is ``std_scale · softplus(p)`` (0.1) with a learned, state-independent ``p``;
a value head (an MLP) reads the same features, which carry no gradient into the trunk. PPO runs
without a BC loss. The distribution is over env actions (normalised units mapped back through the
policy's normaliser); stable-baselines3 clips samples to the action bounds before the env sees them.

Why stable-baselines3 fits: its ``ActorCriticPolicy`` lets the distribution and value come from any
module, so :class:`SB3ResidualPolicy` routes them through :class:`WMRLPolicy` and the optimiser
sees only the residual, std and value parameters; PPO, GAE, the clipped objective, the KL early
stop and the advantage normalisation are SB3's. Checkpoints are ours (safetensors + JSON).
"""
# No `from __future__ import annotations`: the Hub mixin reads the `config` annotation.
import time
from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rla.hub import HubModule
from rla.imagined_env import ImaginedCore
from rla.policy import Policy, PolicyConfig
from rla.policy.model import _batched


@dataclass
class WMRLConfig:
    base: dict = field(default_factory=dict)  # the frozen policy's PolicyConfig, as a dict
    residual_scale: float = 0.1  # residual = scale * tanh(linear(features)), normalised action units
    std_scale: float = 0.1  # std = scale * softplus(p), normalised action units
    value_hidden: int = 256  # width of the value MLP (two hidden layers)

    def __post_init__(self):
        if self.residual_scale <= 0 or self.std_scale <= 0 or self.value_hidden < 1:
            raise ValueError(f"WMRLConfig needs residual_scale > 0, std_scale > 0 and value_hidden >= 1, got {self}")

    @property
    def policy_config(self) -> PolicyConfig:
        return PolicyConfig(**self.base)


class WMRLPolicy(HubModule):
    """A frozen :class:`rla.policy.Policy` + a residual head on its executed actions + a value head."""

    config_class = WMRLConfig

    def __init__(self, config: WMRLConfig):
        super().__init__()
        self.config = config
        pc = config.policy_config
        if pc.state_dim:
            raise ValueError("WMRL needs a policy trained without qpos (--no-state): the imagined env provides tokens only")
        self.base = Policy(pc).requires_grad_(False).eval()
        self.execute, self.action_dim = pc.execute, pc.action_dim
        n = pc.execute * pc.action_dim
        self.residual_head = nn.Linear(pc.hidden, n)
        nn.init.zeros_(self.residual_head.weight)
        nn.init.zeros_(self.residual_head.bias)
        self.std_param = nn.Parameter(torch.zeros(n))
        h = config.value_hidden
        self.value_head = nn.Sequential(nn.Linear(pc.hidden, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(), nn.Linear(h, 1))
        self._queue = deque()

    @classmethod
    def from_policy(cls, policy: Policy, **fields) -> "WMRLPolicy":
        """A WMRL policy whose frozen base is a copy of ``policy`` (weights and normaliser)."""
        out = cls(WMRLConfig(base=asdict(policy.config), **fields))
        out.base.load_state_dict(policy.state_dict())
        return out

    def train(self, mode: bool = True):
        super().train(mode)
        self.base.eval()  # the frozen trunk never drops out: rollout and update must see the same features
        self._queue.clear()
        return self

    # ---- the pieces PPO needs ----------------------------------------------------------------------

    def features(self, obs: dict) -> torch.Tensor:
        """The frozen trunk's features ``(B, hidden)`` (no gradient)."""
        with torch.no_grad():
            return self.base.features(obs)

    def residual(self, h: torch.Tensor) -> torch.Tensor:
        """``(B, E, A)`` in normalised action units, bounded by ``residual_scale``."""
        return self.config.residual_scale * torch.tanh(self.residual_head(h)).view(-1, self.execute, self.action_dim)

    def mean_normalized(self, h: torch.Tensor) -> torch.Tensor:
        """The executed part of the base chunk plus the residual: ``(B, E, A)`` normalised."""
        with torch.no_grad():
            base = self.base.action_chunk(h)[:, : self.execute]
        return base + self.residual(h)

    def mean_log_std(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The action distribution in env units: mean ``(B, E·A)`` (not clipped) and log std ``(E·A,)``."""
        scale = self.base.action_std.repeat(self.execute)  # (E·A,)
        mean = self.mean_normalized(h).flatten(1) * scale + self.base.action_mean.repeat(self.execute)
        std = self.config.std_scale * F.softplus(self.std_param) * scale
        return mean, std.log()

    def value(self, h: torch.Tensor) -> torch.Tensor:
        """``(B, 1)``."""
        return self.value_head(h)

    # ---- acting (as rla.policy.Policy) ------------------------------------------------------------

    @torch.no_grad()
    def predict_chunk(self, obs: dict) -> torch.Tensor:
        """The mean chunk in env units ``(B, K, A)``: the base chunk with the residual on its first ``E`` actions."""
        obs = _batched(obs)
        obs.pop("qpos", None)
        h = self.features(obs)
        chunk = self.base.action_chunk(h).clone()
        chunk[:, : self.execute] += self.residual(h)
        return self.base.unnormalize_actions(chunk)

    @torch.no_grad()
    def select_action(self, obs: dict) -> torch.Tensor:
        """The next env action ``(B, A)``; a chunk every ``execute`` calls (see ``Policy.select_action``)."""
        if not self._queue:
            self._queue.extend(self.predict_chunk(obs)[:, : self.execute].transpose(0, 1))
        return self._queue.popleft()

    def reset(self) -> None:
        self._queue.clear()

    def set_encoder(self, encoder) -> None:
        self.base.set_encoder(encoder)


def load_any_policy(path) -> nn.Module:
    """A saved :class:`rla.policy.Policy` or :class:`WMRLPolicy`, told apart by its config.json."""
    import json
    from pathlib import Path

    cfg = Path(path) / "config.json"
    if cfg.is_file() and "residual_scale" in json.loads(cfg.read_text()):
        return WMRLPolicy.load(path)
    return Policy.load(path)


@torch.no_grad()
def imagined_comparison(world_model, wmrl, recording, t0: int, config, *, seed: int = 0, to_images=None,
                        action_low: float = -1.0, action_high: float = 1.0, partner=None) -> dict:
    """The initial policy (``wmrl.base``) and the WMRL policy, each acting on its own imagined state from frame ``t0``.

    Both run in one :class:`rla.imagined_env.ImaginedCore` of two envs seeded alike, so the world
    model draws the same noise for both at every chunk-step and only the actions differ. Each
    policy acts with its mean action (the executed part of its chunk) on the tokens of its own
    imagined frame. The episode ends when the recording has no room for another step or after
    ``config.max_chunk_steps``. With ``config.reward == "shuffled"``, ``partner`` is the recording
    whose frames the reward compares with (``rla.imagined_env.shuffled_partner``).

    Returns ``t`` (recording time after each chunk), ``reward`` / ``tokens`` / ``frames`` /
    ``actions`` per policy (``initial``, ``wmrl``) and chunk, ``residual`` (WMRL's mean
    |residual| per chunk, normalised action units) and ``seconds``.
    """
    start = time.perf_counter()
    e = config.actions_per_step
    if not 0 <= t0 <= recording.num_steps - e:
        raise ValueError(f"start frame {t0} leaves no room for a step of {e} actions (the episode has {recording.num_steps})")
    recordings = [recording] if partner is None else [recording, partner]  # shuffled_partner(0, 2) == 1
    core = ImaginedCore(world_model, recordings, 2, config, action_low=action_low, action_high=action_high, seeds=[seed, seed])
    core.start(0, 0, t0)
    core.start(1, 0, t0)
    names = ("initial", "wmrl")
    out = {"t0": t0, "t": [], "residual": [], **{k: {n: [] for n in names} for k in ("reward", "tokens", "frames", "actions")}}
    wmrl.eval()
    for _ in range(config.max_chunk_steps):
        z = core.observe()  # (2, N, D): the initial policy's imagined state, then WMRL's
        a_initial = wmrl.base.predict_chunk({"tokens": z[:1]})[:, :e]  # (1, E, A)
        a_wmrl = wmrl.predict_chunk({"tokens": z[1:]})[:, :e]
        out["residual"].append(float(wmrl.residual(wmrl.features({"tokens": z[1:]})).abs().mean()))
        _, reward, terminated, truncated, info = core.step(torch.cat([a_initial, a_wmrl]))
        frames = to_images(core.z) if to_images is not None else None
        for i, n in enumerate(names):
            out["reward"][n].append(float(reward[i]))
            out["tokens"][n].append(core.z[i].clone())
            out["actions"][n].append((a_initial if i == 0 else a_wmrl)[0].clone())
            if frames is not None:
                out["frames"][n].append(np.asarray(frames[i]))
        out["t"].append(int(info["t"][0]))
        if terminated[0] or truncated[0]:
            break
    out["seconds"] = time.perf_counter() - start
    return out


# ---- stable-baselines3 -------------------------------------------------------------------------------

@dataclass
class PPOSettings:
    """The authors' PPO settings; CPU-scale envs and steps come from the caller."""

    n_steps: int = 4  # chunk-steps per env per iteration
    batch_size: int = 32  # PPO minibatch (ours: 4 minibatches of the 32 x 4 rollout; the authors' is not stated)
    n_epochs: int = 4
    lr: float = 1e-4
    gamma: float = 0.9
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float = 0.1  # SB3 stops an update's epochs once the approximate KL exceeds 1.5 x this


def _sb3():
    try:
        from stable_baselines3 import PPO
        from stable_baselines3.common.policies import ActorCriticPolicy
        from stable_baselines3.common.vec_env import VecEnv
    except ImportError as err:  # pragma: no cover - a missing optional dependency
        raise ImportError("WMRL training needs stable-baselines3: pip install stable-baselines3 (docs/wmrl.md)") from err
    return PPO, ActorCriticPolicy, VecEnv


_CLASSES: dict = {}


def sb3_classes() -> dict:
    """``{"policy": SB3ResidualPolicy, "vec_env": ImaginedVecEnv, "ppo": WMRLPPO}``, built on first use so
    that ``rla.wmrl`` imports without stable-baselines3."""
    if _CLASSES:
        return _CLASSES
    PPO, ActorCriticPolicy, VecEnv = _sb3()

    class SB3ResidualPolicy(ActorCriticPolicy):
        """SB3's actor-critic interface over a :class:`WMRLPolicy` (passed as ``policy_kwargs["wmrl"]``)."""

        def __init__(self, observation_space, action_space, lr_schedule, wmrl: WMRLPolicy, **kwargs):
            object.__setattr__(self, "_pending_wmrl", wmrl)  # _build runs inside super().__init__
            super().__init__(observation_space, action_space, lr_schedule, **kwargs)

        def _build(self, lr_schedule) -> None:
            self.wmrl = self.__dict__.pop("_pending_wmrl")
            trainable = [p for p in self.parameters() if p.requires_grad]
            self.optimizer = self.optimizer_class(trainable, lr=lr_schedule(1), **self.optimizer_kwargs)

        def _dist(self, obs: torch.Tensor):
            h = self.wmrl.features({"tokens": obs.float()})
            mean, log_std = self.wmrl.mean_log_std(h)
            return self.action_dist.proba_distribution(mean, log_std), h

        def forward(self, obs, deterministic: bool = False):
            dist, h = self._dist(obs)
            actions = dist.get_actions(deterministic=deterministic)
            return actions.reshape((-1, *self.action_space.shape)), self.wmrl.value(h), dist.log_prob(actions)

        def evaluate_actions(self, obs, actions):
            dist, h = self._dist(obs)
            return self.wmrl.value(h), dist.log_prob(actions.flatten(1)), dist.entropy()

        def get_distribution(self, obs):
            return self._dist(obs)[0]

        def predict_values(self, obs):
            return self.wmrl.value(self.wmrl.features({"tokens": obs.float()}))

        def _predict(self, observation, deterministic: bool = False):
            return self.get_distribution(observation).get_actions(deterministic=deterministic)

        def set_training_mode(self, mode: bool) -> None:
            self.train(mode)  # WMRLPolicy.train keeps the frozen base in eval mode

    class ImaginedVecEnv(VecEnv):
        """SB3's ``VecEnv`` over an :class:`rla.imagined_env.ImaginedCore` (autoreset, time-limit bootstrapping).

        A finished env's ``info`` holds ``terminal_observation``, ``TimeLimit.truncated`` and
        ``episode = {"r": return, "l": chunk-steps}``; :meth:`pop_finished` hands the finished
        episodes' returns to the trainer's log.
        """

        def __init__(self, core):
            import gymnasium as gym

            from rla.imagined_env import observation_space

            self.core = core
            space = gym.spaces.Box(core.action_low, core.action_high, core.action_shape, np.float32)
            super().__init__(core.num_envs, observation_space(core), space)
            self._actions = None
            self._return = np.zeros(core.num_envs)
            self._finished: list[tuple[float, int]] = []
            self._rewards: list[float] = []

        def seed(self, seed: int | None = None) -> list[int]:
            """Env ``i`` gets a seed drawn from ``SeedSequence([seed, i])``, applied at the next reset.

            SB3's default (``seed + i``) would give run seed 1 the very env streams of run seed 0
            shifted by one env, so different RL seeds would share almost all starts and noise.
            """
            if seed is None:
                seed = int(np.random.randint(0, np.iinfo(np.uint32).max, dtype=np.uint32))
            self._seeds = [int(np.random.SeedSequence([int(seed), i]).generate_state(1)[0]) for i in range(self.num_envs)]
            return self._seeds

        def reset(self):
            seeded = [i for i, s in enumerate(self._seeds) if s is not None]
            if seeded:
                self.core.seed([self._seeds[i] for i in seeded], seeded)
            self._reset_seeds()
            self._return[:] = 0
            return _np(self.core.reset())

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = np.asarray(actions).reshape(self.num_envs, *self.core.action_shape)

        def step_wait(self):
            obs, reward, terminated, truncated, info = self.core.step(self._actions)
            obs = _np(obs)
            self._return += reward
            self._rewards.extend(reward.tolist())
            done = terminated | truncated
            infos = [{"t": int(info["t"][i]), "goal_l1": float(info["goal_l1"][i])} for i in range(self.num_envs)]
            ended = np.flatnonzero(done).tolist()
            for i in ended:
                infos[i].update({"terminal_observation": obs[i].copy(), "TimeLimit.truncated": bool(truncated[i]),
                                 "episode": {"r": float(self._return[i]), "l": int(self.core.steps[i])}})
                self._finished.append((float(self._return[i]), int(self.core.steps[i])))
                self._return[i] = 0
            if ended:
                obs[ended] = _np(self.core.reset(ended))
            return obs, reward, done, infos

        def pop_finished(self) -> dict:
            """Returns of the episodes finished, and the mean reward per step, since the last call."""
            out = {"episodes": len(self._finished),
                   "imagined_return": float(np.mean([r for r, _ in self._finished])) if self._finished else float("nan"),
                   "episode_length": float(np.mean([n for _, n in self._finished])) if self._finished else float("nan"),
                   "reward_per_step": float(np.mean(self._rewards)) if self._rewards else float("nan")}
            self._finished, self._rewards = [], []
            return out

        def close(self) -> None:
            pass

        def get_attr(self, attr_name, indices=None):
            if attr_name == "render_mode":
                return [None] * len(self._indices(indices))
            return [getattr(self.core, attr_name)] * len(self._indices(indices))

        def set_attr(self, attr_name, value, indices=None) -> None:
            raise AttributeError("the imagined env's settings are fixed when it is built")

        def env_method(self, method_name, *args, indices=None, **kwargs):
            raise AttributeError("the imagined env has no per-env methods")

        def env_is_wrapped(self, wrapper_class, indices=None):
            return [False] * len(self._indices(indices))

        def _indices(self, indices):
            if indices is None:
                return list(range(self.num_envs))
            return [indices] if isinstance(indices, int) else list(indices)

    class WMRLPPO(PPO):
        """PPO that calls ``after_update(self)`` after each update (log rows, checkpoints, progress)."""

        after_update = None

        def train(self) -> None:
            super().train()
            if self.after_update is not None:
                self.after_update(self)

    _CLASSES.update(policy=SB3ResidualPolicy, vec_env=ImaginedVecEnv, ppo=WMRLPPO)
    return _CLASSES


def make_ppo(wmrl: WMRLPolicy, venv, settings: PPOSettings | None = None, seed: int = 0):
    """A stable-baselines3 PPO over ``venv`` whose policy is ``wmrl`` (trained in place)."""
    s = settings or PPOSettings()
    classes = sb3_classes()
    return classes["ppo"](
        classes["policy"], venv, learning_rate=s.lr, n_steps=s.n_steps, batch_size=s.batch_size, n_epochs=s.n_epochs,
        gamma=s.gamma, gae_lambda=s.gae_lambda, clip_range=s.clip_range, ent_coef=s.ent_coef, vf_coef=s.vf_coef,
        max_grad_norm=s.max_grad_norm, target_kl=s.target_kl, seed=seed, device="cpu", verbose=0,
        policy_kwargs={"wmrl": wmrl})


@torch.no_grad()
def mean_abs_residual(wmrl: WMRLPolicy, tokens: torch.Tensor, batch_size: int = 256) -> float:
    """Mean |residual| over observations ``tokens (M, N, D)``, in normalised action units."""
    total = 0.0
    for i in range(0, len(tokens), batch_size):
        total += float(wmrl.residual(wmrl.features({"tokens": tokens[i:i + batch_size].float()})).abs().sum())
    return total / (len(tokens) * wmrl.execute * wmrl.action_dim)


def _np(x) -> np.ndarray:
    return x.numpy() if torch.is_tensor(x) else np.asarray(x)
