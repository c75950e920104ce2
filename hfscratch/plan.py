"""Step 0: how big, how much data, how long, how much money and energy.

`hfscratch plan` answers the first questions of "should we train our own LLM?" with arithmetic on published
numbers, each with its source:

- compute-optimal size and tokens from the Chinchilla frontier (Hoffmann et al. 2022), fitted below;
- training FLOPs ~ 6ND (Kaplan et al. 2020), plus the attention term of PaLM's appendix B when the model's
  shape is known (12 * layers * attention width * sequence length per token);
- GPU-hours at a stated model FLOPs utilisation (MFU) of a GPU's dense bf16 peak;
- rent and purchase cost, energy (TDP x hours x PUE) and its price;
- model-state memory per GPU under DeepSpeed ZeRO stages 0-3 (Rajbhandari et al. 2020).

Published runs (Llama 2, Llama 3.1, BloombergGPT, ...) are shown with the MFU their GPU-hours imply, so a
user can judge whether the assumed MFU is realistic.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from hfscratch.core.recipes import RecipeError, parse_recipe

# -- Hardware --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GPU:
    name: str
    peak_tflops: float  # dense bf16 tensor-core peak, from the data sheet (no sparsity)
    tdp_watts: float  # board power (SXM modules)
    memory_gb: float
    rent_usd_per_hour: tuple[float, float]  # assumed market range; override with --rent_usd_per_gpu_hour
    price_usd: float  # assumed purchase price of one GPU; override with --gpu_price_usd
    source: str


GPUS: dict[str, GPU] = {
    gpu.name: gpu
    for gpu in (
        # The A100 price and rent are the seed's rule of thumb (see RULE_OF_THUMB); the others are assumptions.
        GPU("A100-40GB", 312, 400, 40, (1.0, 2.0), 10_000, "NVIDIA A100 Tensor Core GPU data sheet (SXM4)"),
        GPU("A100-80GB", 312, 400, 80, (1.0, 2.0), 10_000, "NVIDIA A100 Tensor Core GPU data sheet (SXM4)"),
        GPU("H100", 989, 700, 80, (2.0, 3.5), 25_000, "NVIDIA H100 Tensor Core GPU data sheet (SXM5)"),
        GPU("H200", 989, 700, 141, (2.5, 4.5), 30_000, "NVIDIA H200 Tensor Core GPU data sheet (SXM)"),
        GPU("B200", 2250, 1000, 180, (4.0, 7.0), 40_000, "NVIDIA HGX B200 data sheet (per GPU, dense)"),
    )
}
GPUName = Literal["A100-40GB", "A100-80GB", "H100", "H200", "B200"]

# -- Compute-optimal frontier ----------------------------------------------------------------------------

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


# -- Published runs to compare against -------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceRun:
    name: str
    params: float
    tokens: float
    gpu: str
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

# -- Memory: DeepSpeed ZeRO ------------------------------------------------------------------------------

# Mixed-precision Adam keeps 16 bytes per parameter (ZeRO paper, sec. 3.1): bf16 weights (2) and gradients
# (2), and fp32 master weights, momentum and variance (12). Stage 1 partitions the optimizer states across
# the data-parallel GPUs, stage 2 the gradients too, stage 3 the weights too.
ZERO_STAGES = (0, 1, 2, 3)


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
    replicated = {0: 16, 1: 4, 2: 2, 3: 0}[stage] * params  # the part every GPU holds whole
    sharded = 16 * params - replicated
    if replicated >= usable_bytes:
        return None
    if sharded == 0:
        return 1
    return max(1, math.ceil(sharded / (usable_bytes - replicated)))


# -- Arguments -------------------------------------------------------------------------------------------

SIZE_OPTIONS = ("params", "preset", "model_config", "pretrain_recipe", "flops", "gpu_hours", "budget_usd")


@dataclass
class PlanArguments:
    """What to size (give one), the run, the hardware and prices, and the output format."""

    # What to size: exactly one of these, unless --table.
    params: str | None = field(default=None, metadata={"help": "Parameter count, e.g. 1B, 125M, 7e9."})
    preset: str | None = field(
        default=None, metadata={"help": "Model preset (gpt2, llama, ...) with --size: counts parameters exactly."}
    )
    size: str = field(default="1b", metadata={"help": "Preset size (tiny, 125m, 350m, 1b, 7b) for --preset."})
    model_config: str | None = field(default=None, metadata={"help": "A model folder or config.json to count exactly."})
    pretrain_recipe: str | None = field(
        default=None,
        metadata={"help": "A pretrain recipe (recipes/pretrain/*.yaml): its model counted exactly, its train_tokens."},
    )
    flops: float | None = field(default=None, metadata={"help": "Compute budget in FLOPs, e.g. 1e23."})
    gpu_hours: float | None = field(default=None, metadata={"help": "Compute budget in GPU-hours of --gpu."})
    budget_usd: float | None = field(
        default=None, metadata={"help": "Compute budget in dollars of rented --gpu (at the range's midpoint)."}
    )
    # The run.
    tokens: str | None = field(
        default=None, metadata={"help": "Training tokens, e.g. 2T (default: compute-optimal for the size)."}
    )
    seq_len: int = field(default=2048, metadata={"help": "Sequence length, for the attention FLOPs term."})
    # Hardware and prices.
    gpu: GPUName = field(default="A100-80GB", metadata={"help": "GPU for the memory plan and budget conversions."})
    mfu: float = field(default=0.4, metadata={"help": "Model FLOPs utilisation assumed, as a fraction of peak."})
    num_gpus: int = field(default=1000, metadata={"help": "Cluster size: wall-clock time and purchase cost."})
    rent_usd_per_gpu_hour: list[float] | None = field(
        default=None, metadata={"help": "Rental price range LOW HIGH in $/GPU-hour of --gpu (default: per GPU)."}
    )
    gpu_price_usd: float | None = field(
        default=None, metadata={"help": "Purchase price of one --gpu (default: per GPU)."}
    )
    pue: float = field(default=1.1, metadata={"help": "Data-centre power usage effectiveness."})
    usd_per_mwh: float = field(default=100.0, metadata={"help": "Electricity price in $/MWh."})
    memory_headroom: float = field(
        default=0.25, metadata={"help": "Fraction of GPU memory left for activations, buffers and fragmentation."}
    )
    # Output.
    table: bool = field(default=False, metadata={"help": "Print the compute-optimal table and reference runs."})
    json: bool = field(default=False, metadata={"help": "Print JSON instead of tables."})

    def __post_init__(self) -> None:
        given = self.sized_by()
        options = ", ".join(f"--{k}" for k in SIZE_OPTIONS)
        if len(given) > 1:
            raise RecipeError(f"give one of {options}; got {' and '.join(f'--{k}' for k in given)}")
        if not given and not self.table:
            raise RecipeError(f"nothing to plan: give one of {options} (e.g. --params 1B), or --table")
        for key in ("flops", "gpu_hours", "budget_usd"):
            if getattr(self, key) is not None and getattr(self, key) <= 0:
                raise RecipeError(f"--{key} must be positive, got {getattr(self, key)}")
        if not 0 < self.mfu <= 1:
            raise RecipeError(f"--mfu must be a fraction in (0, 1], got {self.mfu}")
        if not 0 <= self.memory_headroom < 1:
            raise RecipeError(f"--memory_headroom must be a fraction in [0, 1), got {self.memory_headroom}")
        if self.num_gpus < 1 or self.seq_len < 1:
            raise RecipeError("--num_gpus and --seq_len must be at least 1")
        if self.rent_usd_per_gpu_hour is not None and (
            len(self.rent_usd_per_gpu_hour) != 2
            or not 0 < self.rent_usd_per_gpu_hour[0] <= self.rent_usd_per_gpu_hour[1]
        ):
            raise RecipeError(
                f"--rent_usd_per_gpu_hour takes LOW HIGH with 0 < LOW <= HIGH, got {self.rent_usd_per_gpu_hour}"
            )

    def sized_by(self) -> list[str]:
        """The size options given (a valid plan has at most one)."""
        return [key for key in SIZE_OPTIONS if getattr(self, key)]


# -- Numbers in and out ----------------------------------------------------------------------------------

_SUFFIXES = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}


def parse_count(text: str, what: str) -> float:
    """'1B' -> 1e9, '125m' -> 1.25e8, '7e9' -> 7e9; a RecipeError naming `what` otherwise."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgt]?)\s*", str(text), re.IGNORECASE)
    if not match or float(match[1]) <= 0:
        raise RecipeError(f"--{what}: expected a positive count such as 1B, 125M or 7e9, got {text!r}")
    return float(match[1]) * _SUFFIXES[match[2].lower()]


