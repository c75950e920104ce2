"""The model card's facts, computed from a `Lineage` and formatted for the template.

The template (hfscratch/hub/templates/model_card.md) holds the prose and the layout; this module turns the run's
files into the strings and table rows it shows. A fact that no file records is the string `NOT_RECORDED`, never
a guess.
"""

from __future__ import annotations

import math
from typing import Any

from hfscratch.core.hardware import PUE, USD_PER_MWH, match_gpu
from hfscratch.evaluation.scores import Scores
from hfscratch.hub.lineage import Lineage

NOT_RECORDED = "not recorded"


def count(value: Any) -> str:
    """1234567 -> '1,234,567'; a missing value -> 'not recorded'."""
    return f"{int(value):,}" if isinstance(value, (int, float)) and not isinstance(value, bool) else NOT_RECORDED


def number(value: Any, digits: int = 4) -> str:
    """A float with `digits` significant figures (3.8132, 0.00123, 1.2e-05)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return NOT_RECORDED
    return f"{value:.{digits}g}"


def share(part: Any, whole: Any) -> str:
    if not isinstance(part, (int, float)) or not whole:
        return NOT_RECORDED
    return f"{part / whole:.1%}"


# -- Architecture --------------------------------------------------------------------------------------------


def attention_layout(config: dict[str, Any]) -> str:
    heads, kv = (
        config.get("num_attention_heads"),
        config.get("num_key_value_heads") or config.get("num_attention_heads"),
    )
    kind = "multi-head (MHA)" if kv == heads else "multi-query (MQA)" if kv == 1 else "grouped-query (GQA)"
    extras = [f"{heads} query heads, {kv} key/value heads of {config.get('head_dim')} dimensions"]
    if config.get("qk_norm"):
        extras.append("QK-norm")
    extras.append("biases" if config.get("attention_bias") else "no biases")
    return f"{kind}: {', '.join(extras)}"


def position_scheme(config: dict[str, Any]) -> str:
    kind = config.get("position_embedding_type")
    if kind == "rope":
        rope = config.get("rope_parameters") or {}
        return f"RoPE (theta {number(rope.get('rope_theta'), 6)}, {rope.get('rope_type', 'default')})"
    if kind == "relative":
        return f"relative bias (T5 buckets: {config.get('relative_attention_num_buckets')})"
    return {"learned": "learned absolute", "sinusoidal": "sinusoidal absolute", "alibi": "ALiBi"}.get(kind, str(kind))


def mlp_kind(config: dict[str, Any]) -> str:
    act = config.get("hidden_act")
    if config.get("mlp_type") == "gated":
        name = {"silu": "SwiGLU", "gelu": "GeGLU", "gelu_pytorch_tanh": "GeGLU (tanh)"}.get(act, f"gated {act}")
        return f"{name}, {config.get('intermediate_size')} wide" + (", biases" if config.get("mlp_bias") else "")
    return f"{act}, {config.get('intermediate_size')} wide" + (", biases" if config.get("mlp_bias") else "")


def parameter_counts(lineage: Lineage) -> dict[str, int]:
    """Exact parameter counts of the saved configuration, built on the meta device (no memory, no weights read)."""
    import torch

    from hfscratch.models.hfscratch import HFScratchConfig, HFScratchForCausalLM

    config = HFScratchConfig.from_pretrained(lineage.model_dir)
    with torch.device("meta"):
        model = HFScratchForCausalLM(config)
    return {"total": model.num_parameters(), "non_embedding": model.num_parameters(exclude_embeddings=True)}


def llama_export(config: dict[str, Any]) -> tuple[bool, str]:
    """Whether `hfscratch.models.convert.to_llama` accepts this configuration, and why not when it does not."""
    from hfscratch.models.convert import LLAMA_LAYOUT

    for name, required in LLAMA_LAYOUT.items():
        if config.get(name) != required:
            return False, f"{name}={config.get(name)!r} (Llama needs {required!r})"
    return True, ""


DROPOUTS = ("embedding_dropout", "attention_dropout", "residual_dropout")


def architecture(lineage: Lineage) -> dict[str, Any]:
    """The configuration as table rows, the exact parameter count, and whether the Llama export applies."""
    c = lineage.config
    counts = parameter_counts(lineage)
    norm = f"{c.get('norm_type')}, {c.get('norm_position')}-norm (eps {c.get('norm_eps')})"
    if c.get("norm_position") == "post":
        norm += ", no final norm"
    dropout = [f"{k.removesuffix('_dropout')} {c[k]}" for k in DROPOUTS if c.get(k)]
    rows = [
        ("parameters", f"{counts['total']:,} ({counts['non_embedding']:,} without embeddings)"),
        ("layers x width", f"{c.get('num_hidden_layers')} x {c.get('hidden_size')}"),
        ("attention", attention_layout(c)),
        ("positions", f"{position_scheme(c)}, up to {count(c.get('max_position_embeddings'))} tokens"),
        ("normalisation", norm),
        ("MLP / activation", mlp_kind(c)),
        ("vocabulary", count(c.get("vocab_size"))),
        ("embeddings", "input and output tied" if c.get("tie_word_embeddings") else "untied input and output"),
        ("dropout", ", ".join(dropout) or "none"),
        ("weights dtype", str(c.get("dtype") or c.get("torch_dtype") or NOT_RECORDED)),
    ]
    llama_ok, llama_why = llama_export(c)
    return {"rows": rows, "parameters": counts["total"], "llama_ok": llama_ok, "llama_why": llama_why}


# -- Data lineage --------------------------------------------------------------------------------------------


def data_lineage(lineage: Lineage) -> dict[str, Any]:
    tok, cur = lineage.tokenize_stats, lineage.curate_stats
    out: dict[str, Any] = {"recorded": tok is not None, "curation_recorded": cur is not None}
    if tok is None:
        return out
    tokenizer = tok.tokenizer
    out["tokenizer"] = f"{tokenizer.get('type', NOT_RECORDED)}, {count(tokenizer.get('vocab_size'))} tokens"
    out["block_size"] = count(tok.block_size)
    train, valid = tok.train, tok.validation
    out["train_tokens"] = count(train.get("tokens"))
    out["validation_tokens"] = count(valid.get("tokens"))
    out["documents"] = f"{count(train.get('documents'))} train, {count(valid.get('documents'))} validation"
    curated_sources = cur.sources if cur else {}
    # Token shards are mixed when training loads them (data_mixture): the run records the shares it trained on.
    mixture = lineage.run_info.data_mixture if lineage.run_info else None
    out["mixture"] = (
        "chosen at load time by the pretraining recipe's data_mixture (weights normalised; shares of blocks trained)"
        if mixture
        else "applied when the corpus was tokenized (weights multiply a source's tokens)"
    )
    out["sources"] = [
        {
            "tag": tag,
            "type": curated_sources[tag].type if tag in curated_sources else NOT_RECORDED,
            "read": count(curated_sources[tag].documents_read if tag in curated_sources else None),
            "kept": count(s.get("documents")),
            "tokens": count(s.get("tokens")),
            "chars_per_token": number(s.get("characters_per_token"), 3),
            "weight": number(mixture[tag]["weight"] if mixture and tag in mixture else s.get("weight"), 3),
            "share": share(
                mixture[tag]["share_of_blocks"] if mixture and tag in mixture else s.get("realised_share"), 1.0
            ),
        }
        for tag, s in tok.sources.items()
    ]
    decon = tok.decontamination
    if decon:
        out["decontamination"] = {
            "action": decon.get("action", NOT_RECORDED),
            "flagged": count(decon.get("documents_flagged")),
            "checked": count(decon.get("documents")),
            "rows": [
                {
                    "name": name,
                    "test_items": count(b.get("items")),
                    "flagged": count(b.get("documents_flagged")),
                    "found": count(b.get("items_found")),
                }
                for name, b in decon.get("benchmarks", {}).items()
            ],
        }
    if cur is None:
        return out
    funnel = cur.funnel
    out["funnel"] = [
        {
            "step": row.step,
            "docs_in": count(row.docs_in),
            "docs_out": count(row.docs_out),
            "removed": count(row.docs_in - row.docs_out),
            "reasons": ", ".join(
                f"{reason.replace('_', ' ')} {n:,}"
                for reason, n in sorted(row.removal_reasons.items(), key=lambda kv: -kv[1])[:3]
            ),
        }
        for row in funnel
    ]
    if funnel:
        out["funnel_total"] = f"{count(funnel[0].docs_in)} documents read, {count(funnel[-1].docs_out)} kept"
    # De-duplication steps are the funnel rows datatrove's dedup stages wrote ("Exact dedup", "MinHash near-dedup").
    out["dedup"] = [
        {"step": row.step, "removed": count(row.docs_in - row.docs_out)}
        for row in funnel
        if "dedup" in row.step.lower()
    ]
    pii = cur.pii_redacted
    out["pii"] = ", ".join(f"{kind} {n:,}" for kind, n in sorted(pii.items(), key=lambda kv: -kv[1])) or "none found"
    out["skipped"] = ", ".join(f"{k} {v:,}" for k, v in cur.skipped_records.items()) or "none"
    return out


# -- Training ------------------------------------------------------------------------------------------------


def training(lineage: Lineage) -> dict[str, Any]:
    info = lineage.run_info.to_dict() if lineage.run_info else {}
    state, results = lineage.trainer_state or {}, lineage.results or {}
    history = lineage.log_history
    train_logs = [row for row in history if "loss" in row]
    eval_logs = [row for row in history if "eval_loss" in row]
    args = info.get("training_args") or {}  # recorded by newer pretrain runs; training_args.bin is never unpickled
    world = info.get("world_size")
    accum = info.get("gradient_accumulation_steps") or args.get("gradient_accumulation_steps")
    micro = args.get("per_device_train_batch_size") or state.get("train_batch_size")
    block = lineage.tokenize_stats.block_size if lineage.tokenize_stats else None
    sequences = micro * accum * world if micro and accum and world else None
    if info.get("deepspeed"):
        parallel = f"DeepSpeed ZeRO-{info.get('zero_stage')}"
    elif world:
        parallel = "one process" if world == 1 else f"{info.get('distributed_type', 'data parallel')}"
    else:
        parallel = NOT_RECORDED
    lrs = [row["learning_rate"] for row in train_logs if "learning_rate" in row]
    peak = args.get("learning_rate") or (max(lrs) if lrs else None)  # configured peak, else the largest logged
    schedule = args.get("lr_scheduler_type")
    warmup = args.get("warmup_steps") or args.get("warmup_ratio")
    tokens = info.get("train_tokens") or state.get("num_input_tokens_seen") or results.get("num_input_tokens_seen")
    runtime = info.get("train_runtime_s") or results.get("train_runtime")
    mfus = [row["mfu"] for row in train_logs if "mfu" in row]
    speeds = [row["tokens_per_second"] for row in train_logs if "tokens_per_second" in row]
    last_eval = eval_logs[-1] if eval_logs else {}
    return {
        "hardware": (f"{info.get('num_devices') or world} x {info['device']}" if info.get("device") else NOT_RECORDED),
        "parallelism": parallel,
        "steps": count(state.get("global_step") or info.get("max_steps")),
        "epochs": number(state.get("epoch") or results.get("epoch"), 3),
        "tokens": count(tokens),
        "tokens_value": tokens,
        "batch": (
            f"{sequences:,} sequences of {block} tokens = {sequences * block:,} tokens per step "
            f"({micro} per device x {accum} accumulation steps x {world} device{'s' if world > 1 else ''})"
            if sequences and block
            else NOT_RECORDED
        ),
        "optimizer": (
            ("Muon on the hidden matrices + " if args.get("matrix_optimizer") == "muon" else "")
            + f"{args.get('optim', 'adamw')} (betas {args.get('adam_beta1')}, {args.get('adam_beta2')}), weight decay "
            f"{args.get('weight_decay')}, clipping {args.get('max_grad_norm')}"
            if args
            else NOT_RECORDED
        ),
        "schedule": (
            f"{schedule or 'schedule ' + NOT_RECORDED}, peak learning rate {number(peak, 3)}"
            + (f", warmup {warmup}" if warmup else "")
            + (f", last logged {number(lrs[-1], 3)}" if lrs else "")
            if peak
            else NOT_RECORDED
        ),
        "precision": ("bf16" if args.get("bf16") else "fp16" if args.get("fp16") else "fp32") if args else NOT_RECORDED,
        "seed": str(args.get("seed", NOT_RECORDED)),
        "first_loss": number(train_logs[0]["loss"]) if train_logs else NOT_RECORDED,
        "last_loss": number(train_logs[-1]["loss"]) if train_logs else NOT_RECORDED,
        "eval_loss": number(last_eval.get("eval_loss")),
        "eval_perplexity": number(
            last_eval.get("eval_perplexity") or (math.exp(last_eval["eval_loss"]) if "eval_loss" in last_eval else None)
        ),
        "eval_step": count(last_eval.get("step")),
        "runtime": f"{runtime:,.0f} s ({runtime / 3600:.3g} h)" if runtime else NOT_RECORDED,
        "runtime_s": runtime,
        "throughput": f"{sum(speeds) / len(speeds):,.0f} tokens/s" if speeds else NOT_RECORDED,
        "mfu": f"{sum(mfus) / len(mfus):.1%}" if mfus else NOT_RECORDED,
        "skipped_steps": count(results.get("skipped_steps")),
    }


# -- Compute and energy --------------------------------------------------------------------------------------


def compute(lineage: Lineage, device_watts: float | None = None) -> dict[str, Any]:
    """Device-hours as measured, priced with plan's energy model (`hfscratch.core.hardware`): board power x hours
    x PUE, at its $/MWh; the board power of the GPU `hardware.match_gpu` finds in the device name."""
    info = lineage.run_info.to_dict() if lineage.run_info else {}
    results = lineage.results or {}
    device = info.get("device")
    hours, basis = info.get("device_hours"), "measured by pretrain as train runtime x devices"
    if hours is None and results.get("train_runtime") and info.get("world_size"):
        hours = results["train_runtime"] * info["world_size"] / 3600
        basis = "train runtime x world size, from all_results.json and run_info.json"
    out: dict[str, Any] = {"device_hours": number(hours, 3) if hours is not None else NOT_RECORDED, "basis": basis}
    gpu = match_gpu(device) if device else None
    watts, source = (device_watts, "the board power given to `push --device_watts`") if device_watts else (None, None)
    if watts is None and gpu is not None:
        watts, source = gpu.tdp_watts, f"the {gpu.name}'s TDP in `hfscratch plan` ({gpu.source})"
    if hours is None:
        out["energy"] = "not estimated: no device-hours recorded"
        return out
    if watts is None:
        what = f"{device} is not a GPU in" if device else "the device is not recorded, so it cannot be matched to"
        out["energy"] = (
            f"not estimated: {what} `hfscratch plan`'s table, and no power figure was given "
            "(`hfscratch push --device_watts W`); the device-hours above are the measured figure"
        )
        return out
    kwh = hours * watts / 1000 * PUE
    out["energy"] = (
        f"{kwh:.3g} kWh = {hours:.3g} device-hours x {watts:g} W ({source}) x PUE {PUE}, "
        f"about ${kwh / 1000 * USD_PER_MWH:.2g} at ${USD_PER_MWH:g}/MWh"
    )
    out["kwh"] = kwh
    return out


# -- Evaluation ---------------------------------------------------------------------------------------------


def evaluation(scores: Scores | None) -> dict[str, Any]:
    """The card's evaluation section, from the same rows as report.md and the model-index (percent throughout)."""
    from hfscratch.evaluation.report import (
        average_lines,
        human_line,
        open_ended_lines,
        other_metric_lines,
        perplexity_rows,
        task_rows,
    )

    if scores is None or scores.is_empty():
        return {"recorded": False}
    return {
        "recorded": True,
        "tasks": task_rows(scores),
        "averages": average_lines(scores),
        "other_metrics": other_metric_lines(scores),
        "perplexity": perplexity_rows(scores),
        "open_ended": open_ended_lines(scores),
        "human": human_line(scores),
    }
