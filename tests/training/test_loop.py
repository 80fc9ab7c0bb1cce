import csv

import pytest
import torch

from rla import RegressionWorldModel
from tests.rla.helpers import tiny_configs, toy_batch
from training.loop import TrainConfig, fit, lr_factor


def _fit(out, steps):
    torch.manual_seed(0)
    model = RegressionWorldModel(tiny_configs()["regression"])
    cfg = TrainConfig(max_steps=steps, max_minutes=5, batch_size=8, lr=3e-3, warmup_steps=2, log_every=1, checkpoint_every=3)
    batch = toy_batch()
    return model, fit(model, lambda g: batch, cfg, out, name="test")


def test_training_resumes_from_its_checkpoint(tmp_path):
    _, first = _fit(tmp_path, 6)
    assert first["steps"] == 6
    model, second = _fit(tmp_path, 10)  # same folder, bigger budget: continues at step 6
    assert second["steps"] == 10
    rows = list(csv.DictReader(open(tmp_path / "loss.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, 11))  # one log, appended, no restart
    # the resumed model is the checkpointed one trained on, not a fresh initialisation
    fresh = RegressionWorldModel(tiny_configs()["regression"])
    assert not torch.equal(model.out.weight, fresh.out.weight)
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])


def test_lr_schedule_warms_up_then_decays():
    cfg = TrainConfig(max_steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, cfg, 100) == pytest.approx(0.1)
    assert lr_factor(9, cfg, 100) == pytest.approx(1.0)
    assert lr_factor(100, cfg, 100) == pytest.approx(0.1)
    assert lr_factor(50, cfg, 100) > lr_factor(80, cfg, 100)


class _AB(torch.nn.Module):
    """Two layers; ``reverse`` registers the same names in the other order (as after a refactor)."""

    def __init__(self, reverse: bool):
        super().__init__()
        if reverse:
            self.b, self.a = torch.nn.Linear(8, 2), torch.nn.Linear(4, 8)
        else:
            self.a, self.b = torch.nn.Linear(4, 8), torch.nn.Linear(8, 2)

    def forward(self, batch):
        return self.b(self.a(batch["x"])).square().mean(), {}


def test_resuming_a_checkpoint_saved_by_other_code_is_refused(tmp_path):
    cfg = TrainConfig(max_steps=3, max_minutes=5, batch_size=8, warmup_steps=1, checkpoint_every=3)
    batch = {"x": torch.randn(8, 4)}
    fit(_AB(reverse=False), lambda g: batch, cfg, tmp_path, name="test")
    longer = TrainConfig(max_steps=6, max_minutes=5, batch_size=8, warmup_steps=1, checkpoint_every=3)
    with pytest.raises(SystemExit, match="different version of the model"):
        fit(_AB(reverse=True), lambda g: batch, longer, tmp_path, name="test")
    assert fit(_AB(reverse=False), lambda g: batch, longer, tmp_path, name="test")["steps"] == 6  # same code resumes


def _fit_cfg(out, steps, **kw):
    torch.manual_seed(0)
    model = RegressionWorldModel(tiny_configs()["regression"])
    data = toy_batch()

    def sample(g):  # a batch that depends on the generator, so the batch stream matters
        idx = torch.randint(0, data["z_t"].shape[0], (data["z_t"].shape[0],), generator=g)
        return {k: v[idx] if torch.is_tensor(v) and v.ndim > 0 and v.shape[0] == data["z_t"].shape[0] else v for k, v in data.items()}

    cfg = TrainConfig(max_steps=steps, max_minutes=5, batch_size=8, lr=3e-3, warmup_steps=2, log_every=1, checkpoint_every=100, **kw)
    summary = fit(model, sample, cfg, out, name="test")
    return model, summary


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_a_resumed_run_ends_bit_identical_to_an_uninterrupted_one(tmp_path, ema):
    whole, _ = _fit_cfg(tmp_path / "whole", 8, ema_decay=ema)
    _fit_cfg(tmp_path / "split", 3, ema_decay=ema)
    resumed, summary = _fit_cfg(tmp_path / "split", 8, ema_decay=ema)
    assert summary["steps"] == 8
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_ema_weights_are_the_result_and_differ_from_the_raw_ones(tmp_path):
    raw, _ = _fit_cfg(tmp_path / "raw", 6)
    averaged, summary = _fit_cfg(tmp_path / "ema", 6, ema_decay=0.9)
    assert summary["cpu_seconds"] > 0
    assert not torch.equal(raw.out.weight, averaged.out.weight)
    # the EMA lies between the initialisation (zeros, for the zero-initialised head) and the raw weights
    assert averaged.out.weight.abs().sum() < raw.out.weight.abs().sum()
