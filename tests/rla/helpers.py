"""Tiny models and data shared by the rla tests."""
import torch

from rla import model_configs

N, D, A, K = 16, 24, 3, 5  # tokens, token dim, action dim, chunk


def tiny_configs(**overrides):
    return model_configs("tiny", num_tokens=N, token_dim=D, action_dim=A, **overrides)


def toy_batch(b=8, seed=0):
    """z_k depends on z_t and the actions, so models have something to learn."""
    g = torch.Generator().manual_seed(seed)
    z_t = torch.randn(b, N, D, generator=g)
    a = torch.randn(b, K, A, generator=g)
    shift = a.mean(1) @ torch.randn(A, D, generator=g)  # (B, D)
    z_k = z_t.clone()
    z_k[:, : N // 2] += shift[:, None]  # half of the tokens move
    return {"z_t": z_t, "z_k": z_k, "actions": a}


def train(model, batch, steps, lr=3e-3):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        loss, _ = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
