"""Step 1a: data curation with datatrove.

`hfscratch curate RECIPE.yaml` runs the pipeline (pipeline.py) over the recipe's sources (sources.py) with
our own blocks where datatrove needs a network or lacks a step (blocks.py), and writes the report
(report.py). `hfscratch curate train-classifier` trains the quality classifier (classifier.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from hfscratch.core.recipes import parse_recipe


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] == "train-classifier":
        from hfscratch.curation.classifier import ClassifierArguments, train_classifier

        (args,) = parse_recipe(
            [ClassifierArguments],
            argv[1:],
            prog="hfscratch curate train-classifier",
            description="Train a fastText quality classifier from reference text (positive) and samples (negative).",
        )
        print(json.dumps(train_classifier(args), indent=2))
        return 0

    from hfscratch.curation.pipeline import CurateArguments, run_curation

    (args,) = parse_recipe(
        [CurateArguments],
        argv,
        prog="hfscratch curate",
        description="Step 1a: curate text with datatrove: URL, language and quality filters, exact and MinHash "
        "de-duplication, PII redaction. `hfscratch curate train-classifier --help` trains the quality classifier.",
    )
    run_curation(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
