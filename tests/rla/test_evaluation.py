import numpy as np
import pytest
import torch

from rla import EncoderSpec, LatentFlow, ModelPack, PackInfo, PixelPatchEncoder, RegressionWorldModel, RLAAutoencoder, TokenFlowWorldModel
from rla.evaluation import METRICS, EvalConfig, evaluate_pack, evaluate_packs
from rla.presets import model_configs


def _pack():
    enc = PixelPatchEncoder(32, 8)
    cfg = model_configs("tiny", enc.num_tokens, enc.dim, 2)
    info = PackInfo(encoder=EncoderSpec.of(enc), action_dim=2, action_names=["dx", "dy"], chunk=3)
    return ModelPack(info, enc, RLAAutoencoder(cfg["autoencoder"]), LatentFlow(cfg["dynamics"]),
                     {"regression": RegressionWorldModel(cfg["regression"]), "token_flow": TokenFlowWorldModel(cfg["token_flow"])})


def _items(n=3, chunks=2, k=3):
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        frame_0 = np.zeros((32, 32, 3), np.uint8)
        frames = np.zeros((chunks, 32, 32, 3), np.uint8)
        for c in range(chunks):  # a white square moving right
            frames[c, 8:16, 8 * (c + 1): 8 * (c + 2)] = 255
        frame_0[8:16, 0:8] = 255
        items.append({"frame_0": frame_0, "frames": frames, "actions": rng.normal(size=(chunks, k, 2)).astype(np.float32),
                      "foreground": None, "task": "toy", "episode_id": f"e{i}"})
    return items


@pytest.mark.slow  # rollouts of every method
def test_copy_floor_and_untrained_models_score_the_same():
    # untrained models copy the start frame exactly (zero-initialised outputs), like the floor
    res = evaluate_pack(_pack(), _items(), rla_steps=(1, 2), cost=False)
    methods = res["methods"]
    assert set(methods) == {"rla@1", "rla@2", "regression", "token_flow", "copy", "rla_true_latent"}
    copy = methods["copy"]["final"]
    for name in ("rla@1", "regression"):
        for metric in ("token_l1", "ssim", "psnr"):
            assert abs(methods[name]["final"][metric] - copy[metric]) < 1e-5
    assert set(methods["copy"]["per_chunk"]) == set(METRICS) and len(methods["copy"]["per_chunk"]["ssim"]) == 2
    assert copy["token_l1_moving"] > copy["token_l1"]  # errors concentrate where things move
    assert res["protocol"]["foreground"] == "changed patches" and copy["lpips"] is None


def test_perfect_prediction_scores_perfectly():
    pack = _pack()
    items = _items(chunks=1)

    class Oracle:
        def rollout(self, z_0, actions, steps=None, generator=None):
            return pack.encoder.encode(np.stack([it["frames"][0] for it in items]))[:, None]

        def predict(self, z_t, a, steps=None, generator=None):
            return z_t

    pack.baselines = {"oracle": Oracle()}
    res = evaluate_pack(pack, items, rla_steps=(1,), cost=False)["methods"]["oracle"]["final"]
    assert res["token_l1"] < 1e-6 and res["ssim"] > 0.999 and res["psnr"] > 90


def test_true_latent_ceiling_uses_the_real_future():
    # an autoencoder whose decoder returns the "future" it was given reaches the real frames exactly
    pack = _pack()

    class Identity:
        def encode(self, z_t, z_k):
            return z_k

        def decode(self, z_t, u):
            return u

    items = _items()
    from rla.evaluation import TrueLatentRollout

    z_real = torch.stack([pack.encoder.encode(np.asarray(it["frames"])) for it in items])
    z_0 = pack.encoder.encode(np.stack([it["frame_0"] for it in items]))
    out = TrueLatentRollout(Identity(), z_real).rollout(z_0, torch.zeros(3, 2, 3, 2))
    assert torch.equal(out, z_real)


def _trained_pack(seed):
    """A pack whose regression baseline moves things (random non-zero head), so methods differ."""
    torch.manual_seed(seed)
    pack = _pack()
    for model in (pack.baselines["regression"], pack.autoencoder):
        torch.nn.init.normal_(model.out.weight, std=0.05)
    return pack


@pytest.mark.slow  # 13-50 CPU-s: rollouts of every method
def test_intervals_cover_the_mean_and_seeds_and_windows_are_recorded():
    items = _items(n=6)
    for i, it in enumerate(items):
        it["episode_id"] = f"e{i // 2}"  # two windows per episode
    cfg = EvalConfig(rla_steps=(1,), noise_seeds=(0, 1), num_samples=3, cost=False, n_boot=200)
    res = evaluate_packs([_trained_pack(0), _trained_pack(1)], items, cfg, comparisons=[("rla@1 mean3", "regression")])
    methods = res["methods"]
    assert {"rla@1", "rla@1 zero", "rla@1 mean3", "token_flow", "token_flow zero", "token_flow mean3", "regression"} <= set(methods)
    reg = methods["regression"]
    assert reg["training_seeds"] == [0, 1] and np.asarray(reg["per_window"]["token_l1"]).shape == (2, 6)
    ci = reg["ci"]["token_l1"]
    assert ci["low"] <= ci["mean"] <= ci["high"] and ci["high"] > ci["low"]
    assert res["protocol"]["episodes"] == 3 and res["protocol"]["windows"] == 6
    diff = res["comparisons"]["rla@1 mean3 − regression"]["token_l1"]
    direct = np.mean(methods["rla@1 mean3"]["per_window"]["token_l1"]) - np.mean(reg["per_window"]["token_l1"])
    assert abs(diff["mean"] - direct) < 1e-9 and diff["low"] <= diff["mean"] <= diff["high"] and "verdict" in diff