def human(x: float, unit: str = "") -> str:
    """1.2e9 -> '1.2B', 2.09e12 -> '2.09T' (3 significant figures, K/M/B/T suffixes)."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}{unit}"
    return f"{x:.3g}{unit}"


def dollars(x: float) -> str:
    return f"${x:,.0f}" if x < 1e6 else f"${x / 1e6:,.2f}M"


def num(x: float) -> str:
    """3 significant figures below 1,000, thousands separators above: 0.16, 53.3, 1,230."""
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def sci(x: float) -> str:
    """1.2345e20 -> '1.23e20'."""
    return f"{x:.3g}".replace("e+", "e")


def duration(hours: float) -> str:
    return f"{hours:.3g} h" if hours < 48 else f"{hours / 24:,.3g} days"


def format_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], align: str | None = None) -> str:
    """A plain-text table; `align` has one letter per column, l or r (default: first left, the rest right)."""
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [list(map(str, headers))] + [list(map(str, row)) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# -- The plan --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSize:
    params: float
    source: str
    flops_per_token: float  # 6N, plus the attention term when the shape is known
    flops_formula: str = "6ND"
    tokens: float | None = None  # fixed by the source (a recipe's train_tokens), else compute-optimal


def model_size_from_config(config: Any, seq_len: int, source: str, tokens: float | None = None) -> ModelSize:
    """Exact parameter count and FLOPs per token of an `HFScratchConfig`, without allocating weights."""
    import torch

    from hfscratch.models.hfscratch import HFScratchForCausalLM

    with torch.device("meta"):
        model = HFScratchForCausalLM(config)
    formula = f"(6N + 12*L*d_attn*{seq_len}) * D"
    return ModelSize(model.num_parameters(), source, model.flops_per_token(seq_len), formula, tokens)


def model_size_from_pretrain_recipe(path: str, seq_len: int) -> ModelSize:
    """The model a pretrain recipe builds (preset, size, overrides, or the model it continues) and its tokens."""
    from dataclasses import fields

    from hfscratch.models.hfscratch import HFScratchConfig
    from hfscratch.core.recipes import read_recipe
    from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments

    values = read_recipe(path, ModelArguments, DataArguments, PretrainingArguments)
    model_args = ModelArguments(**{f.name: values[f.name] for f in fields(ModelArguments) if f.name in values})
    try:
        if model_args.model_name_or_path:
            config = HFScratchConfig.from_pretrained(model_args.model_name_or_path)
        else:
            config = HFScratchConfig.from_preset(
                model_args.model_preset, size=model_args.model_size, **model_args.overrides()
            )
    except (OSError, ValueError) as exc:
        raise RecipeError(f"{path}: the model it describes cannot be built ({exc})") from None
    return model_size_from_config(config, seq_len, f"{path}, counted exactly", values.get("train_tokens"))


def resolve_size(args: PlanArguments) -> ModelSize:
    """The model to plan and where its size came from (given, counted, or compute-optimal for a budget)."""
    gpu = GPUS[args.gpu]
    if args.params:
        n = parse_count(args.params, "params")
        return ModelSize(n, "given", 6 * n)
    if args.preset or args.model_config:
        from hfscratch.models.hfscratch import HFScratchConfig

        if args.preset:
            try:
                config = HFScratchConfig.from_preset(args.preset, size=args.size)
            except (KeyError, ValueError) as exc:
                raise RecipeError(f"--preset {args.preset} --size {args.size}: {exc}") from None
            source = f"preset {args.preset}/{args.size}, counted exactly"
        else:
            try:
                config = HFScratchConfig.from_pretrained(args.model_config)
            except (OSError, ValueError) as exc:
                raise RecipeError(
                    f"--model_config {args.model_config}: not a model folder or config.json ({exc})"
                ) from None
            source = f"{args.model_config}, counted exactly"
        return model_size_from_config(config, args.seq_len, source)
    if args.pretrain_recipe:
        return model_size_from_pretrain_recipe(args.pretrain_recipe, args.seq_len)
    if args.flops:
        budget, why = args.flops, f"compute-optimal for {sci(args.flops)} FLOPs"
    else:
        hours = args.gpu_hours or args.budget_usd / (sum(rent_range(args, gpu)) / 2)
        budget = hours * 3600 * gpu.peak_tflops * 1e12 * args.mfu
        why = f"compute-optimal for {hours:,.0f} {gpu.name}-hours at {args.mfu:.0%} MFU"
    n = compute_optimal_params(budget)
    return ModelSize(n, why, 6 * n)


def rent_range(args: PlanArguments, gpu: GPU) -> tuple[float, float]:
    """The user's price range for their --gpu, the assumed market range for the others."""
    if args.rent_usd_per_gpu_hour and gpu.name == args.gpu:
        return tuple(args.rent_usd_per_gpu_hour)
    return gpu.rent_usd_per_hour


