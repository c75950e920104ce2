"""`hfscratch tokenize RECIPE.yaml [--key value ...]`: train a tokenizer and pack the corpus into blocks."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from hfscratch.core.allocator import restart_with
from hfscratch.core.recipes import parse_recipe
from hfscratch.tokenization.arguments import TokenizeArguments
from hfscratch.tokenization.artifacts import TokenizeStats


def summarize(stats: TokenizeStats) -> str:
    """A few lines for the terminal; stats.json has everything."""
    tokenizer = stats.tokenizer
    lines = [
        f"tokenizer: {tokenizer['path']} ({tokenizer['type']}, {tokenizer['vocab_size']:,} tokens)",
        f"documents: {stats.documents:,}; blocks of {stats.block_size} tokens: "
        + ", ".join(f"{split} {getattr(stats, split)['blocks']:,}" for split in ("train", "validation")),
    ]
    if stats.skipped:
        lines.append("skipped: " + ", ".join(f"{n:,} {reason}" for reason, n in sorted(stats.skipped.items())))
    for tag, source in stats.sources.items():
        mixture = (
            f"weight {source['weight']}, share {source['realised_share']:.2%} "
            f"(requested {source['requested_share']:.2%})"
            if source["weight"] is not None  # token shards are mixed at load time, by the pretraining recipe
            else f"{source['realised_share']:.2%} of training tokens, mixed at load time (data_mixture)"
        )
        lines.append(
            f"  {tag}: {source['documents']:,} docs, {source['tokens']:,} tokens, "
            f"{source['characters_per_token']} chars/token, {mixture}"
        )
    for name, report in (stats.decontamination or {}).get("benchmarks", {}).items():
        lines.append(
            f"  {name}: {report['documents_flagged']:,} documents flagged, {report['ngram_hits']:,} n-gram hits, "
            f"{report['items_found']:,} of {report['items']:,} items found"
        )
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    (args,) = parse_recipe(
        [TokenizeArguments],
        argv,
        prog="hfscratch tokenize",
        description="Step 1b: train a BPE tokenizer, decontaminate, and pack the corpus into train/validation blocks.",
    )
    # Started again under the allocator asked for (core/allocator.py) before any work: it cannot change later.
    restart_with(args.allocator, argv)
    from hfscratch.tokenization.pipeline import run_tokenize  # datasets, tokenizers: only once a run starts

    stats = run_tokenize(args)
    if stats is not None:  # None: submitted to Slurm, and the merge job writes stats.json
        print(summarize(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
