"""`hfscratch finetune RECIPE.yaml [--method full|lora|dpo] [--merge] [--key value ...]`: SFT and DPO with TRL.

Reads the method first (the command line's `--method`, else the recipe's `method` key), since it decides the
class of the training keys (TRL's `SFTConfig` or `DPOConfig`); then parses the recipe, calls
`hfscratch.finetuning.train.run_finetune` and prints the summary. Parsing imports the configs (and so
`TrainingArguments`); the trainers, torch's training code and peft's models are imported once a run starts.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from hfscratch.core.recipes import RecipeError, parse_recipe

DESCRIPTION = (
    "Hand-off: supervised fine-tuning (--method full or lora, TRL's SFTTrainer, packed, loss on the replies only) "
    "or preference tuning (--method dpo, TRL's DPOTrainer) of a model folder; saves the model or adapter."
)


def requested_method(argv: Sequence[str]) -> str:
    """The method `argv` asks for, read before parsing: `--method X` (or `--method=X`), else the recipe's
    `method` key, else the default. A value that is no method is left for the parser to reject."""
    from hfscratch.finetuning.arguments import DEFAULT_METHOD

    for i, word in enumerate(argv):
        if word == "--method" and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith("--method="):
            return word.split("=", 1)[1]
    if argv and not argv[0].startswith("-"):
        import yaml

        from hfscratch.core.resources import resolve_recipe

        try:
            recipe = yaml.safe_load(resolve_recipe(argv[0], "finetune").read_text(encoding="utf-8"))
        except (OSError, RecipeError, yaml.YAMLError):
            return DEFAULT_METHOD  # the parser reports the file's problem in its own words
        if isinstance(recipe, dict) and isinstance(recipe.get("method"), str):
            return recipe["method"]
    return DEFAULT_METHOD


def summarize(results: Any, output_dir: str) -> str:
    what = "model" if results.method == "full" else "adapter"
    lines = [
        f"{results.method}: {what} in {output_dir}  ({results.trainable_params:,} of {results.all_params:,} "
        f"parameters trainable, {results.trainable_percent:.3f}%; {results.steps} steps, {results.wall_seconds:.0f} s)"
    ]
    if results.method == "dpo":
        lines.append(
            f"held-out reward margin: {results.eval_margin_before:.4f} -> {results.eval_margin_after:.4f}; "
            f"reward accuracy {results.eval_reward_accuracy_before:.1%} -> {results.eval_reward_accuracy_after:.1%}; "
            f"DPO loss {results.eval_loss_before:.4f} -> {results.eval_loss_after:.4f}"
        )
    else:
        lines.append(f"assistant-only eval loss: {results.eval_loss_before:.4f} -> {results.eval_loss_after:.4f}")
    if results.merged_dir:
        lines.append(f"merged model: {results.merged_dir}")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    from hfscratch.finetuning.arguments import FinetuneDataArguments, LoraArguments, training_arguments_class

    keys = training_arguments_class(requested_method(argv))
    data, lora, args = parse_recipe(
        [FinetuneDataArguments, LoraArguments, keys], argv, prog="hfscratch finetune", description=DESCRIPTION
    )
    if keys is not training_arguments_class(data.method):  # the early read and the parser must agree
        raise RecipeError(f"method: read as {requested_method(argv)!r} before parsing, {data.method!r} after")
    from hfscratch.finetuning.train import run_finetune

    results = run_finetune(data, lora, args)
    print(summarize(results, args.output_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