def gpu_price(args: PlanArguments, gpu: GPU) -> float:
    return args.gpu_price_usd if args.gpu_price_usd and gpu.name == args.gpu else gpu.price_usd


def cost_on(gpu: GPU, flops: float, args: PlanArguments) -> dict[str, Any]:
    """GPU-hours, wall clock, rent, purchase and energy of `flops` on `gpu` at the assumed MFU."""
    hours = flops / (gpu.peak_tflops * 1e12 * args.mfu) / 3600
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


def memory_plan(params: float, args: PlanArguments) -> list[dict[str, Any]]:
    gpu = GPUS[args.gpu]
    usable = gpu.memory_gb * 1e9 * (1 - args.memory_headroom)
    plan = []
    for stage in ZERO_STAGES:
        min_gpus = zero_min_gpus(params, stage, usable)
        plan.append(
            {
                "zero_stage": stage,
                "gb_per_gpu_on_cluster": zero_bytes_per_gpu(params, stage, args.num_gpus) / 1e9,
                "min_gpus": min_gpus,
                "gb_per_gpu_at_min": zero_bytes_per_gpu(params, stage, min_gpus) / 1e9 if min_gpus else None,
            }
        )
    return plan


def rule_of_thumb(params: float) -> dict[str, Any]:
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


def make_plan(args: PlanArguments) -> dict[str, Any]:
    """Everything `hfscratch plan` prints, as plain data (the --json output)."""
    size = resolve_size(args)
    n = size.params
    tokens = parse_count(args.tokens, "tokens") if args.tokens else size.tokens or compute_optimal_tokens(n)
    flops = size.flops_per_token * tokens
    return {
        "params": n,
        "params_source": size.source,
        "tokens": tokens,
        "tokens_source": "given" if args.tokens else "the recipe's train_tokens" if size.tokens else CHINCHILLA_SOURCE,
        "tokens_per_param": tokens / n,
        "flops": flops,
        "flops_formula": size.flops_formula,
        "assumptions": {"mfu": args.mfu, "num_gpus": args.num_gpus, "pue": args.pue, "usd_per_mwh": args.usd_per_mwh},
        "compute": [cost_on(gpu, flops, args) for gpu in GPUS.values()],
        "memory": {"gpu": args.gpu, "headroom": args.memory_headroom, "stages": memory_plan(n, args)},
        "rule_of_thumb": rule_of_thumb(n),
    }


