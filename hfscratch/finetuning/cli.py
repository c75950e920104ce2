"""`hfscratch finetune RECIPE.yaml [--merge] [--key value ...]`: LoRA supervised fine-tuning with PEFT.

Parses the recipe, calls `hfscratch.finetuning.train.run_finetune`, prints the summary. The keys include every
`TrainingArguments` field, so parsing imports transformers' TrainingArguments; the training code (torch, peft,
the Trainer) is imported only once a run starts.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hfscratch.core.recipes import parse_recipe

DESCRIPTION = (
    "Hand-off: LoRA fine-tuning with PEFT on instruction data (Alpaca or chat JSONL), loss on the responses only; "
    "saves the adapter and, with --merge, a merged model folder."
)


def summarize(results: dict) -> str:
    lines = [
        f"adapter: {results['output_dir']}  ({results['trainable_params']:,} of {results['all_params']:,} parameters "
        f"trainable, {results['trainable_percent']:.3f}%)",
        f"response-only eval loss: {results['eval_loss_before']:.4f} -> {results['eval_loss_after']:.4f} "
        f"({results['steps']} steps, {results['wall_seconds']:.0f} s)",
    ]
    if "merged_dir" in results:
        lines.append(f"merged model: {results['merged_dir']}")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    from hfscratch.finetuning.arguments import FinetuneDataArguments, FinetuneTrainingArguments, LoraArguments

    data, lora, args = parse_recipe(
        [FinetuneDataArguments, LoraArguments, FinetuneTrainingArguments],
        argv,
        prog="hfscratch finetune",
        description=DESCRIPTION,
    )
    if not args.label_names:
        args.label_names = ["labels"]  # PeftModel's forward hides `labels` from the Trainer's signature check
    from hfscratch.finetuning.train import run_finetune

    results = run_finetune(data, lora, args)
    print(summarize({**results, "output_dir": args.output_dir}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
