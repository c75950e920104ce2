"""HFScratch against transformers' own Llama and GPT-2 at identical dimensions, in one run.

    HF_HUB_OFFLINE=1 python benchmarks/model_throughput.py [--hidden-size 256 --layers 4 --heads 4 --vocab 8192 ...]
    HF_HUB_OFFLINE=1 python benchmarks/model_throughput.py --compile --hidden-size 192 --vocab 4096   # tiny-cpu

Rows: training step (forward, backward, AdamW) in fp32 and under bf16 autocast, forward only, and `generate()` at
batch 1 with the KV cache. Ours and the peer run back to back in every sample after a warmup, so a noisy machine
slows both alike; the speeds are medians over samples, and the ratios (above 1: we are faster) are the median of
the per-sample ratios and the ratio of the best samples, the least disturbed ones.

`--compile` measures the fp32 training step of ours and `LlamaForCausalLM`, each eager and under
`torch.compile(fullgraph=True)`, the four in turn within every sample, and prints the four speeds with the ratios
ours/Llama in each mode and compiled/eager for each model (goals: compiled >= 1.3x eager, ours >= 1.0x Llama).
"""

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable

import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedModel

from hfscratch.models.hfscratch import HFScratchConfig, HFScratchForCausalLM


def build_pairs(args: argparse.Namespace) -> dict[str, tuple[PreTrainedModel, PreTrainedModel]]:
    """Our preset and its transformers peer, with the same dimensions and attention implementation."""
    dims = dict(
        vocab_size=args.vocab,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        max_position_embeddings=args.seq_len + args.new_tokens + args.prompt_len,
    )
    # no end-of-sequence token: every generate() call makes exactly --new-tokens tokens
    no_special_tokens = dict(bos_token_id=None, eos_token_id=None)
    ours_llama = HFScratchConfig.from_preset("llama", **dims, **no_special_tokens)
    peer_llama = LlamaConfig(
        **dims,
        **no_special_tokens,
        intermediate_size=ours_llama.intermediate_size,
        rms_norm_eps=ours_llama.norm_eps,
        tie_word_embeddings=ours_llama.tie_word_embeddings,
    )
    ours_gpt2 = HFScratchConfig.from_preset("gpt2", **dims, **no_special_tokens)
    peer_gpt2 = GPT2Config(
        **no_special_tokens,
        vocab_size=args.vocab,
        n_embd=args.hidden_size,
        n_layer=args.layers,
        n_head=args.heads,
        n_positions=dims["max_position_embeddings"],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    pairs = {
        "llama": (HFScratchForCausalLM(ours_llama), LlamaForCausalLM(peer_llama)),
        "gpt2": (HFScratchForCausalLM(ours_gpt2), GPT2LMHeadModel(peer_gpt2)),
    }
    for name, (ours, peer) in pairs.items():
        for model in (ours, peer):
            model.set_attn_implementation(args.attn_implementation)
        if ours.num_parameters() != peer.num_parameters():
            raise RuntimeError(f"{name}: {ours.num_parameters()} != {peer.num_parameters()} parameters")
    return pairs


def train_step(
    batch: torch.Tensor, autocast: bool, optimizers: dict[PreTrainedModel, torch.optim.Optimizer]
) -> Callable[[PreTrainedModel], None]:
    def step(model: PreTrainedModel) -> None:
        model.train()
        precision = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with precision:
            loss = model(batch, labels=batch).loss
        loss.backward()
        optimizers[model].step()
        optimizers[model].zero_grad(set_to_none=True)

    return step


def forward_only(batch: torch.Tensor) -> Callable[[PreTrainedModel], None]:
    @torch.no_grad()
    def forward(model: PreTrainedModel) -> None:
        model.eval()(batch)

    return forward


def generate(prompt: torch.Tensor, new_tokens: int) -> Callable[[PreTrainedModel], None]:
    @torch.no_grad()
    def generate_tokens(model: PreTrainedModel) -> None:
        model.eval().generate(prompt, max_new_tokens=new_tokens, do_sample=False, use_cache=True)

    return generate_tokens


def interleaved_speeds(runs: dict[str, Callable[[], None]], tokens: int, samples: int) -> dict[str, list[float]]:
    """Tokens/s of every run in every sample, after one warmup each; the order rotates from sample to sample so
    that no run is always the one after (or before) a disturbance."""
    for run in runs.values():
        run()
    speeds: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for sample in range(samples):
        shift = sample % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            runs[name]()
            speeds[name].append(tokens / (time.perf_counter() - start))
    return speeds


def compile_comparison(args: argparse.Namespace, batch: torch.Tensor) -> None:
    """Ours and Llama, eager and compiled, on the fp32 training step: one table, ratios per sample."""
    ours, llama = build_pairs(args)["llama"]
    models = {"ours": ours, "llama": llama}
    runs: dict[str, Callable[[], None]] = {}
    for name, model in models.items():
        optimizers = {model: torch.optim.AdamW(model.parameters(), lr=1e-4)}
        eager_step = train_step(batch, autocast=False, optimizers=optimizers)
        compiled = torch.compile(model, fullgraph=True, mode=args.compile_mode)
        optimizers[compiled] = optimizers[model]  # the compiled module trains the same parameters
        compiled_step = train_step(batch, autocast=False, optimizers=optimizers)
        runs[f"{name} eager"] = lambda step=eager_step, model=model: step(model)
        runs[f"{name} compiled"] = lambda step=compiled_step, compiled=compiled: step(compiled)
    start = time.perf_counter()
    for name in ("ours compiled", "llama compiled"):
        runs[name]()  # compilation, before the warmup
    compile_seconds = time.perf_counter() - start
    speeds = interleaved_speeds(runs, batch.numel(), args.samples)

    def ratio(mine: str, theirs: str) -> str:
        per_sample = statistics.median(a / b for a, b in zip(speeds[mine], speeds[theirs]))
        return f"{per_sample:.2f}x (best {max(speeds[mine]) / max(speeds[theirs]):.2f}x)"

    print(f"compilation of both models: {compile_seconds:.0f} s\n")
    print("| run | train fp32 tok/s (median) | best |\n|---|---:|---:|")
    for name, values in speeds.items():
        print(f"| {name} | {statistics.median(values):,.0f} | {max(values):,.0f} |")
    print()
    print(f"ours / Llama, eager:    {ratio('ours eager', 'llama eager')}")
    print(f"ours / Llama, compiled: {ratio('ours compiled', 'llama compiled')}")
    print(f"ours compiled / eager:  {ratio('ours compiled', 'ours eager')}   (goal >= 1.3x)")
    print(f"Llama compiled / eager: {ratio('llama compiled', 'llama eager')}")


def compare(
    ours: PreTrainedModel, peer: PreTrainedModel, run: Callable[[PreTrainedModel], None], tokens: int, samples: int
) -> tuple[float, float, float, float]:
    """Median tokens/s of each model, the median of the per-sample ratios ours/peer, and the ratio of the best
    samples. The two models run back to back in each sample (who goes first alternates), after one warmup run each,
    so that load from other processes hits both alike; the best sample is the one least disturbed by it."""
    speeds: dict[PreTrainedModel, list[float]] = {ours: [], peer: []}
    for model in (ours, peer):
        run(model)
    for sample in range(samples):
        for model in (ours, peer) if sample % 2 == 0 else (peer, ours):
            start = time.perf_counter()
            run(model)
            speeds[model].append(tokens / (time.perf_counter() - start))
    ratios = [mine / theirs for mine, theirs in zip(speeds[ours], speeds[peer])]
    return (
        statistics.median(speeds[ours]),
        statistics.median(speeds[peer]),
        statistics.median(ratios),
        max(speeds[ours]) / max(speeds[peer]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--prompt-len", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--samples", type=int, default=7, help="measurements per model and row (median taken)")
    parser.add_argument("--attn-implementation", default="sdpa", choices=["sdpa", "eager"])
    parser.add_argument(
        "--compile", action="store_true", help="ours vs Llama, eager and torch.compile'd, on the training step"
    )
    parser.add_argument(
        "--compile-mode",
        choices=["default", "max-autotune-no-cudagraphs", "max-autotune"],
        default="default",
        help="torch.compile's mode, as a recipe's torch_compile_mode sets it",
    )
    args = parser.parse_args()

    torch.manual_seed(0)
    batch = torch.randint(0, args.vocab, (args.batch_size, args.seq_len))
    prompt = torch.randint(0, args.vocab, (1, args.prompt_len))
    if args.compile:
        print(
            f"hidden {args.hidden_size}, {args.layers} layers, {args.heads} heads, vocab {args.vocab}, "
            f"batch {args.batch_size}x{args.seq_len}, {args.attn_implementation}, {torch.get_num_threads()} threads, "
            f"torch {torch.__version__}, compile mode {args.compile_mode}, median of {args.samples} rotating samples"
        )
        compile_comparison(args, batch)
        return
    pairs = build_pairs(args)
    optimizers = {model: torch.optim.AdamW(model.parameters(), lr=1e-4) for pair in pairs.values() for model in pair}
    rows = {
        "train fp32": (train_step(batch, autocast=False, optimizers=optimizers), batch.numel()),
        "train bf16 autocast": (train_step(batch, autocast=True, optimizers=optimizers), batch.numel()),
        "forward fp32": (forward_only(batch), batch.numel()),
        "generate b=1 (cache)": (generate(prompt, args.new_tokens), args.new_tokens),
    }
    print(
        f"hidden {args.hidden_size}, {args.layers} layers, {args.heads} heads, vocab {args.vocab}, "
        f"batch {args.batch_size}x{args.seq_len}, {args.attn_implementation}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, median of {args.samples} alternating samples\n"
    )
    print(
        "| model | row | ours tok/s | peer tok/s | ours/peer (median) | ours/peer (best) |\n"
        "|---|---|---:|---:|---:|---:|"
    )
    for name, (ours, peer) in pairs.items():
        for row, (run, tokens) in rows.items():
            ours_speed, peer_speed, ratio, best_ratio = compare(ours, peer, run, tokens, args.samples)
            print(
                f"| {name} vs {type(peer).__name__} | {row} | {ours_speed:,.0f} | {peer_speed:,.0f} | "
                f"{ratio:.2f}x | {best_ratio:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
