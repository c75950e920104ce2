"""What a FLOP budget costs on a GPU: GPU-hours at an assumed MFU, wall clock, rent, purchase and energy."""

from __future__ import annotations

from typing import Any

from hfscratch.core.hardware import GPU
from hfscratch.plan.arguments import PlanArguments


def rent_range(args: PlanArguments, gpu: GPU) -> tuple[float, float]:
    """The user's price range for their --gpu, the assumed market range for the others."""
    if args.rent_usd_per_gpu_hour and gpu.name == args.gpu:
        low, high = args.rent_usd_per_gpu_hour
        return low, high
    return gpu.rent_usd_per_hour


def gpu_price(args: PlanArguments, gpu: GPU) -> float:
    """The user's purchase price for their --gpu, the assumed one for the others."""
    return args.gpu_price_usd if args.gpu_price_usd and gpu.name == args.gpu else gpu.price_usd


def gpu_hours(flops: float, gpu: GPU, mfu: float) -> float:
    """Hours of one `gpu` running at `mfu` of its dense bf16 peak to do `flops`."""
    return flops / (gpu.peak_tflops * 1e12 * mfu) / 3600


def cost_on(gpu: GPU, flops: float, args: PlanArguments) -> dict[str, Any]:
    """GPU-hours, wall clock, rent, purchase and energy of `flops` on `gpu` at the assumed MFU.

    Energy is board power x hours x PUE: the GPUs' TDP, scaled up by the data centre's overhead.
    """
    hours = gpu_hours(flops, gpu, args.mfu)
    low, high = rent_range(args, gpu)
    mwh = hours * gpu.tdp_watts / 1e6 * args.pue
    return {
        "gpu": gpu.name,
        "gpu_hours": hours,
        "hours_on_cluster": hours / args.num_gpus,
        "rent_usd": (hours * low, hours * high),
        "buy_cluster_usd": args.num_gpus * gpu_price(args, gpu),
        "energy_mwh": mwh,
        "energy_usd": mwh * args.usd_per_mwh,
    }
