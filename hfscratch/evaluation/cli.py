"""`hfscratch evaluate MODEL_DIR [RECIPE.yaml] [--key value ...]`: benchmarks, perplexity, open-ended metrics."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hfscratch.core.recipes import parse_recipe
from hfscratch.evaluation.arguments import EvaluateArguments

DESCRIPTION = (
    "Step 4: evaluate a model folder (MODEL_DIR, or model_name_or_path in the recipe) with lm-eval "
    "(ARC, HellaSwag, MMLU, TruthfulQA, any lm-eval task; presets leaderboard-v1 and zero-shot), perplexity and "
    "bits per byte on held-out data, a domain cloze benchmark, BLEU/ROUGE on generations, human rating sheets. "
    "Results accumulate: each run adds its tasks to output_dir's record (default MODEL_DIR/evaluation), the newest "
    "run of a task replacing the older; scores.json, report.md, scores.png and model-index.yaml show them all."
)


def main(argv: Sequence[str]) -> int:
    from hfscratch.evaluation.report import render_table
    from hfscratch.evaluation.runner import run_evaluation

    # --data-dir works as well as --data_dir: HfArgumentParser adds the dashed aliases.
    (args,) = parse_recipe(
        [EvaluateArguments],
        argv,
        prog="hfscratch evaluate",
        description=DESCRIPTION,
        positional="model_name_or_path",
        usage="%(prog)s MODEL_DIR [RECIPE.yaml] [--key value ...]",
    )
    scores = run_evaluation(args)
    print(render_table(scores))
    print(f"\nwritten to {args.evaluation_dir}: scores.json, report.md, results.json, scores.png, model-index.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