def chinchilla_table() -> list[dict[str, float]]:
    rows = []
    for n in CHINCHILLA_TABLE_PARAMS:
        flops = compute_optimal_flops(n)
        rows.append({"params": n, "flops": flops, "tokens": flops / (6 * n)})
    return rows


def reference_table() -> list[dict[str, Any]]:
    return [{**asdict(run), "flops": run.flops, "implied_mfu": run.implied_mfu} for run in REFERENCE_RUNS]


# -- Rendering -------------------------------------------------------------------------------------------


def render_plan(plan: dict[str, Any]) -> str:
    a = plan["assumptions"]
    out = [
        f"Model      {human(plan['params'])} parameters ({plan['params_source']})",
        f"Data       {human(plan['tokens'])} tokens, {plan['tokens_per_param']:.1f} per parameter "
        f"({plan['tokens_source']})",
        f"Compute    {sci(plan['flops'])} FLOPs ({plan['flops_formula']})",
        "",
        f"Cost at {a['mfu']:.0%} MFU on a {a['num_gpus']:,}-GPU cluster "
        f"(energy = TDP x hours x PUE {a['pue']}, at ${a['usd_per_mwh']:.0f}/MWh):",
        format_table(
            [
                (
                    c["gpu"],
                    f"{c['gpu_hours']:,.0f}",
                    duration(c["hours_on_cluster"]),
                    f"{dollars(c['rent_usd'][0])} - {dollars(c['rent_usd'][1])}",
                    dollars(c["buy_cluster_usd"]),
                    num(c["energy_mwh"]),
                    dollars(c["energy_usd"]),
                )
                for c in plan["compute"]
            ],
            ["GPU", "GPU-hours", "wall clock", "rent", "buy cluster", "MWh", "energy $"],
        ),
        "",
    ]
    mem = plan["memory"]
    out += [
        f"Memory for model states on {mem['gpu']} (bf16 weights and grads + fp32 Adam = 16 bytes/param; "
        f"{mem['headroom']:.0%} kept for activations):",
        format_table(
            [
                (
                    f"ZeRO-{m['zero_stage']}",
                    num(m["gb_per_gpu_on_cluster"]),
                    m["min_gpus"] if m["min_gpus"] else "does not fit",
                    num(m["gb_per_gpu_at_min"]) if m["min_gpus"] else "-",
                )
                for m in mem["stages"]
            ],
            ["stage", f"GB/GPU on {a['num_gpus']:,}", "fewest GPUs", "GB/GPU there"],
        ),
        "",
    ]
    r = plan["rule_of_thumb"]
    per_billion = [run.gpu_hours / run.params * 1e9 for run in REFERENCE_RUNS if run.name.startswith("Llama 2")]
    llama2 = min(per_billion), max(per_billion)
    ours = next(c for c in plan["compute"] if c["gpu"] == "A100-80GB")
    out += [
        f"Against the rule of thumb ({r['source']}):",
        format_table(
            [
                ("A100-hours", f"{ours['gpu_hours']:,.0f}", f"{r['gpu_hours']:,.0f}"),
                (
                    "rent",
                    f"{dollars(ours['rent_usd'][0])} - {dollars(ours['rent_usd'][1])}",
                    f"{dollars(r['rent_usd'][0])} - {dollars(r['rent_usd'][1])}",
                ),
                ("energy MWh", num(ours["energy_mwh"]), num(r["energy_mwh"])),
                ("energy $", dollars(ours["energy_usd"]), dollars(r["energy_usd"])),
                ("buy 1,000 A100s", "-", dollars(r["buy_cluster_usd"])),
            ],
            ["", "this plan", "rule of thumb"],
        ),
        f"The rule is linear in parameters and ignores tokens and MFU; Llama 2's own runs (2T tokens each) took "
        f"{llama2[0]:,.0f}-{llama2[1]:,.0f} A100-hours per billion parameters, against the rule's "
        f"{RULE_OF_THUMB['gpu_hours_per_param'] * 1e9:,.0f} (see --table).",
    ]
    return "\n".join(out)


