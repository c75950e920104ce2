"""The model a plan is for: a given count, a preset or config counted exactly, a pretrain recipe's model, or the
compute-optimal size for a budget.

Counting a preset, a config or a recipe's model needs torch and the model code, and reading a pretrain recipe
needs training's argument classes: those are imported here only when such an option is used, so that
`hfscratch plan --params 1B` answers without importing torch or transformers.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from hfscratch.core.formatting import sci
from hfscratch.core.hardware import GPUS
from hfscratch.core.recipes import RecipeError, read_recipe
from hfscratch.plan.arguments import PlanArguments, parse_count
from hfscratch.plan.cost import rent_range
from hfscratch.plan.scaling import compute_optimal_params


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
    from hfscratch.models.hfscratch import HFScratchConfig
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


def model_size_from_preset_or_config(args: PlanArguments) -> ModelSize:
    """--preset with --size, or --model_config, counted exactly."""
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


def resolve_size(args: PlanArguments) -> ModelSize:
    """The model to plan and where its size came from (given, counted, or compute-optimal for a budget)."""
    if args.params:
        n = parse_count(args.params, "params")
        return ModelSize(n, "given", 6 * n)
    if args.preset or args.model_config:
        return model_size_from_preset_or_config(args)
    if args.pretrain_recipe:
        return model_size_from_pretrain_recipe(args.pretrain_recipe, args.seq_len)
    gpu = GPUS[args.gpu]
    if args.flops:
        budget, why = args.flops, f"compute-optimal for {sci(args.flops)} FLOPs"
    else:
        hours = args.gpu_hours or args.budget_usd / (sum(rent_range(args, gpu)) / 2)
        budget = hours * 3600 * gpu.peak_tflops * 1e12 * args.mfu
        why = f"compute-optimal for {hours:,.0f} {gpu.name}-hours at {args.mfu:.0%} MFU"
    n = compute_optimal_params(budget)
    return ModelSize(n, why, 6 * n)
