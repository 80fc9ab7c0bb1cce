"""Train a world model on top of cached tokens: the RLA world model's flow dynamics, or a baseline.

    python -m training.train_world_model --method rla --autoencoder runs/ae/autoencoder --data data/PullCube --out runs/rla --minutes 20
    python -m training.train_world_model --method regression --data data/PullCube --out runs/regression --minutes 20
    python -m training.train_world_model --method token_flow --data data/PullCube --out runs/token_flow --minutes 20

Every method sees the same episodes, the same horizons and the same budget. For ``rla`` the
autoencoder is frozen: latent actions of each training pair are its encoder's output, and the
flow learns them standardised. Writes ``OUT/<method>/`` (model.safetensors + config.json) and
``OUT/loss.csv``.
"""
from __future__ import annotations

import argparse

import torch

from rla.autoencoder import RLAAutoencoder
from rla.baselines import RegressionWorldModel, TokenFlowWorldModel
from rla.horizons import WORLD_MODEL_K_RANGE
from rla.hub import file_sha256
from rla.presets import model_configs
from rla.world_model import LatentFlow
from training.common import add_common_args, load_splits, train_config, write_json
from training.loop import fit

METHODS = ("rla", "regression", "token_flow")


def build(method: str, preset: str, num_tokens: int, token_dim: int, action_dim: int, autoencoder: RLAAutoencoder | None,
          whiten: bool = False, time_mean: float = 0.0):
    cfgs = model_configs(preset, num_tokens, token_dim, action_dim, whiten=whiten, time_mean=time_mean)
    if method == "rla":
        if autoencoder is None:
            raise SystemExit("--method rla needs --autoencoder PATH (a trained RLA autoencoder)")
        ae = autoencoder.config
        # the dynamics must speak the autoencoder's latent space, whatever preset it was trained with
        dyn = cfgs["dynamics"]
        dyn.num_queries, dyn.latent_dim = ae.num_queries, ae.latent_dim
        return LatentFlow(dyn)
    if method == "regression":
        return RegressionWorldModel(cfgs["regression"])
    return TokenFlowWorldModel(cfgs["token_flow"])


@torch.no_grad()
def latent_sample(ae: RLAAutoencoder, pairs, n: int = 4096, seed: int = 1) -> torch.Tensor:
    gen, out = torch.Generator().manual_seed(seed), []
    for _ in range(max(1, n // 256)):
        b = pairs.sample_batch(256, generator=gen)
        out.append(ae.encode(b["z_t"], b["z_k"]))
    return torch.cat(out)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--method", choices=METHODS, required=True)
    parser.add_argument("--autoencoder", default=None, help="trained autoencoder folder (method rla)")
    parser.add_argument("--whiten", action="store_true", help="rla: ZCA-whiten the latent actions instead of per-element scaling")
    parser.add_argument("--time-mean", type=float, default=0.0,
                        help="rla and token_flow: mean of the logit-normal training times (> 0 shifts toward noise)")
    args = parser.parse_args(argv)
    encoder, train, _ = load_splits(args)
    action_dim = int(train.episodes[0].actions.shape[1])
    ae = RLAAutoencoder.load(args.autoencoder) if args.autoencoder else None
    if ae is not None:
        ae.requires_grad_(False)
    torch.manual_seed(args.seed)
    model = build(args.method, args.preset, encoder.num_tokens, encoder.dim, action_dim, ae, args.whiten, args.time_mean)
    pairs = train.pairs(WORLD_MODEL_K_RANGE, seed=args.seed, interaction=args.interaction)
    if args.method == "rla":
        model.set_latent_stats(latent_sample(ae, pairs))
    elif args.method == "token_flow":
        model.set_token_stats(torch.cat([t[::4] for t in train.tokens]))
    tc = train_config(args, max_minutes=20.0, batch_size=64, lr=1e-3)

    def sample(gen: torch.Generator) -> dict:
        b = pairs.sample_batch(tc.batch_size, generator=gen)
        batch = {"z_t": b["z_t"], "z_k": b["z_k"], "actions": b["actions"]}
        if ae is not None:
            with torch.no_grad():
                batch["u"] = ae.encode(b["z_t"], b["z_k"])
        return batch

    summary = fit(model, sample, tc, args.out, name=args.method)
    model = getattr(model, "module", model).eval()
    model.save_pretrained(args.out / args.method)
    report = {"method": args.method, "train": summary, "encoder": encoder.fingerprint, "train_episodes": len(train.episodes),
              "seed": args.seed, "whiten": args.whiten, "time_mean": args.time_mean, "interaction": args.interaction,
              "sha256": file_sha256(args.out / args.method / "model.safetensors")}
    write_json(args.out / f"{args.method}_train.json", report)
    return report


if __name__ == "__main__":
    from training.common import cli

    cli(main)
