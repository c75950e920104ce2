"""The plan as plain data: size, tokens and FLOPs, then cost on every GPU, memory per GPU and the rule of thumb."""

from __future__ import annotations

from typing import Any

from hfscratch.core.hardware import GPUS
from hfscratch.plan.arguments import PlanArguments, parse_count
from hfscratch.plan.cost import cost_on
from hfscratch.plan.memory import memory_plan
from hfscratch.plan.scaling import (
    CHINCHILLA_SOURCE,
    chinchilla_table,
    compute_optimal_tokens,
    reference_table,
    rule_of_thumb,
)
from hfscratch.plan.sizing import resolve_size


def make_plan(args: PlanArguments) -> dict[str, Any]:
    """Everything `hfscratch plan` prints for one model, as plain data (the --json output)."""
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
        "memory": {
            "gpu": args.gpu,
            "headroom": args.memory_headroom,
            "stages": memory_plan(n, GPUS[args.gpu], args.num_gpus, args.memory_headroom),
        },
        "rule_of_thumb": rule_of_thumb(n),
    }


def make_tables(args: PlanArguments) -> dict[str, Any]:
    """`--table`: the compute-optimal table and the reference runs, and the plan too when a size is given."""
    result: dict[str, Any] = {"chinchilla": chinchilla_table(), "reference_runs": reference_table()}
    if args.sized_by():
        result["plan"] = make_plan(args)
    return result
