"""The policy: a behaviour-cloning network with an optional RLA head (the World Action Model).

Shape of the network (the authors' ``vla_bc_policy_rla_unified``, scaled by :class:`PolicyConfig`)::

    frame ─ trunk ─► image tokens (B, M, W) ┐
    qpos ─ MLP ─► + learned state token     ├─ attention blocks ─► query outputs (B, Qo, W)
    learnable output queries (B, Qo, W)     ┘                         │ flatten
                                                             shared MLP (B, hidden) = features
                                           action head ◄──────────────┴──────────────► RLA head
                                (B, K, A) normalised actions                 (B, Q, C) standardised RLA

Samples without qpos (the action-less videos, or an imagined env) use the learned state token alone.
The action loss covers labelled samples only; the RLA head (present when ``rla_weight > 0``) is
trained on every sample to predict the pack autoencoder's latent action between frame ``t`` and
``t + k``, standardised with the dynamics' statistics. It is not used when acting.

API in LeRobot's spirit: ``forward(batch) -> (loss, logs)``, ``select_action(obs)``, ``reset()``;
plus ``features(obs)`` and ``predict_chunk(obs)`` for code that builds on the trunk (e.g. a
residual RL head over a frozen policy).
"""
# No `from __future__ import annotations`: the Hub mixin reads the `config` annotation.
from collections import deque

import numpy as np
import torch
from torch import nn

from rla.hub import HubModule
from rla.layers import Block
from rla.policy.config import PolicyConfig
from rla.policy.trunk import ResNetTrunk, TokenTrunk

MIN_STD = 1e-2  # floor of the normaliser's standard deviations (a constant gripper command has std 0)


