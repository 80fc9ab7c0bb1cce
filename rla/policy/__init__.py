"""The World Action Model: a behaviour-cloning policy with an RLA head, its data and its evaluation.

    from rla.policy import Policy, PolicyData, policy_config
    data = PolicyData.build(episodes, pack, labelled_fraction=0.05)        # few labelled, many action-less
    policy = Policy(policy_config("cpu", num_tokens=64, token_dim=768, rla_weight=0.05))
    loss, logs = policy(data.sample_batch(64))                             # action MSE + 0.05 (L1 + MSE) on the RLA
    policy.reset(); a = policy.select_action({"image": frame, "qpos": qpos})   # (1, A), one chunk every `execute` calls

Training: ``python -m training.train_policy``; scoring in ManiSkill: ``python -m training.evaluate_policy``
(both documented in docs/wam.md).
"""
from rla.ema import EMATrainer
from rla.policy.config import POLICY_PRESETS, TRUNKS, PolicyConfig, policy_config
from rla.policy.data import Demo, PolicyData, file_sha256, heldout_report, rla_targets, split_episodes
from rla.policy.model import Policy

__all__ = [
    "Demo", "EMATrainer", "POLICY_PRESETS", "Policy", "PolicyConfig", "PolicyData", "TRUNKS", "file_sha256", "heldout_report",
    "policy_config", "rla_targets", "split_episodes",
]
