"""The CEM planner: batched, deterministic under a seed, finds known optima, MPC corrects model errors."""
import pytest
import torch

from rla import LatentFlow, RLAAutoencoder, RLAWorldModel
from rla.planning import CEMPlanner, PlannerConfig, random_actions, token_cost, token_weights
from tests.rla.helpers import A, D, K, N, tiny_configs


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny batched models are fastest on one thread (two threads thrash on a loaded 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class LinearTokenModel:
    """A toy world model with a known optimum: the first half of the tokens move by ``mean_k(a) @ W``."""

    stochastic = False

    def __init__(self, seed=0, drift=None):
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(A, D, generator=g)
        self.drift = drift  # (D,) added every chunk: the "real" world differs from the model
        self.calls, self.batch_sizes = 0, []

    def predict(self, z_t, a, *, steps=None, generator=None):
        self.calls += 1
        self.batch_sizes.append(z_t.shape[0])
        move = a.mean(1) @ self.W  # (B, D)
        if self.drift is not None:
            move = move + self.drift
        z = z_t.clone()
        z[:, : N // 2] += move[:, None]
        return z


def toy_problem(horizon=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    model = LinearTokenModel()
    z_start = torch.randn(1, N, D, generator=g)
    target = (torch.rand(horizon, 1, A, generator=g) * 1.2 - 0.6).expand(horizon, K, A)  # inside the bounds
    z_goal = model.predict(z_start, target.reshape(1, horizon * K, A) * horizon)  # sum over chunks = H · mean
    model.calls, model.batch_sizes = 0, []
    return model, z_start, z_goal


def test_config_is_validated():
    with pytest.raises(ValueError, match="elites"):
        PlannerConfig(candidates=4, elites=8)
    with pytest.raises(ValueError, match="iterations"):
        PlannerConfig(iterations=0)
    with pytest.raises(ValueError, match="action_low"):
        PlannerConfig(action_low=1.0, action_high=-1.0)
    with pytest.raises(ValueError, match="select"):
        PlannerConfig(select="median")
    assert (PlannerConfig().candidates, PlannerConfig().iterations, PlannerConfig().horizon, PlannerConfig().steps) == (64, 4, 2, 3)


def test_one_batched_predict_call_per_chunk_per_iteration():
    model, z_start, z_goal = toy_problem(horizon=3)
    cfg = PlannerConfig(candidates=32, iterations=5, horizon=3, elites=4)
    result = CEMPlanner(model, cfg, action_dim=A, chunk=K).plan(z_start, z_goal)
    assert model.calls == result.predict_calls == 5 * 3 + 3  # + imagining the final mean once
    assert model.batch_sizes == [32] * 15 + [1] * 3
    model.calls, model.batch_sizes = 0, []
    best = CEMPlanner(model, PlannerConfig(candidates=32, iterations=5, horizon=3, elites=4, select="best"),
                      action_dim=A, chunk=K).plan(z_start, z_goal)
    assert model.calls == best.predict_calls == 5 * 3 and model.batch_sizes == [32] * 15
    assert result.actions.shape == (3, K, A) and result.tokens.shape == (3, N, D)
    assert result.elites.shape == (4, 3, K, A) and len(result.best_costs) == len(result.elite_costs) == 5


@pytest.mark.parametrize("select", ["mean", "best"])
def test_cem_finds_a_much_better_plan_than_random(select):
    model, z_start, z_goal = toy_problem(horizon=2)
    cfg = PlannerConfig(candidates=64, iterations=6, horizon=2, elites=8, select=select)
    result = CEMPlanner(model, cfg, action_dim=A, chunk=K).plan(z_start, z_goal)
    rand = random_actions(256, K, A, generator=torch.Generator().manual_seed(3)).reshape(128, 2, K, A)
    z = model.predict(model.predict(z_start.expand(128, N, D), rand[:, 0]), rand[:, 1])
    random_cost = token_cost(z, z_goal).median().item()
    assert result.cost < 0.1 * random_cost, (result.cost, random_cost)
    assert result.best_costs[-1] <= result.best_costs[0]  # the search improves
    assert result.elite_costs[-1] < result.elite_costs[0]
    # the imagined tokens belong to the returned plan, and its cost is theirs
    assert token_cost(result.tokens[-1:], z_goal).item() == pytest.approx(result.cost)
    assert result.actions.abs().max() <= 1.0  # clipped to the bounds


def test_actions_are_clipped_to_the_bounds():
    model, z_start, z_goal = toy_problem()
    cfg = PlannerConfig(candidates=16, iterations=2, elites=4, action_low=-0.2, action_high=0.3, init_std=5.0)
    result = CEMPlanner(model, cfg, action_dim=A, chunk=K).plan(z_start, z_goal)
    assert result.actions.min() >= -0.2 and result.actions.max() <= 0.3
    assert result.elites.min() >= -0.2 and result.elites.max() <= 0.3


def stochastic_world_model():
    torch.manual_seed(0)
    cfg = tiny_configs()
    ae, dyn = RLAAutoencoder(cfg["autoencoder"]), LatentFlow(cfg["dynamics"])
    with torch.no_grad():
        dyn.out.weight.normal_(0, 0.2)  # an untrained (zero) head would ignore the noise
    return RLAWorldModel(ae, dyn)


def test_plans_are_deterministic_under_a_seed():
    wm = stochastic_world_model()
    g = torch.Generator().manual_seed(5)
    z_start, z_goal = torch.randn(1, N, D, generator=g), torch.randn(1, N, D, generator=g)
    planner = CEMPlanner(wm, PlannerConfig(candidates=16, iterations=3, elites=4, seed=11), action_dim=A, chunk=K)
    a, b = planner.plan(z_start, z_goal), planner.plan(z_start, z_goal)
    assert torch.equal(a.actions, b.actions) and a.best_costs == b.best_costs and torch.equal(a.tokens, b.tokens)
    c = planner.plan(z_start, z_goal, generator=torch.Generator().manual_seed(12))
    assert not torch.equal(a.actions, c.actions)
    # the model's own flow noise comes from the same generator: the imagined tokens are reproducible too
    d = planner.plan(z_start, z_goal, generator=torch.Generator().manual_seed(11))
    assert torch.equal(a.tokens, d.tokens)


def test_foreground_weights_mark_the_tokens_that_differ():
    z_start = torch.zeros(1, N, D)
    z_goal = z_start.clone()
    z_goal[:, 2] += 1.0
    w = token_weights(z_start, z_goal, PlannerConfig(foreground_weight=9.0))
    assert w.shape == (1, N, 1) and w[0, 2, 0] == 10.0 and w[0, 0, 0] == 1.0
    assert token_weights(z_start, z_goal, PlannerConfig()) is None
    pred = z_start.repeat(2, 1, 1)
    pred[1, 2] += 1.0  # reaches the goal on the one token that matters
    pred[1, 0] += 0.5  # at the price of a background token
    plain, weighted = token_cost(pred, z_goal), token_cost(pred, z_goal, w)
    assert plain[1] < plain[0] and weighted[1] < weighted[0]
    assert weighted[1] / weighted[0] < plain[1] / plain[0]  # the foreground counts more


def test_mpc_corrects_what_the_model_gets_wrong_and_open_loop_does_not():
    model, z_start, z_goal = toy_problem(horizon=4)
    world = LinearTokenModel(drift=0.3 * model.W[0])  # the real world drifts (within reach of the actions); the model does not know
    state = {}

    def execute(actions):
        state["z"] = world.predict(state["z"], actions[None])
        return state["z"]

    cfg = PlannerConfig(candidates=64, iterations=5, horizon=2, elites=8)
    planner = CEMPlanner(model, cfg, action_dim=A, chunk=K)
    final = {}
    for mode in ("mpc", "open_loop"):
        state["z"] = z_start.clone()
        run = planner.control(z_start, z_goal, execute, num_chunks=4, mode=mode)
        final[mode] = token_cost(state["z"], z_goal).item()
        assert run.actions.shape == (4, K, A) and run.tokens.shape == (4, N, D)
        assert len(run.plans) == (4 if mode == "mpc" else 1)
        assert run.cpu_seconds > 0
    assert [p.horizon for p in planner.control(z_start, z_goal, lambda a: z_start, 3).plans] == [2, 2, 1]
    assert final["mpc"] < 0.5 * final["open_loop"], final


def test_bad_inputs_raise():
    model, z_start, z_goal = toy_problem()
    planner = CEMPlanner(model, PlannerConfig(candidates=8, elites=2, iterations=1), action_dim=A, chunk=K)
    with pytest.raises(ValueError, match="init_mean"):
        planner.plan(z_start, z_goal, init_mean=torch.zeros(3, K, A))
    with pytest.raises(ValueError, match="z_goal"):
        planner.plan(z_start, z_goal[:, :2])
    with pytest.raises(ValueError, match="mode"):
        planner.control(z_start, z_goal, lambda a: z_start, 2, mode="greedy")
