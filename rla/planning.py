"""Goal-reaching planning in a world model: the cross-entropy method (CEM) over action chunks.

Given start tokens ``z_start`` and goal tokens ``z_goal`` (both ``(1, N, D)``), CEM samples
``candidates`` action sequences of ``horizon`` chunks from a Gaussian, imagines each one with the
world model (all candidates in one batched ``predict`` call per chunk), scores the predicted final
frame by its token distance to the goal, and refits the Gaussian to the ``elites`` best; after
``iterations`` rounds the final mean (or the best sequence seen) is the plan::

    planner = CEMPlanner.for_pack(pack, "rla", PlannerConfig(candidates=64, iterations=4))
    result = planner.plan(z_start, z_goal)                       # PlanResult: actions (H, K, A), …
    run = planner.control(z_start, z_goal, execute, num_chunks=5)  # MPC in a real environment

Any world model of a pack works (``pack.world_models()``: RLA-WM, regression, token flow): they
share ``predict(z_t, a, steps=, generator=)``. Every random draw (actions and the models' flow
noise) comes from one ``torch.Generator``, so a plan is a deterministic function of its seed.

:class:`TaskSimulator` runs plans in ManiSkill (imported lazily) and measures the object-to-goal
distance from the simulator state.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from rla.layers import change_weights


@dataclass
class PlannerConfig:
    """CEM settings; the defaults plan in a few seconds on 2 CPU cores."""

    candidates: int = 64  # action sequences imagined per CEM iteration (one batched predict per chunk)
    iterations: int = 4  # CEM rounds per plan
    horizon: int = 2  # action chunks planned ahead
    elites: int = 8  # best candidates the sampling distribution is refitted to
    steps: int = 3  # Euler steps per prediction (flow models; regression ignores it)
    hold: bool = True  # one action per chunk, held for its K steps (as the app's sliders); False plans all K actions
    init_std: float = 0.5  # initial std of the sampling distribution, as a fraction of the half action range
    min_std: float = 0.05  # floor on the std (same units), so the search never collapses completely
    momentum: float = 0.1  # new mean/std = momentum · old + (1 − momentum) · elites'
    foreground_weight: float = 0.0  # extra cost weight on tokens that differ between start and goal (0: plain mean)
    change_threshold: float = 0.05  # a token "differs" when its mean absolute change exceeds this
    action_low: float = -1.0  # actions are clipped to [action_low, action_high] (the pack's bounds)
    action_high: float = 1.0
    select: str = "mean"  # the plan: "mean" = the final sampling mean (as DINO-WM; robust to a stochastic model's lucky
    #                        samples), imagined once more; "best" = the lowest-cost candidate seen
    seed: int = 0  # seed of the generator used when plan()/control() get none

    def __post_init__(self):
        for name in ("candidates", "iterations", "horizon", "elites", "steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"PlannerConfig.{name} must be >= 1, got {getattr(self, name)}")
            setattr(self, name, int(getattr(self, name)))
        if self.elites > self.candidates:
            raise ValueError(f"PlannerConfig.elites ({self.elites}) must be <= candidates ({self.candidates})")
        if not self.action_low < self.action_high:
            raise ValueError(f"PlannerConfig.action_low ({self.action_low}) must be < action_high ({self.action_high})")
        if not (self.init_std > 0 and self.min_std >= 0):
            raise ValueError(f"PlannerConfig.init_std must be > 0 and min_std >= 0, got {self.init_std}, {self.min_std}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"PlannerConfig.momentum must be in [0, 1), got {self.momentum}")
        if self.select not in ("mean", "best"):
            raise ValueError(f"PlannerConfig.select must be 'mean' or 'best', got {self.select!r}")
        if self.foreground_weight < 0:
            raise ValueError(f"PlannerConfig.foreground_weight must be >= 0, got {self.foreground_weight}")


@dataclass
class PlanResult:
    """One CEM plan. ``H`` chunks of ``K`` actions of ``A`` dims; ``I`` iterations; ``E`` elites."""

    actions: torch.Tensor  # (H, K, A) the plan (config.select: the final mean, or the best candidate seen)
    cost: float  # its cost
    tokens: torch.Tensor  # (H, N, D) what the world model imagined for it, at each chunk end
    best_costs: list  # (I,) lowest candidate cost in each iteration
    elite_costs: list  # (I,) mean cost of each iteration's elites
    mean_costs: list  # (I,) mean cost of all candidates of each iteration
    elites: torch.Tensor  # (E, H, K, A) the last iteration's elites, best first
    mean: torch.Tensor  # (H, K, A) the final sampling mean (MPC warm-starts from it)
    predict_calls: int  # world-model predict calls: iterations × horizon batched ones (+ horizon for select="mean")
    seconds: float  # wall time
    cpu_seconds: float  # process CPU time

    @property
    def horizon(self) -> int:
        return self.actions.shape[0]


@dataclass
class ControlResult:
    """A plan executed chunk by chunk in an environment (MPC or open loop)."""

    actions: torch.Tensor  # (C, K, A) the executed actions
    tokens: torch.Tensor  # (C, N, D) the observed tokens after each executed chunk
    plans: list = field(default_factory=list)  # the PlanResult of every (re)plan
    seconds: float = 0.0  # wall time spent planning (execution excluded)
    cpu_seconds: float = 0.0  # CPU time spent planning

    @property
    def cpu_seconds_per_plan(self) -> float:
        return self.cpu_seconds / max(1, len(self.plans))


def token_weights(z_start: torch.Tensor, z_goal: torch.Tensor, config: PlannerConfig) -> torch.Tensor | None:
    """Per-token cost weights ``(1, N, 1)``: ``1 + foreground_weight`` where start and goal differ; ``None`` if unweighted."""
    if config.foreground_weight == 0:
        return None
    return change_weights(z_start, z_goal, config.foreground_weight, config.change_threshold)


def token_cost(z: torch.Tensor, z_goal: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Token distance ``(M,)`` of predictions ``z (M, N, D)`` to ``z_goal (1, N, D)``: the (weighted)
    mean over tokens of the mean absolute error per token."""
    assert z.shape[1:] == z_goal.shape[1:], f"tokens {tuple(z.shape)} and goal {tuple(z_goal.shape)} differ"
    err = (z - z_goal).abs().mean(-1)  # (M, N)
    if weights is None:
        return err.mean(-1)
    w = weights.reshape(1, -1)
    return (err * w).sum(-1) / w.sum()


