"""rla.ema: one warm-up rule and one update for fit's EMA and the policies' EMATrainer; formats unchanged."""
from pathlib import Path

import pytest
import torch
from torch import nn

from rla.ema import EMA, EMATrainer, ema_decay

ROOT = Path(__file__).resolve().parents[2]


def test_both_averages_follow_one_warm_up_rule_against_a_hand_computed_reference():
    torch.manual_seed(0)
    net = nn.Linear(5, 3)
    trainer = EMATrainer(net, max_decay=0.7)
    ema = EMA(list(net.parameters()), 0.7)
    reference = [p.detach().double().clone() for p in net.parameters()]
    for n in range(30):  # the warm-up (1 + n) / (10 + n) reaches the cap 0.7 at n = 20
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        d = min(0.7, (1 + n) / (10 + n))
        reference = [d * r + (1 - d) * p.detach().double() for r, p in zip(reference, net.parameters())]
        ema.update(n)
        trainer.update()
    for s, avg, r in zip(ema.shadow, trainer.ema.parameters(), reference):
        assert torch.equal(s, avg)  # the two holders compute the same numbers
        torch.testing.assert_close(s.double(), r, rtol=1e-5, atol=1e-6)
    assert int(trainer.updates) == 30 and trainer.decay() == 0.7
    assert ema_decay(0, 0.999) == pytest.approx(0.1) and ema_decay(10_000, 0.999) == 0.999


def test_ema_trainer_state_dict_keeps_its_checkpoint_layout():
    trainer = EMATrainer(nn.Linear(2, 2), max_decay=0.5)
    assert set(trainer.state_dict()) == {"policy.weight", "policy.bias", "ema.weight", "ema.bias", "updates"}
    assert [n for n, p in trainer.named_parameters() if p.requires_grad] == ["policy.weight", "policy.bias"]


def test_ema_save_load_round_trip_and_refusals(tmp_path):
    params = [torch.randn(3, 2), torch.randn(4)]
    ema = EMA(params, 0.5)
    ema.update(0)
    ema.save(tmp_path / "ema.safetensors")
    other = EMA([torch.zeros(3, 2), torch.zeros(4)], 0.5)
    other.load(tmp_path / "ema.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(ema.shadow, other.shadow))
    with pytest.raises(SystemExit, match="missing"):
        other.load(tmp_path / "none.safetensors")
    with pytest.raises(SystemExit, match="does not match"):
        EMA([torch.zeros(3, 3)], 0.5).load(tmp_path / "ema.safetensors")


@pytest.mark.parametrize("folder", ["PullCube/wam/seed0", "PullCube/bc/seed0"])
def test_a_shipped_policy_is_its_training_checkpoint_plus_one_update(folder):
    """train_policy saves ``trainer.ema`` after one last ``update()``: the checkpoint it left must give it back, bit for bit.
    The checkpoints are not in git (.gitignore): where training did not run here, there is nothing to check."""
    from safetensors.torch import load_file

    from rla.policy import Policy

    path = ROOT / "assets" / "policies" / folder
    if not (path / "checkpoint" / "model.safetensors").is_file():
        pytest.skip(f"no training checkpoint under {path}")
    shipped = Policy.load(path)
    trainer = EMATrainer(Policy(shipped.config), max_decay=0.999)  # train_policy's --ema default
    missing, unexpected = trainer.load_state_dict(load_file(str(path / "checkpoint" / "model.safetensors")), strict=False)
    assert not unexpected and all(k.endswith(("_mean", "_std")) for k in missing)  # safetensors drops buffers that share storage
    trainer.update()
    for k, v in shipped.state_dict().items():
        assert torch.equal(trainer.ema.state_dict()[k], v), k