@pytest.mark.slow  # 13-50 CPU-s: rollouts of every method
def test_zero_noise_is_deterministic_and_the_mean_of_samples_differs_from_one_sample():
    pack = _trained_pack(0)
    torch.nn.init.normal_(pack.dynamics.out.weight, std=0.5)  # a flow whose samples depend on the noise
    items = _items(n=3)
    one = EvalConfig(rla_steps=(2,), noise_seeds=(0,), num_samples=4, cost=False, n_boot=50)
    other = EvalConfig(rla_steps=(2,), noise_seeds=(5,), num_samples=4, cost=False, n_boot=50)
    a, b = (evaluate_packs([pack], items, c)["methods"] for c in (one, other))
    assert a["rla@2 zero"]["per_window"]["token_l1"] == b["rla@2 zero"]["per_window"]["token_l1"]
    assert a["rla@2"]["per_window"]["token_l1"] != b["rla@2"]["per_window"]["token_l1"]
    assert a["rla@2 mean4"]["per_window"]["token_l1"] != a["rla@2"]["per_window"]["token_l1"]


@pytest.mark.slow  # 13-50 CPU-s: rollouts of every method
def test_scores_do_not_depend_on_how_windows_are_batched():
    pack, items = _trained_pack(0), _items(n=5)
    one = EvalConfig(rla_steps=(1,), noise_seeds=(0,), num_samples=2, cost=False, n_boot=20, batch_size=64)
    small = EvalConfig(rla_steps=(1,), noise_seeds=(0,), num_samples=2, cost=False, n_boot=20, batch_size=2)
    a, b = (evaluate_packs([pack], items, c)["methods"] for c in (one, small))
    for name in ("regression", "copy", "rla_true_latent", "rla@1 zero"):
        assert np.allclose(a[name]["per_window"]["token_l1"], b[name]["per_window"]["token_l1"], atol=1e-6), name


@pytest.mark.slow  # 13-50 CPU-s: rollouts of every method
def test_later_seeds_are_scored_only_at_their_step_counts():
    items = _items(n=4)
    cfg = EvalConfig(rla_steps=(1, 3), noise_seeds=(0,), num_samples=2, cost=False, n_boot=50, later_seed_steps=(3,))
    methods = evaluate_packs([_trained_pack(0), _trained_pack(1)], items, cfg)["methods"]
    assert methods["rla@1 mean2"]["training_seeds"] == [0]  # the sweep: first seed only
    assert methods["rla@3 mean2"]["training_seeds"] == [0, 1]
    assert methods["regression"]["training_seeds"] == [0, 1]
    full = evaluate_packs([_trained_pack(0)], items, EvalConfig(rla_steps=(1, 3), noise_seeds=(0,), num_samples=2, cost=False, n_boot=50))
    assert methods["rla@1 mean2"]["per_window"]["token_l1"] == full["methods"]["rla@1 mean2"]["per_window"]["token_l1"]


@pytest.mark.slow  # 13-50 CPU-s: rollouts of every method
def test_cached_scores_are_reused_and_equal(tmp_path, monkeypatch):
    import rla.evaluation as evaluation

    items, packs = _items(n=3), [_trained_pack(0), _trained_pack(1)]
    cfg = EvalConfig(rla_steps=(1,), noise_seeds=(0,), num_samples=2, cost=False, n_boot=50)
    first = evaluate_packs(packs, items, cfg, cache_dir=tmp_path)
    (folder,) = tmp_path.glob("scores-*")  # one folder per items and protocol; a file per row and model weights
    assert len(list(folder.glob("rla-1_mean2-*.json"))) == 2  # the two seeds' weights differ
    (folder / evaluation._row_file(folder, packs[1], evaluation.Row("regression")).name).unlink()  # interrupted before this row
    real_rollout, calls = evaluation._rollout, []
    monkeypatch.setattr(evaluation, "_rollout", lambda model, *a, **k: calls.append(model) or real_rollout(model, *a, **k))
    again = evaluate_packs(packs, items, cfg, cache_dir=tmp_path)
    assert calls == [packs[1].baselines["regression"]]  # only that row of that seed is computed again
    assert again["methods"]["rla@1 mean2"]["per_window"] == first["methods"]["rla@1 mean2"]["per_window"]
    assert again["methods"]["regression"]["per_window"] == first["methods"]["regression"]["per_window"]
    calls.clear()
    retrained = packs[0].baselines["regression"]
    with torch.no_grad():
        next(retrained.parameters()).add_(0.01)  # a retrained baseline: its rows only are computed again
    evaluate_packs(packs, items, cfg, cache_dir=tmp_path)
    assert calls == [retrained]
    calls.clear()
    items[0]["actions"] = items[0]["actions"] + 1.0  # other items: none of the cached scores apply
    evaluate_packs(packs, items, cfg, cache_dir=tmp_path)
    assert len(calls) > 4
