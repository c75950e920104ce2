"""Step 0: how big, how much data, how long, how much money and energy.

`hfscratch plan` answers the first questions of "should we train our own LLM?" with arithmetic on published
numbers, each with its source:

- compute-optimal size and tokens from the Chinchilla frontier (Hoffmann et al. 2022), fitted in `scaling`;
- training FLOPs ~ 6ND (Kaplan et al. 2020), plus the attention term of PaLM's appendix B when the model's
  shape is known (12 * layers * attention width * sequence length per token), in `sizing`;
- GPU-hours at a stated model FLOPs utilisation (MFU) of a GPU's dense bf16 peak (`hfscratch.core.hardware`),
  rent and purchase cost, energy (TDP x hours x PUE) and its price, in `cost`;
- model-state memory per GPU under DeepSpeed ZeRO stages 0-3 (Rajbhandari et al. 2020), in `memory`.

Published runs (Llama 2, Llama 3.1, BloombergGPT, ...) are shown with the MFU their GPU-hours imply, so a
user can judge whether the assumed MFU is realistic. `make_plan` returns everything as plain data, `render`
turns it into text, and `cli` is the command. Nothing here imports torch unless a model is counted exactly.
"""

from hfscratch.core.formatting import dollars, duration, format_table, human, num, sci
from hfscratch.core.hardware import GPU, GPUS, GPUName, match_gpu
from hfscratch.plan.arguments import SIZE_OPTIONS, PlanArguments, parse_count
from hfscratch.plan.cost import cost_on, gpu_hours, gpu_price, rent_range
from hfscratch.plan.memory import ZERO_STAGES, memory_plan, zero_bytes_per_gpu, zero_min_gpus
from hfscratch.plan.planner import make_plan, make_tables
from hfscratch.plan.render import render_plan, render_tables
from hfscratch.plan.scaling import (
    CHINCHILLA_A,
    CHINCHILLA_EXPONENT,
    CHINCHILLA_SOURCE,
    REFERENCE_RUNS,
    RULE_OF_THUMB,
    ReferenceRun,
    chinchilla_table,
    compute_optimal_flops,
    compute_optimal_params,
    compute_optimal_tokens,
    reference_table,
    rule_of_thumb,
)
from hfscratch.plan.sizing import ModelSize, model_size_from_config, model_size_from_pretrain_recipe, resolve_size

__all__ = [
    "CHINCHILLA_A",
    "CHINCHILLA_EXPONENT",
    "CHINCHILLA_SOURCE",
    "GPU",
    "GPUS",
    "REFERENCE_RUNS",
    "RULE_OF_THUMB",
    "SIZE_OPTIONS",
    "ZERO_STAGES",
    "GPUName",
    "ModelSize",
    "PlanArguments",
    "ReferenceRun",
    "chinchilla_table",
    "compute_optimal_flops",
    "compute_optimal_params",
    "compute_optimal_tokens",
    "cost_on",
    "dollars",
    "duration",
    "format_table",
    "gpu_hours",
    "gpu_price",
    "human",
    "make_plan",
    "make_tables",
    "match_gpu",
    "memory_plan",
    "model_size_from_config",
    "model_size_from_pretrain_recipe",
    "num",
    "parse_count",
    "reference_table",
    "render_plan",
    "render_tables",
    "rent_range",
    "resolve_size",
    "rule_of_thumb",
    "sci",
    "zero_bytes_per_gpu",
    "zero_min_gpus",
]
