"""Model-state memory per GPU under DeepSpeed ZeRO stages 0-3 (Rajbhandari et al. 2020).

Mixed-precision Adam keeps 16 bytes per parameter (ZeRO paper, sec. 3.1): bf16 weights (2) and gradients (2),
and fp32 master weights, momentum and variance (12). Stage 1 partitions the optimizer states across the
data-parallel GPUs, stage 2 the gradients too, stage 3 the weights too. Activations are not counted: the plan
keeps a fraction of each GPU's memory for them (`--memory_headroom`).
"""

from __future__ import annotations

import math
from typing import Any

from hfscratch.core.hardware import GPU

ZERO_STAGES = (0, 1, 2, 3)
_REPLICATED_BYTES_PER_PARAM = {0: 16, 1: 4, 2: 2, 3: 0}  # what every GPU holds whole at each stage


def zero_bytes_per_gpu(params: float, stage: int, num_gpus: int) -> float:
    """Model-state bytes per GPU (weights, gradients, Adam states) under ZeRO `stage` on `num_gpus`."""
    weights, grads, optimizer = 2 * params, 2 * params, 12 * params
    if stage >= 1:
        optimizer /= num_gpus
    if stage >= 2:
        grads /= num_gpus
    if stage >= 3:
        weights /= num_gpus
    return weights + grads + optimizer


def zero_min_gpus(params: float, stage: int, usable_bytes: float) -> int | None:
    """Smallest data-parallel GPU count whose model states fit in `usable_bytes` each; None if none does."""
    replicated = _REPLICATED_BYTES_PER_PARAM[stage] * params
    sharded = 16 * params - replicated
    if replicated >= usable_bytes:
        return None
    if sharded == 0:
        return 1
    return max(1, math.ceil(sharded / (usable_bytes - replicated)))


def memory_plan(params: float, gpu: GPU, num_gpus: int, headroom: float) -> list[dict[str, Any]]:
    """Per ZeRO stage: GB per GPU on `num_gpus`, the fewest `gpu`s that fit, and GB per GPU there."""
    usable = gpu.memory_gb * 1e9 * (1 - headroom)
    plan = []
    for stage in ZERO_STAGES:
        min_gpus = zero_min_gpus(params, stage, usable)
        plan.append(
            {
                "zero_stage": stage,
                "gb_per_gpu_on_cluster": zero_bytes_per_gpu(params, stage, num_gpus) / 1e9,
                "min_gpus": min_gpus,
                "gb_per_gpu_at_min": zero_bytes_per_gpu(params, stage, min_gpus) / 1e9 if min_gpus else None,
            }
        )
    return plan
