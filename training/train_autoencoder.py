"""Train the RLA autoencoder on recorded episodes (play + task videos).

    python -m training.train_autoencoder --data data/play data/PullCube --out runs/ae --preset cpu --minutes 30

Writes ``OUT/autoencoder/`` (model.safetensors + config.json), ``OUT/loss.csv`` and
``OUT/autoencoder_eval.json`` with the gate: reconstruction error on held-out pairs against the
copy-the-start-frame floor, on the whole frame and on the tokens that change.
"""
from __future__ import annotations

import argparse

import torch

from rla.autoencoder import RLAAutoencoder
from rla.horizons import AUTOENCODER_K_RANGE
from rla.hub import file_sha256
from rla.metrics import moving_tokens
from rla.presets import model_configs
from training.common import add_common_args, load_splits, train_config, write_json
from training.loop import fit


@torch.no_grad()
def reconstruction_report(ae: RLAAutoencoder, data, k_range=AUTOENCODER_K_RANGE, batches: int = 20, batch_size: int = 64, seed: int = 123) -> dict:
    """Held-out reconstruction vs the copy floor (predict z_t for z_{t+k}).

    "moving" restricts the errors to tokens whose real residual exceeds the autoencoder's change
    threshold: most of a tabletop frame never changes, and whole-frame errors reward copying.
    """
    pairs, gen = data.pairs(k_range, seed=seed), torch.Generator().manual_seed(seed)
    sums = {key: 0.0 for key in ("mse", "l1", "copy_mse", "copy_l1", "mse_moving", "l1_moving", "copy_mse_moving", "copy_l1_moving")}
    n_moving = 0.0
    for _ in range(batches):
        b = pairs.sample_batch(batch_size, generator=gen)
        z_t, z_k = b["z_t"], b["z_k"]
        pred = ae.decode(z_t, ae.encode(z_t, z_k))
        moving = moving_tokens(z_t, z_k, ae.config.change_threshold).float()  # (B, N)
        n_moving += moving.sum().item()
        for prefix, p in (("", pred), ("copy_", z_t)):
            err_sq, err_abs = (p - z_k).square().mean(-1), (p - z_k).abs().mean(-1)  # (B, N)
            sums[prefix + "mse"] += err_sq.mean().item() / batches
            sums[prefix + "l1"] += err_abs.mean().item() / batches
            sums[prefix + "mse_moving"] += (err_sq * moving).sum().item()
            sums[prefix + "l1_moving"] += (err_abs * moving).sum().item()
    for key in ("mse_moving", "l1_moving", "copy_mse_moving", "copy_l1_moving"):
        sums[key] /= max(n_moving, 1.0)
    ratio = lambda a, b: a / b if b > 0 else float("nan")  # noqa: E731
    return {
        **sums,
        "moving_fraction": n_moving / (batches * batch_size * ae.config.num_tokens),
        "mse_vs_copy_moving": ratio(sums["mse_moving"], sums["copy_mse_moving"]),
        "l1_vs_copy_moving": ratio(sums["l1_moving"], sums["copy_l1_moving"]),
        "mse_vs_copy": ratio(sums["mse"], sums["copy_mse"]),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--change-threshold", type=float, default=0.05, help="mean |residual| for a token to count as changing")
    args = parser.parse_args(argv)
    encoder, train, val = load_splits(args)
    cfg = model_configs(args.preset, encoder.num_tokens, encoder.dim, action_dim=1, change_threshold=args.change_threshold)["autoencoder"]
    torch.manual_seed(args.seed)
    ae = RLAAutoencoder(cfg)
    pairs = train.pairs(AUTOENCODER_K_RANGE, seed=args.seed, interaction=args.interaction)
    tc = train_config(args, max_minutes=30.0, batch_size=64, lr=1e-3)
    summary = fit(ae, lambda g: pairs.sample_batch(tc.batch_size, generator=g), tc, args.out, name="autoencoder")
    ae = getattr(ae, "module", ae).eval()
    ae.save_pretrained(args.out / "autoencoder")
    report = {"train": summary, "heldout": reconstruction_report(ae, val), "encoder": encoder.fingerprint, "seed": args.seed,
              "train_episodes": len(train.episodes), "heldout_episodes": len(val.episodes), "interaction": args.interaction,
              "sha256": file_sha256(args.out / "autoencoder" / "model.safetensors")}
    write_json(args.out / "autoencoder_eval.json", report)
    h = report["heldout"]
    print(f"held-out reconstruction on moving tokens: MSE {h['mse_vs_copy_moving']:.2f}x and L1 {h['l1_vs_copy_moving']:.2f}x the copy floor")
    return report


if __name__ == "__main__":
    from training.common import cli

    cli(main)