class Policy(HubModule):
    config_class = PolicyConfig

    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.config = c = config
        if c.trunk == "tokens":
            self.trunk = TokenTrunk(c.num_tokens, c.token_dim, c.width)
        else:
            self.trunk = ResNetTrunk(c.image_size, c.width)
        self.state_mlp = (nn.Sequential(nn.Linear(c.state_dim, c.width), nn.GELU(approximate="tanh"), nn.Linear(c.width, c.width))
                          if c.state_dim else None)
        self.state_token = nn.Parameter(torch.randn(1, 1, c.width) * 0.02)  # the authors' proprio_token
        self.queries = nn.Parameter(torch.randn(1, c.num_queries, c.width) * 0.02)
        self.blocks = nn.ModuleList(Block(c.width, c.heads, c.mlp_ratio) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.width)
        self.shared = nn.Sequential(
            nn.Linear(c.num_queries * c.width, c.hidden), nn.GELU(approximate="tanh"), nn.Dropout(c.dropout),
            nn.Linear(c.hidden, c.hidden), nn.GELU(approximate="tanh"), nn.Dropout(c.dropout))
        self.action_head = nn.Linear(c.hidden, c.chunk * c.action_dim)
        # normalisers, fitted on labelled data only (set_normalizer); saved with the weights. Without a
        # state (state_dim 0) the empty state normaliser is not saved: zero-size tensors all share
        # storage address 0, and Accelerate's safetensors checkpoint drops all but one of them.
        self.register_buffer("action_mean", torch.zeros(c.action_dim))
        self.register_buffer("action_std", torch.ones(c.action_dim))
        self.register_buffer("state_mean", torch.zeros(c.state_dim), persistent=c.state_dim > 0)
        self.register_buffer("state_std", torch.ones(c.state_dim), persistent=c.state_dim > 0)
        if not c.state_dim:
            self.register_load_state_dict_pre_hook(_drop_empty_state_normaliser)
        # built last, so that a BC policy and a WAM policy made after the same torch.manual_seed
        # share the initial values of every other parameter
        self.rla_head = nn.Linear(c.hidden, c.rla_queries * c.rla_dim) if c.has_rla_head else None
        self._runtime = {"queue": deque(), "encoder": None}  # not parameters: the action queue, the frozen encoder

    @property
    def action_dim(self) -> int:
        return self.config.action_dim

    @property
    def num_features(self) -> int:
        """Size of :meth:`features`."""
        return self.config.hidden

    # ---- normalisation ---------------------------------------------------------------------------

    @torch.no_grad()
    def set_normalizer(self, actions: torch.Tensor, qpos: torch.Tensor | None = None) -> None:
        """Per-dimension mean and std of labelled ``actions (M, A)`` and ``qpos (M', J)``."""
        self.action_mean.copy_(actions.float().mean(0))
        self.action_std.copy_(actions.float().std(0).clamp_min(MIN_STD))
        if self.config.state_dim and qpos is not None:
            self.state_mean.copy_(qpos.float().mean(0))
            self.state_std.copy_(qpos.float().std(0).clamp_min(MIN_STD))

    def normalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        return (a - self.action_mean) / self.action_std

    def unnormalize_actions(self, a: torch.Tensor) -> torch.Tensor:
        """Normalised ``(…, A)`` → env actions, clipped to the env's bounds."""
        return (a * self.action_std + self.action_mean).clamp(self.config.action_low, self.config.action_high)

    # ---- the network -----------------------------------------------------------------------------

    def image_tokens(self, obs: dict) -> torch.Tensor:
        """The trunk's tokens ``(B, M, W)`` of ``obs["tokens"] (B, N, D)`` or ``obs["image"] (B, H, W, 3)`` uint8."""
        if self.config.trunk == "resnet18":
            if "image" not in obs:
                raise ValueError("a resnet18 policy observes frames: pass obs['image'] (B, H, W, 3) uint8")
            return self.trunk(obs["image"])
        if "tokens" in obs:
            return self.trunk(obs["tokens"].to(self.trunk.proj.weight.device))
        if "image" in obs:
            return self.trunk(self.encoder.encode(obs["image"]).to(self.trunk.proj.weight.device))
        raise ValueError("pass obs['tokens'] (B, N, D) or obs['image'] (B, H, W, 3) uint8")

    def state_tokens(self, batch_size: int, qpos: torch.Tensor | None, has_state: torch.Tensor | None) -> torch.Tensor:
        """``(B, 1, W)``: the learned token, plus the qpos MLP for rows with a state.

        ``qpos (L, J)`` holds the rows where ``has_state (B,)`` is True, in order (all rows when
        ``has_state`` is None).
        """
        token = self.state_token.expand(batch_size, -1, -1)
        if self.state_mlp is None or qpos is None:
            return token
        emb = self.state_mlp((qpos.float() - self.state_mean) / self.state_std)  # (L, W)
        if has_state is None:
            return token + emb[:, None]
        full = emb.new_zeros(batch_size, emb.shape[-1]).index_copy(0, has_state.nonzero()[:, 0], emb)
        return token + full[:, None]

    def features(self, obs: dict, qpos: torch.Tensor | None = None, has_state: torch.Tensor | None = None) -> torch.Tensor:
        """The shared MLP's output ``(B, hidden)`` that both heads read."""
        x = self.image_tokens(obs)  # (B, M, W)
        b = x.shape[0]
        q = self.queries.expand(b, -1, -1)
        x = torch.cat([x, self.state_tokens(b, qpos, has_state), q], dim=1)  # (B, M + 1 + Qo, W)
        for block in self.blocks:
            x = block(x)
        out = self.norm(x[:, -self.config.num_queries:])  # (B, Qo, W)
        return self.shared(out.flatten(1))

    def action_chunk(self, h: torch.Tensor) -> torch.Tensor:
        """Features ``(B, hidden)`` → normalised action chunk ``(B, K, A)``."""
        return self.action_head(h).view(h.shape[0], self.config.chunk, self.config.action_dim)

    def rla(self, h: torch.Tensor) -> torch.Tensor:
        """Features ``(B, hidden)`` → standardised latent action ``(B, Q, C)`` (WAM policies only)."""
        if self.rla_head is None:
            raise ValueError("this policy has no RLA head (rla_weight = 0: the BC baseline)")
        return self.rla_head(h).view(h.shape[0], self.config.rla_queries, self.config.rla_dim)

    # ---- training --------------------------------------------------------------------------------

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Loss on a batch from :class:`rla.policy.PolicyData`.

        Batch: ``tokens (B, N, D)`` or ``image (B, H, W, 3)``; ``labelled (B,)`` bool; for the
        ``L`` labelled rows, in order, ``qpos (L, J)``, ``actions (L, K, A)`` in env units and
        ``action_pad (L, K)`` (True past the episode's end); for RLA policies ``rla (B, Q, C)``
        and ``rla_valid (B,)``. Action MSE on labelled rows only; ``rla_weight · (L1 + MSE)`` on
        every row with a valid RLA target.
        """
        labelled = batch["labelled"]
        h = self.features(batch, batch.get("qpos"), labelled)
        pred = self.action_chunk(h)  # (B, K, A)
        logs = {"labelled": int(labelled.sum())}
        if "actions" in batch and labelled.any():
            assert batch["actions"].shape[1:] == pred.shape[1:], (
                f"actions must be (L, {self.config.chunk}, {self.config.action_dim}) chunks, got {tuple(batch['actions'].shape)}")
            err = (pred[labelled] - self.normalize_actions(batch["actions"])).square().mean(-1)  # (L, K)
            keep = ~batch["action_pad"]
            action_loss = (err * keep).sum() / keep.sum().clamp_min(1)
        else:
            action_loss = pred.sum() * 0.0  # no labelled rows: exactly zero gradient on the action head
        loss = action_loss
        logs["action_mse"] = action_loss.item()
        if self.rla_head is not None and "rla" in batch:
            valid = batch["rla_valid"]
            diff = (self.rla(h) - batch["rla"])[valid]  # (V, Q, C)
            if len(diff):
                l1, mse = diff.abs().mean(), diff.square().mean()
                loss = loss + self.config.rla_weight * (l1 + mse)
                logs.update(rla_l1=l1.item(), rla_mse=mse.item())
        return loss, logs

    # ---- acting ----------------------------------------------------------------------------------

    @property
    def encoder(self):
        """The frozen encoder that turns frames into the pack's tokens (built on first use, not saved)."""
        if self._runtime["encoder"] is None:
            from rla.encoders import EncoderSpec, build_encoder

            if not self.config.encoder:
                raise ValueError("this policy records no encoder (config.encoder is empty): pass obs['tokens']")
            self._runtime["encoder"] = build_encoder(EncoderSpec(**self.config.encoder))
        return self._runtime["encoder"]

    def set_encoder(self, encoder) -> None:
        """Use an already built encoder (e.g. the pack's) instead of building one from the config."""
        self._runtime["encoder"] = encoder

    @torch.no_grad()
    def predict_chunk(self, obs: dict) -> torch.Tensor:
        """A whole chunk of env actions ``(B, K, A)`` from one observation (see :meth:`select_action`)."""
        obs = _batched(obs)
        qpos = obs.get("qpos") if self.config.state_dim else None
        if qpos is not None:
            qpos = torch.as_tensor(np.asarray(qpos) if not torch.is_tensor(qpos) else qpos, dtype=torch.float32,
                                   device=self.action_mean.device)
            if qpos.shape[-1] != self.config.state_dim:
                raise ValueError(f"qpos has {qpos.shape[-1]} dims, the policy was trained on {self.config.state_dim}")
        return self.unnormalize_actions(self.action_chunk(self.features(obs, qpos)))

    @torch.no_grad()
    def select_action(self, obs: dict) -> torch.Tensor:
        """The next env action ``(B, A)``.

        ``obs``: ``image`` ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8 or ``tokens`` ``(N, D)`` /
        ``(B, N, D)``, and ``qpos`` ``(J,)`` / ``(B, J)`` (optional: without it the learned state
        token stands alone, as for action-less training samples). A chunk is predicted every
        ``execute`` calls and its first ``execute`` actions are returned one by one; call
        :meth:`reset` when an episode starts.
        """
        queue = self._runtime["queue"]
        if not queue:
            chunk = self.predict_chunk(obs)  # (B, K, A)
            queue.extend(chunk[:, : self.config.execute].transpose(0, 1))  # execute × (B, A)
        return queue.popleft()

    def reset(self) -> None:
        """Forget the queued actions (call at the start of every episode)."""
        self._runtime["queue"].clear()

    def train(self, mode: bool = True):
        self.reset()
        return super().train(mode)


def _drop_empty_state_normaliser(module, state_dict, prefix, *_) -> None:
    """Files saved before the state normaliser of state-less policies stopped being saved carry it, empty."""
    for name in ("state_mean", "state_std"):
        if prefix + name in state_dict and state_dict[prefix + name].numel() == 0:
            del state_dict[prefix + name]


def _batched(obs: dict) -> dict:
    """Add the batch dimension to single observations; frames stay uint8, tokens become float tensors."""
    out = dict(obs)
    if "tokens" in out:
        z = torch.as_tensor(out["tokens"], dtype=torch.float32)
        out["tokens"] = z[None] if z.ndim == 2 else z
    if "image" in out:
        img = out["image"]
        img = torch.as_tensor(np.asarray(img)) if not torch.is_tensor(img) else img
        out["image"] = img[None] if img.ndim == 3 else img
    if out.get("qpos") is not None:
        q = out["qpos"]
        q = torch.as_tensor(np.asarray(q)) if not torch.is_tensor(q) else q
        out["qpos"] = q[None] if q.ndim == 1 else q
    return out
