"""The training loop every stage shares: AdamW with warm-up and cosine decay, a step and
wall-clock budget, resumable checkpoints and a CSV loss log, under Hugging Face Accelerate.

The same script runs on this CPU and, unchanged, under ``accelerate launch`` on GPUs.
"""
from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from rla.ema import EMA


@dataclass
class TrainConfig:
    max_steps: int = 20_000  # optimizer steps (the minutes budget usually ends training first)
    max_minutes: float = 30.0  # wall-clock budget; the same for every method compared
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05  # cosine decays to lr * this
    grad_clip: float = 1.0
    log_every: int = 25
    checkpoint_every: int = 500  # steps between resumable checkpoints
    seed: int = 0
    ema_decay: float = 0.0  # exponential moving average of the weights (0 = off); the EMA weights are the result

    def __post_init__(self):
        if self.max_steps < 1 or self.max_minutes <= 0 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"invalid TrainConfig: {self}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"TrainConfig.ema_decay must be in [0, 1), got {self.ema_decay}")


def lr_factor(step: int, cfg: TrainConfig, total: int) -> float:
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` over ``total`` steps."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def fit(model: torch.nn.Module, sample_batch: Callable[[torch.Generator], dict], cfg: TrainConfig, out: Path, *, name: str = "model") -> dict:
    """Train ``model`` on batches from ``sample_batch(generator)`` until the step or time budget ends.

    ``model(batch)`` returns ``(loss, logs)``. Resumes from ``out/checkpoint`` when present.
    The cosine schedule is laid over an estimate of the steps the time budget allows (measured
    over the first steps), so the learning rate has decayed when the budget runs out.
    Returns a summary (steps, minutes, final loss).
    """
    from accelerate import Accelerator

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay)
    model, opt = accelerator.prepare(model, opt)
    ckpt, state_file = out / "checkpoint", out / "checkpoint" / "progress.json"
    step, elapsed, total, cpu_used = 0, 0.0, cfg.max_steps, 0.0
    params = [p for p in accelerator.unwrap_model(model).parameters() if p.requires_grad]
    ema = EMA(params, cfg.ema_decay) if cfg.ema_decay else None
    if state_file.exists():
        accelerator.load_state(str(ckpt))
        _check_optimizer_state(opt, ckpt)
        state = json.loads(state_file.read_text())
        step, elapsed, total, cpu_used = state["step"], state["elapsed"], state["total"], state.get("cpu_seconds", 0.0)
        if ema is not None:
            ema.load(ckpt / "ema.safetensors")
        if step >= total and cfg.max_steps > step:  # extending a finished run: warm restart of the cosine
            total = cfg.max_steps
        accelerator.print(f"[{name}] resumed at step {step} ({elapsed / 60:.1f} min)")
    gen = torch.Generator().manual_seed(cfg.seed)
    if step and (ckpt / "generator.safetensors").exists():  # continue the batch stream exactly where it stopped
        from safetensors.torch import load_file

        gen.set_state(load_file(str(ckpt / "generator.safetensors"))["state"])
    log_path = out / "loss.csv"
    new_log = not log_path.exists() or step == 0
    log_file = open(log_path, "w" if new_log else "a", newline="")
    writer = csv.writer(log_file)
    if new_log:
        writer.writerow(["step", "minutes", "lr", "loss", "logs"])
    bar = tqdm(total=cfg.max_steps, initial=step, desc=name, disable=not accelerator.is_main_process, mininterval=5)
    start, smooth = time.perf_counter() - elapsed, None
    cpu_start = time.process_time() - cpu_used
    model.train()
    while step < cfg.max_steps:
        elapsed = time.perf_counter() - start
        if elapsed > cfg.max_minutes * 60:
            break
        if step == cfg.warmup_steps // 2 and total == cfg.max_steps and step > 0:
            # estimate how many steps fit the time budget and lay the schedule over them
            total = int(min(cfg.max_steps, step * cfg.max_minutes * 60 / max(elapsed, 1e-6)))
        for group in opt.param_groups:
            group["lr"] = cfg.lr * lr_factor(step, cfg, total)
        batch = {k: v.to(accelerator.device) if torch.is_tensor(v) else v for k, v in sample_batch(gen).items()}
        loss, logs = model(batch)
        opt.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        if cfg.grad_clip:
            accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if ema is not None:
            ema.update(step)
        step += 1
        smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
        if step % cfg.log_every == 0:
            writer.writerow([step, f"{elapsed / 60:.2f}", f"{opt.param_groups[0]['lr']:.2e}", f"{loss.item():.5f}", json.dumps(logs)])
            log_file.flush()
            bar.set_postfix(loss=f"{smooth:.4f}")
        bar.update(1)
        if step % cfg.checkpoint_every == 0:
            _checkpoint(accelerator, ckpt, state_file, step, time.perf_counter() - start, total, time.process_time() - cpu_start, ema, gen)
    bar.close()
    log_file.close()
    minutes, cpu_seconds = (time.perf_counter() - start) / 60, time.process_time() - cpu_start
    _checkpoint(accelerator, ckpt, state_file, step, minutes * 60, total, cpu_seconds, ema, gen)
    if ema is not None:
        ema.copy_to(params)  # the result is the averaged model; the checkpoint keeps the raw one for resuming
    model.eval()
    return {"steps": step, "minutes": round(minutes, 2), "cpu_seconds": round(cpu_seconds, 3), "final_loss": smooth,
            "threads": torch.get_num_threads(), "config": asdict(cfg)}


def _check_optimizer_state(opt: torch.optim.Optimizer, ckpt: Path) -> None:
    """Optimizer state is stored by parameter position, not name: a checkpoint saved by other
    code (parameters added, removed or registered in another order) must not be resumed."""
    for group in opt.param_groups:
        for p in group["params"]:
            state = opt.state.get(p, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state and state[key].shape != p.shape:
                    raise SystemExit(f"{ckpt} was saved by a different version of the model (optimizer state {tuple(state[key].shape)} "
                                     f"for a parameter of shape {tuple(p.shape)}): delete {ckpt} to train from scratch")


def _checkpoint(accelerator, ckpt: Path, state_file: Path, step: int, elapsed: float, total: int, cpu_seconds: float, ema,
                gen: torch.Generator) -> None:
    from safetensors.torch import save_file

    accelerator.save_state(str(ckpt), safe_serialization=True)
    save_file({"state": gen.get_state()}, str(ckpt / "generator.safetensors"))
    if ema is not None:
        ema.save(ckpt / "ema.safetensors")
    state_file.write_text(json.dumps({"step": step, "elapsed": elapsed, "total": total, "cpu_seconds": cpu_seconds}))
