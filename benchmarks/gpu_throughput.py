"""The model's training step on one GPU, with and without each speed feature, in one go (under 8 minutes on an
H100/H200).

    HF_HUB_OFFLINE=0 python benchmarks/gpu_throughput.py [--presets 125m 350m] [--json gpu_throughput.json]
    python benchmarks/gpu_throughput.py --dry_run          # on a CPU: builds every variant, runs one step

For the `llama` preset at the `125m` and `350m` sizes (vocab 32,768, 2,048-token sequences), each variant trains
on random tokens under bf16 autocast with fused AdamW (what the Trainer's `bf16: true` does, without its data
loading): `sdpa` eager, `sdpa` + torch.compile, FlashAttention 3 from the kernels hub + compile, and that + Liger
(RMSNorm, SwiGLU, fused linear cross-entropy). Compilation is per decoder block (as torchtitan does), so the 24
blocks of the 350m share one compiled graph and compilation takes seconds, not minutes; the loss (Liger's fused
one, or the logits and cross-entropy) stays outside. Reported per variant: tokens/s, MFU against the GPU's dense
bf16 peak (hfscratch.core.hardware.match_gpu) with the model's training FLOPs per token (6N + attention), peak
memory; one markdown table on stdout and every figure in the JSON file. Goals: >= 50% MFU at 350m, >= 400K
tokens/s at 125m.

A variant that cannot run says why in its row (no `kernels` package, no Hub access for FA3, no `liger-kernel`,
no CUDA in a dry run) and the others still run. `--time_budget_s` skips what is left once the budget is spent.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from hfscratch.core.hardware import match_gpu
from hfscratch.models.hfscratch import HFScratchConfig, HFScratchForCausalLM
from hfscratch.models.kernels import apply_liger

FA3_HUB = "kernels-community/flash-attn3"


@dataclass(frozen=True)
class Variant:
    name: str
    attn_implementation: str
    compile: bool
    liger: bool


VARIANTS = {
    variant.name: variant
    for variant in (
        Variant("sdpa", "sdpa", compile=False, liger=False),
        Variant("sdpa+compile", "sdpa", compile=True, liger=False),
        Variant("fa3+compile", FA3_HUB, compile=True, liger=False),
        Variant("fa3+compile+liger", FA3_HUB, compile=True, liger=True),
    )
}
# Micro-batch per preset: 32K tokens a step at 125m, 16K at 350m (activations for 24 blocks fit in 80 GB).
MICRO_BATCH = {"125m": 16, "350m": 8, "tiny": 2}


@dataclass
class Row:
    preset: str
    variant: str
    attn_implementation: str
    compiled: bool
    liger: bool
    status: str = "ok"  # or why it did not run
    batch: int = 0
    seq_len: int = 0
    parameters: int = 0
    steps: int = 0
    tokens_per_s: float | None = None
    mfu: float | None = None
    peak_memory_gb: float | None = None
    compile_and_warmup_s: float | None = None
    loss: float | None = None
    liger_patched_modules: int = 0
    notes: list[str] = field(default_factory=list)


def build_model(preset: str, args: argparse.Namespace, device: torch.device) -> HFScratchForCausalLM:
    overrides = dict(vocab_size=args.vocab, max_position_embeddings=args.seq_len)
    if preset == "tiny":  # the dry run's size
        overrides.update(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
    config = HFScratchConfig.from_preset("llama", size="125m" if preset == "tiny" else preset, **overrides)
    torch.manual_seed(0)
    return HFScratchForCausalLM(config).to(device).train()


def set_attention(model: HFScratchForCausalLM, variant: Variant, device: torch.device) -> str | None:
    """Selects the variant's attention; returns why it cannot run here, or None."""
    if variant.attn_implementation == FA3_HUB and device.type != "cuda":
        return "not run: FlashAttention 3 needs a CUDA GPU"
    try:
        model.set_attn_implementation(variant.attn_implementation)
    except Exception as error:  # no `kernels` package, no Hub, an unsupported GPU: say which, run the others
        return f"not run: {variant.attn_implementation}: {' '.join(str(error).split())[:200]}"
    if model.config._attn_implementation != variant.attn_implementation:
        return f"not run: asked {variant.attn_implementation}, got {model.config._attn_implementation}"
    return None


