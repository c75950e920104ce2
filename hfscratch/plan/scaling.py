"""How big and how long: the Chinchilla frontier, published runs to compare against, the seed's rule of thumb."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hfscratch.core.hardware import GPUS

# N_opt(C) = CHINCHILLA_A * C ** CHINCHILLA_EXPONENT, a least-squares fit in log space to the nine rows of
# Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models", Table 3 (Approach 1: the paper
# reports an exponent of 0.50). tests/test_plan.py refits it from the table and checks these constants.
# D_opt follows from C = 6 N D. At 1B parameters the fit gives ~20 tokens per parameter, at 1T ~21.
CHINCHILLA_A = 0.09916
CHINCHILLA_EXPONENT = 0.4981
CHINCHILLA_SOURCE = "Hoffmann et al. 2022 (Chinchilla), Table 3; fit N_opt = 0.0992 * C^0.498"
CHINCHILLA_TABLE_PARAMS = (400e6, 1e9, 10e9, 67e9, 175e9, 280e9, 520e9, 1e12, 10e12)


def compute_optimal_params(flops: float) -> float:
    """Parameter count that minimises loss for a training budget of `flops`."""
    return CHINCHILLA_A * flops**CHINCHILLA_EXPONENT


def compute_optimal_flops(params: float) -> float:
    """Training budget for which `params` is the compute-optimal size (the fit, inverted)."""
    return (params / CHINCHILLA_A) ** (1 / CHINCHILLA_EXPONENT)


def compute_optimal_tokens(params: float) -> float:
    return compute_optimal_flops(params) / (6 * params)


def chinchilla_table() -> list[dict[str, float]]:
    """The fit at the sizes of the paper's Table 3 (what `plan --table` prints)."""
    rows = []
    for n in CHINCHILLA_TABLE_PARAMS:
        flops = compute_optimal_flops(n)
        rows.append({"params": n, "flops": flops, "tokens": flops / (6 * n)})
    return rows


@dataclass(frozen=True)
class ReferenceRun:
    name: str
    params: float
    tokens: float
    gpu: str  # a key of core.hardware.GPUS
    gpu_hours: float
    source: str

    @property
    def flops(self) -> float:
        return 6 * self.params * self.tokens

    @property
    def implied_mfu(self) -> float:
        return self.flops / (self.gpu_hours * 3600 * GPUS[self.gpu].peak_tflops * 1e12)


REFERENCE_RUNS = (
    ReferenceRun("Llama 2 7B", 6.74e9, 2.0e12, "A100-80GB", 184_320, "Touvron et al. 2023, Llama 2, Table 2"),
    ReferenceRun("Llama 2 13B", 13.0e9, 2.0e12, "A100-80GB", 368_640, "Touvron et al. 2023, Llama 2, Table 2"),
    ReferenceRun("Llama 2 70B", 69.0e9, 2.0e12, "A100-80GB", 1_720_320, "Touvron et al. 2023, Llama 2, Table 2"),
    ReferenceRun("Llama 1 65B", 65.2e9, 1.4e12, "A100-80GB", 1_022_362, "Touvron et al. 2023, LLaMA, Table 15"),
    ReferenceRun("BloombergGPT 50B", 50.6e9, 569e9, "A100-40GB", 1_300_000, "Wu et al. 2023, BloombergGPT, sec. 3"),
    ReferenceRun("Llama 3.1 8B", 8.03e9, 15e12, "H100", 1_460_000, "Meta 2024, Llama 3.1 model card"),
    ReferenceRun("Llama 3.1 70B", 70.6e9, 15e12, "H100", 7_000_000, "Meta 2024, Llama 3.1 model card"),
    ReferenceRun("Llama 3.1 405B", 405.9e9, 15.6e12, "H100", 30_840_000, "Meta 2024, Llama 3.1 model card"),
)
# GPT-3 175B (Brown et al. 2020) trained on 300B tokens, 3.14e23 FLOPs, on V100s whose GPU-hours were not
# published, so no MFU can be implied; its compute is in the Chinchilla table's neighbourhood (175B row).


def reference_table() -> list[dict[str, Any]]:
    return [{**asdict(run), "flops": run.flops, "implied_mfu": run.implied_mfu} for run in REFERENCE_RUNS]


# The rule of thumb the kit started from: Shaw Talebi, "How to Build an LLM from Scratch" (Towards Data
# Science, 2023), scaled from Llama 2's published A100-hours (~100k GPU-hours per 10B parameters).
RULE_OF_THUMB = {
    "gpu_hours_per_param": 100_000 / 10e9,
    "rent_usd_per_gpu_hour": (1.0, 2.0),  # A100
    "mwh_per_param": 1_000 / 100e9,
    "usd_per_mwh": 100.0,
    "cluster": (1_000, 10_000),  # A100s at $10,000 each
    "source": "Talebi 2023, 'How to Build an LLM from Scratch', from Llama 2's A100-hours",
}


def rule_of_thumb(params: float) -> dict[str, Any]:
    """The rule's GPU-hours, rent, energy and cluster price for a model of `params` (tokens play no part)."""
    r = RULE_OF_THUMB
    hours = params * r["gpu_hours_per_param"]
    mwh = params * r["mwh_per_param"]
    count, price = r["cluster"]
    return {
        "gpu_hours": hours,
        "rent_usd": (hours * r["rent_usd_per_gpu_hour"][0], hours * r["rent_usd_per_gpu_hour"][1]),
        "energy_mwh": mwh,
        "energy_usd": mwh * r["usd_per_mwh"],
        "buy_cluster_usd": count * price,
        "source": r["source"],
    }
