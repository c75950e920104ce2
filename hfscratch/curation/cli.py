"""`hfscratch curate RECIPE.yaml [--key value ...]` and `hfscratch curate train-classifier ...`: parse, call, print.

datatrove is imported by the step itself, after the arguments parse, so `--help` stays cheap.
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
    stats = run_curation(args)
    if stats is not None:
        kept = sum(source["documents_kept"] for source in stats["sources"].values())
        print(f"Curated {kept:,} documents in {stats['wall_time_s']:,.1f} s -> {args.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