def render_tables() -> str:
    chinchilla = format_table(
        [
            (human(r["params"]), sci(r["flops"]), human(r["tokens"]), f"{r['tokens'] / r['params']:.1f}")
            for r in chinchilla_table()
        ],
        ["params", "FLOPs", "tokens", "tokens/param"],
    )
    refs = format_table(
        [
            (
                r["name"],
                human(r["params"]),
                human(r["tokens"]),
                r["gpu"],
                f"{r['gpu_hours']:,.0f}",
                sci(r["flops"]),
                f"{r['implied_mfu']:.0%}",
                r["source"],
            )
            for r in reference_table()
        ],
        ["run", "params", "tokens", "GPU", "GPU-hours", "FLOPs (6ND)", "MFU", "source"],
    )
    return (
        f"Compute-optimal models ({CHINCHILLA_SOURCE}):\n{chinchilla}\n\n"
        f"Published runs and the MFU their GPU-hours imply (6ND / (GPU-hours x dense bf16 peak)):\n{refs}"
    )


def main(argv: Sequence[str]) -> int:
    (args,) = parse_recipe(
        [PlanArguments],
        argv,
        prog="hfscratch plan",
        description="Step 0: size a training run: parameters, tokens, FLOPs, GPU-hours, cost, energy, memory.",
    )
    if args.table:
        result: dict[str, Any] = {"chinchilla": chinchilla_table(), "reference_runs": reference_table()}
        if args.sized_by():
            result["plan"] = make_plan(args)
        text = render_tables() + ("\n\n" + render_plan(result["plan"]) if "plan" in result else "")
    else:
        result = make_plan(args)
        text = render_plan(result)
    print(json.dumps(result, indent=2) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
