"""The plan as text for a terminal: the cost table, the memory table, the rule of thumb, and `--table`."""

from __future__ import annotations

from typing import Any

from hfscratch.core.formatting import dollars, duration, format_table, human, num, sci
from hfscratch.plan.scaling import CHINCHILLA_SOURCE, REFERENCE_RUNS, RULE_OF_THUMB


def _rent(low_high: tuple[float, float]) -> str:
    return f"{dollars(low_high[0])} - {dollars(low_high[1])}"


def render_cost(plan: dict[str, Any]) -> str:
    a = plan["assumptions"]
    table = format_table(
        [
            (
                c["gpu"],
                f"{c['gpu_hours']:,.0f}",
                duration(c["hours_on_cluster"]),
                _rent(c["rent_usd"]),
                dollars(c["buy_cluster_usd"]),
                num(c["energy_mwh"]),
                dollars(c["energy_usd"]),
            )
            for c in plan["compute"]
        ],
        ["GPU", "GPU-hours", "wall clock", "rent", "buy cluster", "MWh", "energy $"],
    )
    return (
        f"Cost at {a['mfu']:.0%} MFU on a {a['num_gpus']:,}-GPU cluster "
        f"(energy = TDP x hours x PUE {a['pue']}, at ${a['usd_per_mwh']:.0f}/MWh):\n{table}"
    )


def render_memory(plan: dict[str, Any]) -> str:
    mem, a = plan["memory"], plan["assumptions"]
    table = format_table(
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
    )
    return (
        f"Memory for model states on {mem['gpu']} (bf16 weights and grads + fp32 Adam = 16 bytes/param; "
        f"{mem['headroom']:.0%} kept for activations):\n{table}"
    )


def render_rule_of_thumb(plan: dict[str, Any]) -> str:
    r = plan["rule_of_thumb"]
    per_billion = [run.gpu_hours / run.params * 1e9 for run in REFERENCE_RUNS if run.name.startswith("Llama 2")]
    ours = next(c for c in plan["compute"] if c["gpu"] == "A100-80GB")
    table = format_table(
        [
            ("A100-hours", f"{ours['gpu_hours']:,.0f}", f"{r['gpu_hours']:,.0f}"),
            ("rent", _rent(ours["rent_usd"]), _rent(r["rent_usd"])),
            ("energy MWh", num(ours["energy_mwh"]), num(r["energy_mwh"])),
            ("energy $", dollars(ours["energy_usd"]), dollars(r["energy_usd"])),
            ("buy 1,000 A100s", "-", dollars(r["buy_cluster_usd"])),
        ],
        ["", "this plan", "rule of thumb"],
    )
    return (
        f"Against the rule of thumb ({r['source']}):\n{table}\n"
        f"The rule is linear in parameters and ignores tokens and MFU; Llama 2's own runs (2T tokens each) took "
        f"{min(per_billion):,.0f}-{max(per_billion):,.0f} A100-hours per billion parameters, against the rule's "
        f"{RULE_OF_THUMB['gpu_hours_per_param'] * 1e9:,.0f} (see --table)."
    )


def render_plan(plan: dict[str, Any]) -> str:
    """The plan `make_plan` returns, as `hfscratch plan` prints it."""
    head = "\n".join(
        [
            f"Model      {human(plan['params'])} parameters ({plan['params_source']})",
            f"Data       {human(plan['tokens'])} tokens, {plan['tokens_per_param']:.1f} per parameter "
            f"({plan['tokens_source']})",
            f"Compute    {sci(plan['flops'])} FLOPs ({plan['flops_formula']})",
        ]
    )
    return "\n\n".join([head, render_cost(plan), render_memory(plan), render_rule_of_thumb(plan)])


def render_tables(tables: dict[str, Any]) -> str:
    """`--table`: the compute-optimal table, the reference runs with their implied MFU, and the plan if any."""
    chinchilla = format_table(
        [
            (human(r["params"]), sci(r["flops"]), human(r["tokens"]), f"{r['tokens'] / r['params']:.1f}")
            for r in tables["chinchilla"]
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
            for r in tables["reference_runs"]
        ],
        ["run", "params", "tokens", "GPU", "GPU-hours", "FLOPs (6ND)", "MFU", "source"],
    )
    text = (
        f"Compute-optimal models ({CHINCHILLA_SOURCE}):\n{chinchilla}\n\n"
        f"Published runs and the MFU their GPU-hours imply (6ND / (GPU-hours x dense bf16 peak)):\n{refs}"
    )
    return text + ("\n\n" + render_plan(tables["plan"]) if "plan" in tables else "")
