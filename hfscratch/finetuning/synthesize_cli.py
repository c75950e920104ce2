"""`hfscratch synthesize [RECIPE.yaml] [--key value ...]`: Self-Instruct instruction data from a local model.

Parses the recipe, calls `hfscratch.finetuning.synthesize.synthesize`, prints what became of every sample.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hfscratch.core.recipes import RecipeError, parse_recipe
from hfscratch.finetuning.synthesize import SynthesizeArguments, synthesize

DESCRIPTION = (
    "Hand-off: instruction data from a local causal LM, Self-Instruct style: prompt with seed tasks, sample, "
    "parse, filter malformed and near-duplicate items, write JSONL for finetune and curate."
)


def main(argv: Sequence[str]) -> int:
    (args,) = parse_recipe([SynthesizeArguments], argv, prog="hfscratch synthesize", description=DESCRIPTION)
    if not 0.0 < args.rouge_threshold <= 1.0:
        raise RecipeError(f"rouge_threshold: expected a value in (0, 1], got {args.rouge_threshold}")
    if not 0 <= args.machine_tasks_per_prompt < args.num_prompt_tasks:
        raise RecipeError("machine_tasks_per_prompt: must be at least 0 and below num_prompt_tasks")
    stats = synthesize(args)
    malformed = {k.removeprefix("malformed_"): v for k, v in stats.items() if k.startswith("malformed_")}
    print(
        f"{stats['samples']} samples from {stats['prompts']} prompts: {stats.get('parsed', 0)} parsed, "
        f"{sum(malformed.values())} malformed {malformed or ''}, {stats.get('near_duplicate', 0)} near-duplicates, "
        f"{stats['kept']} kept -> {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