def random_actions(num_chunks: int, chunk: int, action_dim: int, *, low: float = -1.0, high: float = 1.0, hold: bool = True,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniformly random action chunks ``(C, K, A)`` (one action held per chunk if ``hold``): the planning floor."""
    p = 1 if hold else chunk
    a = low + (high - low) * torch.rand(num_chunks, p, action_dim, generator=generator)
    return a.expand(num_chunks, chunk, action_dim).clone()


class CEMPlanner:
    """CEM over action chunks in one world model.

    Args:
        world_model: anything with ``predict(z_t (B, N, D), a (B, K, A), *, steps, generator) -> (B, N, D)``.
        config: the CEM settings.
        action_dim: ``A``; chunk: ``K``, actions per chunk.
    """

    def __init__(self, world_model, config: PlannerConfig | None = None, *, action_dim: int, chunk: int):
        if action_dim < 1 or chunk < 1:
            raise ValueError(f"action_dim and chunk must be >= 1, got {action_dim}, {chunk}")
        self.world_model, self.config = world_model, config or PlannerConfig()
        self.action_dim, self.chunk = action_dim, chunk

    @classmethod
    def for_pack(cls, pack, model: str = "rla", config: PlannerConfig | None = None) -> CEMPlanner:
        """A planner in ``pack.world_models()[model]`` with the pack's action size, chunk and bounds."""
        models = pack.world_models()
        if model not in models:
            raise ValueError(f"the pack has no world model {model!r}; it has {', '.join(models)}")
        info = pack.info
        cfg = config or PlannerConfig()
        if (cfg.action_low, cfg.action_high) != (info.action_low, info.action_high):
            cfg = PlannerConfig(**{**cfg.__dict__, "action_low": info.action_low, "action_high": info.action_high})
        return cls(models[model], cfg, action_dim=info.action_dim, chunk=info.chunk)

    # ------------------------------------------------------------------ one plan
    def _generator(self, generator: torch.Generator | None) -> torch.Generator:
        return generator if generator is not None else torch.Generator().manual_seed(self.config.seed)

    def _expand(self, params: torch.Tensor) -> torch.Tensor:
        """Distribution parameters ``(…, H, P, A)`` (``P`` = 1 held action or ``K``) → actions ``(…, H, K, A)``."""
        return params.expand(*params.shape[:-2], self.chunk, self.action_dim)

    @torch.no_grad()
    def plan(self, z_start: torch.Tensor, z_goal: torch.Tensor, *, horizon: int | None = None, init_mean: torch.Tensor | None = None,
             generator: torch.Generator | None = None, callback: Callable[[int, int], None] | None = None) -> PlanResult:
        """Plan ``horizon`` chunks from ``z_start (1, N, D)`` towards ``z_goal (1, N, D)``.

        Args:
            horizon: chunks to plan (default ``config.horizon``).
            init_mean: ``(horizon, K, A)`` warm start of the sampling mean (MPC); default the middle of the bounds.
            generator: the source of every random draw; default a fresh one seeded with ``config.seed``.
            callback: called as ``callback(iteration, iterations)`` after each iteration (progress bars).
        """
        cfg, K, A = self.config, self.chunk, self.action_dim
        H = int(horizon or cfg.horizon)
        if H < 1:
            raise ValueError(f"horizon must be >= 1, got {H}")
        if z_start.ndim != 3 or z_start.shape[0] != 1 or z_goal.shape != z_start.shape:
            raise ValueError(f"z_start and z_goal must both be (1, N, D), got {tuple(z_start.shape)} and {tuple(z_goal.shape)}")
        g = self._generator(generator)
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        lo, hi, M, E = cfg.action_low, cfg.action_high, cfg.candidates, cfg.elites
        half = (hi - lo) / 2
        P = 1 if cfg.hold else K
        mean = torch.full((H, P, A), (lo + hi) / 2)
        if init_mean is not None:
            if init_mean.shape != (H, K, A):
                raise ValueError(f"init_mean must be (horizon, K, A) = {(H, K, A)}, got {tuple(init_mean.shape)}")
            mean = init_mean.mean(1, keepdim=True) if cfg.hold else init_mean.clone()
        std = torch.full((H, P, A), cfg.init_std * half)
        weights = token_weights(z_start, z_goal, cfg)
        z_rep = z_start.expand(M, *z_start.shape[1:])
        best_cost, best_actions, best_tokens = math.inf, None, None
        best_costs, elite_costs, mean_costs, calls = [], [], [], 0
        for it in range(cfg.iterations):
            samples = (mean + std * torch.randn(M, H, P, A, generator=g)).clamp(lo, hi)  # (M, H, P, A)
            if it > 0 or init_mean is not None:
                samples[0] = mean.clamp(lo, hi)  # the current mean is always a candidate
            actions = self._expand(samples)  # (M, H, K, A)
            z, traj = z_rep, []
            for h in range(H):  # one batched predict call per chunk for all candidates
                z = self.world_model.predict(z, actions[:, h], steps=cfg.steps, generator=g)
                traj.append(z)
                calls += 1
            cost = token_cost(z, z_goal, weights)  # (M,)
            order = cost.argsort()
            elite = samples[order[:E]]  # (E, H, P, A)
            best_costs.append(float(cost[order[0]]))
            elite_costs.append(float(cost[order[:E]].mean()))
            mean_costs.append(float(cost.mean()))
            if cfg.select == "best" and best_costs[-1] < best_cost:
                i = int(order[0])
                best_cost, best_actions = best_costs[-1], actions[i].clone()
                best_tokens = torch.stack([t[i] for t in traj])  # (H, N, D)
            new_std = elite.std(0, unbiased=False) if E > 1 else torch.zeros_like(std)
            mean = cfg.momentum * mean + (1 - cfg.momentum) * elite.mean(0)
            std = (cfg.momentum * std + (1 - cfg.momentum) * new_std).clamp_min(cfg.min_std * half)
            if callback is not None:
                callback(it + 1, cfg.iterations)
        if cfg.select == "mean":  # imagine the final mean once (batch of one)
            best_actions, z, traj = self._expand(mean).clamp(lo, hi), z_start, []
            for h in range(H):
                z = self.world_model.predict(z, best_actions[None, h], steps=cfg.steps, generator=g)
                traj.append(z[0])
                calls += 1
            best_cost, best_tokens = float(token_cost(z, z_goal, weights)[0]), torch.stack(traj)
        return PlanResult(
            actions=best_actions, cost=best_cost, tokens=best_tokens, best_costs=best_costs, elite_costs=elite_costs,
            mean_costs=mean_costs, elites=self._expand(elite).clone(), mean=self._expand(mean).clone(), predict_calls=calls,
            seconds=time.perf_counter() - start_wall, cpu_seconds=time.process_time() - start_cpu)

    # ------------------------------------------------------------------ acting
    @torch.no_grad()
    def control(self, z_start: torch.Tensor, z_goal: torch.Tensor, execute: Callable[[torch.Tensor], torch.Tensor], num_chunks: int,
                *, mode: str = "mpc", generator: torch.Generator | None = None,
                callback: Callable[[int, int], None] | None = None) -> ControlResult:
        """Act for ``num_chunks`` chunks in an environment, towards ``z_goal``.

        Args:
            execute: runs one chunk ``(K, A)`` in the environment and returns the observed tokens ``(1, N, D)``.
            mode: ``"mpc"`` replans after every executed chunk (horizon ``min(config.horizon, chunks left)``,
                the mean warm-started by shifting the last plan one chunk); ``"open_loop"`` plans all
                ``num_chunks`` once and executes them blindly.
            callback: ``callback(plans_done, plans_total)`` after each plan.
        """
        if mode not in ("mpc", "open_loop"):
            raise ValueError(f"mode must be 'mpc' or 'open_loop', got {mode!r}")
        if num_chunks < 1:
            raise ValueError(f"num_chunks must be >= 1, got {num_chunks}")
        g = self._generator(generator)
        plans, executed, observed = [], [], []
        if mode == "open_loop":
            plans.append(self.plan(z_start, z_goal, horizon=num_chunks, generator=g))
            if callback is not None:
                callback(1, 1)
            for c in range(num_chunks):
                executed.append(plans[0].actions[c])
                observed.append(execute(plans[0].actions[c]).reshape(z_start.shape))
        else:
            z, init = z_start, None
            for c in range(num_chunks):
                h = min(self.config.horizon, num_chunks - c)
                result = self.plan(z, z_goal, horizon=h, init_mean=init, generator=g)
                plans.append(result)
                if callback is not None:
                    callback(c + 1, num_chunks)
                executed.append(result.actions[0])
                z = execute(result.actions[0]).reshape(z_start.shape)
                observed.append(z)
                h_next = min(self.config.horizon, num_chunks - c - 1)
                if h_next:
                    shifted = torch.cat([result.mean[1:], result.mean[-1:]])  # drop the executed chunk, repeat the last
                    init = shifted[:h_next]
        return ControlResult(actions=torch.stack(executed), tokens=torch.cat(observed), plans=plans,
                             seconds=sum(p.seconds for p in plans), cpu_seconds=sum(p.cpu_seconds for p in plans))


# ---------------------------------------------------------------------- the real simulator
#: The object whose distance to the goal is measured, and the goal marker, as ManiSkill env attributes.
OBJECT_GOAL = {
    "PushCube": ("obj", "goal_region"),
    "PullCube": ("obj", "goal_region"),
    "PokeCube": ("cube", "goal_region"),
    "RollBall": ("ball", "goal_region"),
}


class TaskSimulator:
    """One CPU ManiSkill env of a task: reset to a seed, execute action chunks, read frames and distances.

    Args:
        task: short task name (see :data:`rla.data.TASKS`).
        size: camera size in pixels (the pack encoder's ``image_size`` keeps frames unresized).
    """

    def __init__(self, task: str, *, size: int = 128, control_mode: str = "pd_ee_delta_pos"):
        from rla.data.tasks import get_task, make_env

        self.spec = get_task(task)
        self.task = self.spec.name
        self.env = make_env(self.spec, size=size, control_mode=control_mode, obs_mode="rgb",
                            max_episode_steps=100_000)  # episodes end when the caller stops, not on a time limit
        self.success = False  # the task's success after the last step
        self.success_once = False  # ... at any step since the reset

    def _frame(self, obs) -> np.ndarray:
        return obs["sensor_data"]["base_camera"]["rgb"][0].cpu().numpy().astype(np.uint8)

    def reset(self, seed: int) -> np.ndarray:
        """Reset to ``seed``; the first frame ``(H, W, 3)`` uint8."""
        obs, _ = self.env.reset(seed=int(seed))
        self.success = self.success_once = False
        return self._frame(obs)

    def step(self, actions: torch.Tensor | np.ndarray) -> np.ndarray:
        """Execute actions ``(K, A)`` (clipped to [-1, 1]); the frame ``(H, W, 3)`` after the last one."""
        actions = torch.as_tensor(np.asarray(actions, dtype=np.float32)).reshape(-1, self.env.action_space.shape[-1])
        obs = None
        for a in actions.clamp(-1, 1):
            obs, _, _, _, info = self.env.step(a[None])
            self.success = bool(info["success"].reshape(-1)[0])
            self.success_once |= self.success
        return self._frame(obs)

    def object_position(self) -> np.ndarray:
        """The task object's world position ``(3,)`` in metres."""
        name = OBJECT_GOAL.get(self.task, ("obj", None))[0]
        if not hasattr(self.env.unwrapped, name):
            raise ValueError(f"task {self.task}: no object position is known (supported: {', '.join(OBJECT_GOAL)})")
        return getattr(self.env.unwrapped, name).pose.p[0].cpu().numpy().astype(np.float64)

    def object_goal_distance(self) -> float:
        """xy distance in metres between the task object and the task's goal marker."""
        if self.task not in OBJECT_GOAL:
            raise ValueError(f"task {self.task} has no object-to-goal distance; supported: {', '.join(OBJECT_GOAL)}")
        goal = getattr(self.env.unwrapped, OBJECT_GOAL[self.task][1]).pose.p[0].cpu().numpy()
        return float(np.linalg.norm(self.object_position()[:2] - goal[:2]))

    def close(self) -> None:
        self.env.close()
