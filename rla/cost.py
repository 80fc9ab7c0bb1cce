"""Cost of one predicted chunk: FLOPs (torch's flop counter) and measured wall time."""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode


@dataclass
class Cost:
    gflops: float  # floating-point operations per predicted chunk (batch 1), in 1e9
    ms_median: float  # wall time per predicted chunk
    ms_p95: float
    repeats: int

    def to_dict(self) -> dict:
        return asdict(self)


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query_shape, key_shape, value_shape)


def count_flops(fn, *args, **kwargs) -> int:
    """Total FLOPs of ``fn(*args, **kwargs)`` as counted by ``torch.utils.flop_counter``.

    Attention on the CPU runs ``_scaled_dot_product_flash_attention_for_cpu``, which torch's
    counter does not know (it counted 0 FLOPs for it): it is counted here like the GPU kernels.
    """
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flops}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn(*args, **kwargs)
    return int(counter.get_total_flops())


def measure_cost(world_model, z_t: torch.Tensor, a: torch.Tensor, *, steps: int | None = None, repeats: int = 20, warmup: int = 2) -> Cost:
    """FLOPs and wall time of ``world_model.predict(z_t, a, steps=steps)`` for a batch of one.

    Args:
        z_t: ``(1, N, D)`` start tokens; a: ``(1, K, A)`` an action chunk.
    """
    assert z_t.shape[0] == 1 and a.shape[0] == 1, "measure cost on a batch of one"
    g = torch.Generator().manual_seed(0)
    flops = count_flops(world_model.predict, z_t, a, steps=steps, generator=g)
    for _ in range(warmup):
        world_model.predict(z_t, a, steps=steps, generator=g)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        world_model.predict(z_t, a, steps=steps, generator=g)
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return Cost(gflops=flops / 1e9, ms_median=statistics.median(times), ms_p95=p95, repeats=repeats)
