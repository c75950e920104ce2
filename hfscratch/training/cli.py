"""`hfscratch pretrain RECIPE.yaml [--key value ...]`: parse, call, print.

The composition point of step 3: it may hand the library callbacks of higher layers (the in-training lm-eval
harness of hfscratch.evaluation), which the library itself never imports. Parsing needs only the argument
dataclasses (transformers.TrainingArguments), so `--help`, a bad key and a finished run answer without importing
the Trainer or DeepSpeed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hfscratch.core.recipes import RecipeError, parse_recipe

DESCRIPTION = "Step 3: pretrain a model on packed blocks with Trainer + accelerate + DeepSpeed ZeRO."


def harness_callbacks(args: Any) -> list:
    """The in-training lm-eval runs a recipe asks for (`eval_harness_tasks`); lm-eval is imported only then."""
    if not args.eval_harness_tasks:
        return []
    from hfscratch.evaluation.callback import EvalHarnessCallback

    return [
        EvalHarnessCallback(
            args.eval_harness_tasks, args.eval_harness_steps, args.eval_harness_limit, args.eval_harness_data_dir
        )
    ]


def main(argv: Sequence[str]) -> int:
    from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments
    from hfscratch.training.run_info import finished_run

    model_args, data_args, args = parse_recipe(
        [ModelArguments, DataArguments, PretrainingArguments], argv, prog="hfscratch pretrain", description=DESCRIPTION
    )
    finished = finished_run(args)
    if finished is not None:
        print(f"hfscratch pretrain: {finished}")
        return 0
    from hfscratch.training.pretrain import build_trainer, start_over, train
    from hfscratch.training.run_log import library_messages_to

    rank = int(os.environ.get("RANK", "0"))
    if args.overwrite_output_dir and rank == 0:
        start_over(args.output_dir)
    library_messages_to(Path(args.output_dir) / ("pretrain.log" if rank == 0 else f"pretrain-rank{rank}.log"))

    return train(build_trainer(model_args, data_args, args, callbacks=harness_callbacks(args)), data_args.data_dir)


def run_as_script(argv: Sequence[str]) -> None:
    """`python -m hfscratch.training.pretrain` / `accelerate launch -m ...`: no `hfscratch` dispatcher around it
    to print a RecipeError, so print it here, one line, exit 2."""
    try:
        sys.exit(main(argv))
    except RecipeError as exc:
        print(f"hfscratch pretrain: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    run_as_script(sys.argv[1:])
