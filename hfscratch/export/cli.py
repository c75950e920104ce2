"""`hfscratch export MODEL_DIR --format gguf --outfile F [--quantize f32|f16|q8_0] [--overwrite] [--check]`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from hfscratch.core.recipes import parse_recipe

USAGE = "hfscratch export MODEL_DIR --format gguf --outfile F [--quantize f32|f16|q8_0] [--overwrite] [--check]"
DESCRIPTION = (
    "Hand-off: write the model as one GGUF file for llama.cpp, Ollama or LM Studio (Llama-compatible layouts, "
    "through the Llama export and the gguf writer). --check reads the file back with transformers and compares "
    "its logits and tokenizer with the model folder's."
)


@dataclass
class ExportArguments:
    model_dir: str = field(metadata={"help": "The model folder (a `hfscratch pretrain` output). May come first."})
    outfile: str = field(metadata={"help": "The file to write, e.g. model-q8_0.gguf."})
    format: Literal["gguf"] = field(default="gguf", metadata={"help": "The file format (gguf)."})
    quantize: Literal["f32", "f16", "q8_0"] = field(
        default="f16", metadata={"help": "Type of the weight matrices (norms stay f32): f32, f16 or q8_0."}
    )
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing outfile."})
    check: bool = field(
        default=False,
        metadata={"help": "Load the file with transformers and compare logits and token ids with the original."},
    )


def parse_args(argv: Sequence[str]) -> ExportArguments:
    (args,) = parse_recipe(
        [ExportArguments], argv, prog="hfscratch export", description=DESCRIPTION, positional="model_dir", usage=USAGE
    )
    return args


def megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB"


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    from hfscratch.export.gguf import export_gguf

    result = export_gguf(args.model_dir, args.outfile, args.quantize, overwrite=args.overwrite)
    types = ", ".join(f"{name} x{count}" for name, count in sorted(result.tensor_types.items()))
    print(f"wrote {result.path}: {megabytes(result.size_bytes)}, {args.quantize} ({types}) in {result.seconds:.1f} s")
    if result.fallbacks:
        print(
            f"note: {len(result.fallbacks)} matrices have rows Q8_0's 32-value blocks do not divide and are F16: "
            f"{', '.join(result.fallbacks[:4])}{' ...' if len(result.fallbacks) > 4 else ''}"
        )
    if not args.check:
        return 0
    from hfscratch.export.check import check_gguf

    check = check_gguf(args.model_dir, result.path)
    tokens = "equal" if not check.token_mismatches else "DIFFERENT"
    print(
        f"check: transformers reads it back: max |logit diff| {check.max_abs_diff:.3g} over {check.positions} "
        f"positions ({check.relative_diff:.2g} of the largest logit, {check.max_abs_logit:.3g}), "
        f"same next token at {check.greedy_agreement:.1%}, tokenizer ids {tokens}"
    )
    problem = check.problem(args.quantize)
    if problem:
        print(f"hfscratch export: check failed: {problem} (the file is kept for inspection)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