def compile_blocks(model: HFScratchForCausalLM, fullgraph: bool) -> None:
    """torch.compile each decoder block in place (one graph, shared by the blocks: same code and shapes)."""
    for layer in model.model.layers:
        layer.compile(fullgraph=fullgraph)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_variant(preset: str, variant: Variant, args: argparse.Namespace, device: torch.device, peak_flops) -> Row:
    batch = MICRO_BATCH[preset]
    row = Row(preset, variant.name, variant.attn_implementation, variant.compile, variant.liger)
    row.batch, row.seq_len = batch, args.seq_len
    model = build_model(preset, args, device)
    row.parameters = model.num_parameters()
    reason = set_attention(model, variant, device)
    if variant.liger:
        try:
            row.liger_patched_modules = len(apply_liger(model))
        except ValueError as error:
            reason = reason or f"not run: {error}"
        if device.type != "cuda":
            reason = reason or "not run: Liger's Triton kernels need a CUDA GPU (patching checked)"
    if reason:
        row.status = reason
        return row
    if variant.compile:
        # Liger's kernels are opaque to dynamo: its blocks may break the graph rather than fail
        compile_blocks(model, fullgraph=not variant.liger)
        row.notes.append(f"compiled per block, fullgraph={not variant.liger}")

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    generator = torch.Generator(device="cpu").manual_seed(0)
    input_ids = torch.randint(0, args.vocab, (batch, args.seq_len), generator=generator).to(device)

    def step() -> float:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = model(input_ids, labels=input_ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.warmup_steps):
        loss = step()
    synchronize(device)
    row.compile_and_warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.steps):
        loss = step()
    synchronize(device)
    seconds = time.perf_counter() - start
    row.steps = args.steps
    row.loss = float(loss)
    if not math.isfinite(row.loss):
        row.status = f"failed: loss {row.loss}"
    row.tokens_per_s = args.steps * batch * args.seq_len / seconds
    if peak_flops:
        row.mfu = row.tokens_per_s * model.flops_per_token(args.seq_len) / peak_flops
    if device.type == "cuda":
        row.peak_memory_gb = torch.cuda.max_memory_allocated() / 2**30
    return row


def release(device: torch.device) -> None:
    torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def markdown_table(rows: Sequence[Row]) -> str:
    def number(value, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    lines = [
        "| preset | variant | tokens/s | MFU | peak memory GB | compile+warmup s | status |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        mfu = "" if row.mfu is None else f"{100 * row.mfu:.1f}%"
        lines.append(
            f"| {row.preset} | {row.variant} | {number(row.tokens_per_s, ',.0f')} | {mfu} | "
            f"{number(row.peak_memory_gb, '.1f')} | {number(row.compile_and_warmup_s, '.0f')} | {row.status} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["125m", "350m"], choices=["125m", "350m"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seq_len", type=int, default=2048)
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--warmup_steps", type=int, default=3, help="untimed steps first (compilation happens here)")
    parser.add_argument("--steps", type=int, default=15, help="timed steps per variant")
    parser.add_argument("--time_budget_s", type=float, default=450, help="skip the variants left after this long")
    parser.add_argument("--json", type=Path, default=Path("gpu_throughput.json"))
    parser.add_argument(
        "--dry_run", action="store_true", help="a tiny model, 1 warm-up and 1 timed step each, on any device"
    )
    args = parser.parse_args(argv)
    if args.dry_run:
        args.presets, args.seq_len, args.vocab, args.warmup_steps, args.steps = ["tiny"], 64, 512, 1, 1
    return args


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not args.dry_run and device.type != "cuda":
        sys.exit("gpu_throughput.py: no CUDA GPU here; --dry_run checks the script on a CPU.")
    device_name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    gpu = match_gpu(device_name) if device.type == "cuda" else None
    peak_flops = gpu.peak_tflops * 1e12 if gpu else None
    print(
        f"device: {device_name} ({gpu.name + f', dense bf16 peak {gpu.peak_tflops:.0f} TFLOP/s' if gpu else 'no MFU'})"
        f", torch {torch.__version__}, seq {args.seq_len}, vocab {args.vocab}, bf16 autocast, "
        f"{args.warmup_steps} warm-up + {args.steps} timed steps",
        flush=True,
    )
    started = time.perf_counter()
    rows = []
    for preset in args.presets:
        for name in args.variants:
            variant = VARIANTS[name]
            if time.perf_counter() - started > args.time_budget_s:
                rows.append(Row(preset, name, variant.attn_implementation, variant.compile, variant.liger))
                rows[-1].status = f"not run: time budget of {args.time_budget_s:.0f} s spent"
                continue
            try:
                rows.append(run_variant(preset, variant, args, device, peak_flops))
            except torch.OutOfMemoryError:
                rows.append(Row(preset, name, variant.attn_implementation, variant.compile, variant.liger))
                rows[-1].status = f"failed: out of memory at micro-batch {MICRO_BATCH[preset]}"
            release(device)
            print(f"{preset} {name}: {rows[-1].status}, {rows[-1].tokens_per_s or 0:,.0f} tokens/s", flush=True)
    print()
    print(markdown_table(rows))
    result = {
        "device": device_name,
        "gpu": gpu.name if gpu else None,
        "peak_tflops": gpu.peak_tflops if gpu else None,
        "torch": torch.__version__,
        "dry_run": args.dry_run,
        "wall_s": time.perf_counter() - started,
        "rows": [asdict(row) for row in rows],
    }
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten: {args.json} ({result['wall_s']:.0f} s)")
    return rows


if __name__ == "__main__":
    main()
