#!/usr/bin/env bash
# Does RLA-WM close the gap to direct regression with a longer dynamics budget?
# Trains the RLA flow dynamics for 2,400 steps (2x the pack's 1,200; one dynamics step costs about
# half a regression step, so this is about the CPU time regression had) on the pack's frozen
# autoencoder, swaps it into a copy of the pack, and evaluates with the same protocol.
# Needs the pipeline's data and runs: python -m training.pipeline --preset cpu --out assets/pack
set -euo pipefail
cd "$(dirname "$0")/../.."
python -m training.train_world_model --method rla --autoencoder runs/pipeline/autoencoder/autoencoder \
  --data data/pipeline --out runs/dyn2400 --preset cpu --steps 2400 --minutes 40 --batch-size 64 --threads 2
rm -rf runs/pack_dyn2400 && cp -r assets/pack runs/pack_dyn2400
rm -rf runs/pack_dyn2400/dynamics && cp -r runs/dyn2400/rla runs/pack_dyn2400/dynamics
python -m training.evaluate --pack runs/pack_dyn2400 --data data/pipeline --out runs/dyn2400_eval.json \
  --markdown docs/experiments/dynamics_budget.md
