"""Step 1b end to end: corpus -> (decontaminated) documents -> tokenizer -> packed train/validation blocks.

Every pass streams: documents are read into Arrow files batch by batch, the tokenizer trains from an
iterator, `Dataset.map` tokenizes batch by batch and packing carries only a partial block between batches.
The packed `DatasetDict` is saved in Arrow shards (`max_shard_size`) that `load_from_disk` memory-maps, so a
corpus larger than memory needs disk, not RAM, and the Trainer reads the blocks directly (or streams them
with `to_iterable_dataset(num_shards=...)`). Intermediate Arrow files live in a temporary folder under
`out` that is removed at the end.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from datasets import Dataset, DatasetDict
from datasets.utils.py_utils import convert_file_size_to_int

from hfscratch.core.allocator import check_loaded
from hfscratch.core.recipes import RecipeError
from hfscratch.tokenization.arguments import TokenizeArguments, check_paths
from hfscratch.tokenization.artifacts import TokenizeStats, finished_or_none, output_settings
from hfscratch.tokenization.corpus import curated_weights, load_documents
from hfscratch.tokenization.decontamination import build_benchmark_index, flag_documents
from hfscratch.tokenization.mixture import mixture_indices, resolve_weights
from hfscratch.tokenization.packing import (
    BLOCK_FEATURES,
    MAP_BATCH,
    is_validation,
    map_workers,
    pack,
    tokenize_documents,
)
from hfscratch.tokenization.stats import length_counts, plot_document_lengths, source_stats
from hfscratch.tokenization.tokenizer import encoding_backend, load_tokenizer, read_chat_template, train_tokenizer

logger = logging.getLogger("hfscratch.tokenize")
TRAINING_BATCH = 1000  # documents per batch handed to the tokenizer trainer


def run_tokenize(args: TokenizeArguments) -> TokenizeStats | None:
    """Write `out/tokenizer/`, `out/packed/`, `out/doc_lengths.png` and, last, `out/stats.json`; return the stats.
    With `executor: local | slurm` the datatrove stages write token shards instead (sharded.py); on Slurm the
    stages are submitted and None is returned.

    A folder that already holds a finished tokenization of the same settings is left as it is (and its stats
    returned); one of other settings is refused unless `overwrite` is set, so a rerun never changes a result.
    """
    check_paths(args)
    if args.executor != "datasets":
        from hfscratch.tokenization.sharded import run_sharded_tokenize  # datatrove: only for this path

        return run_sharded_tokenize(args)
    finished = finished_or_none(args)
    if finished is not None:
        return finished
    allocator = check_loaded(args.allocator)  # this process encodes: `hfscratch tokenize` started it with one
    tokenizer = load_tokenizer(args.tokenizer) if args.tokenizer else None
    if tokenizer is not None and args.last_block == "pad" and tokenizer.pad_token_id is None:
        raise RecipeError(f"key 'tokenizer': {args.tokenizer!r} has no pad token; set last_block: drop")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stats: dict = {"corpus": args.corpus}
    with tempfile.TemporaryDirectory(dir=out, prefix=".cache-") as cache:
        corpus = load_documents(Path(args.corpus), args.text_sample_by, Path(cache), args.workers())
        documents = corpus.documents
        if corpus.skipped:
            counts = ", ".join(f"{n:,} {reason}" for reason, n in sorted(corpus.skipped.items()))
            logger.warning(f"skipped {counts} in {args.corpus}, e.g. {'; '.join(corpus.skipped_examples[:2])}")
        weights = resolve_weights(documents.unique("source"), args.mixture, curated_weights(Path(args.corpus)))
        if args.decontaminate != "none":
            documents, stats["decontamination"] = decontaminate(documents, args)
            (out / "decontamination.json").write_text(json.dumps(stats["decontamination"], indent=2))
        if tokenizer is None:
            tokenizer = train_tokenizer(training_texts(documents, args), args)
        if args.chat_template is not None:
            tokenizer.chat_template = read_chat_template(args.chat_template)
        tokenizer.save_pretrained(out / "tokenizer")
        stats["tokenizer"] = {"path": str(out / "tokenizer"), "type": args.tokenizer_type, "vocab_size": len(tokenizer)}

        tokenized = tokenize_documents(
            documents, encoding_backend(tokenizer), tokenizer.eos_token_id, args.validation_fraction, args.workers()
        )
        # One row per document (tens of bytes, not its text): what the split, mixture and stats need.
        table = tokenized.select_columns(["source", "num_tokens", "num_chars", "is_validation"]).to_pandas()
        table["stream_tokens"] = table["num_tokens"] + 1  # the document's tokens and its EOS
        splits = epoch_rows(table, weights, args.seed)
        figures = {name: split_stats(table["stream_tokens"].to_numpy()[rows], args) for name, rows in splits.items()}
        pad_token_id = tokenizer.pad_token_id if args.last_block == "pad" else None
        packed = DatasetDict(
            {
                name: pack(tokenized.select(rows), args.block_size, pad_token_id, cache)
                if figures[name]["blocks"]
                else Dataset.from_dict({"input_ids": []}, features=BLOCK_FEATURES)  # too few tokens for a block
                for name, rows in splits.items()
            }
        )
        packed.save_to_disk(str(out / "packed"), num_shards=shard_counts(packed, args.max_shard_size))

    epoch_tokens = table.iloc[splits["train"]].groupby("source")["stream_tokens"].sum()
    lengths = {tag: length_counts(rows["num_tokens"]) for tag, rows in table.groupby("source")}
    plot_document_lengths(lengths, out / "doc_lengths.png")
    result = TokenizeStats(
        corpus=stats["corpus"],
        tokenizer=stats["tokenizer"],
        documents=len(table),
        block_size=args.block_size,
        last_block=args.last_block,
        train=figures["train"],
        validation=figures["validation"],
        sources=source_stats(table, weights, {tag: int(t) for tag, t in epoch_tokens.items()}),
        skipped=corpus.skipped,
        skipped_examples=corpus.skipped_examples,
        decontamination=stats.get("decontamination"),
        settings=output_settings(args),
        allocator=allocator,
    )
    result.write(out)  # last: the folder is complete
    return result


def epoch_rows(table: pd.DataFrame, weights: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Rows of each split in packing order: training rows mixed by weight, validation rows once, in order."""
    validation = table["is_validation"].to_numpy()
    train = np.flatnonzero(~validation)
    sources, tokens = table["source"].to_numpy()[train], table["stream_tokens"].to_numpy()[train]
    return {"train": train[mixture_indices(sources, tokens, weights, seed)], "validation": np.flatnonzero(validation)}


def shard_counts(packed: DatasetDict, max_shard_size: str) -> dict[str, int]:
    """Shards of at most `max_shard_size` per split, and one for an empty split (which datasets would give 0)."""
    limit = convert_file_size_to_int(max_shard_size)
    return {name: max(1, min(len(split), math.ceil(split.data.nbytes / limit))) for name, split in packed.items()}


def split_stats(document_tokens: np.ndarray, args: TokenizeArguments) -> dict:
    """Documents, stream tokens and blocks of one split, with where the tail went."""
    tokens = int(document_tokens.sum())
    tail = tokens % args.block_size
    padded = args.last_block == "pad" and tail > 0
    return {
        "documents": len(document_tokens),
        "tokens": tokens,
        "blocks": tokens // args.block_size + padded,
        "padding_tokens": args.block_size - tail if padded else 0,
        "dropped_tokens": tail if args.last_block == "drop" else 0,
    }


def training_texts(
    documents: Dataset, args: TokenizeArguments, batch_size: int = TRAINING_BATCH
) -> Iterator[list[str]]:
    """Batches of training-split texts for the tokenizer trainer (validation text stays unseen)."""
    remaining = args.tokenizer_max_documents or len(documents)
    for batch in documents.select_columns(["text", "id"]).iter(batch_size=batch_size):
        texts = [t for t, i in zip(batch["text"], batch["id"]) if not is_validation(i, args.validation_fraction)]
        yield texts[:remaining]
        remaining -= len(texts[:remaining])
        if remaining <= 0:
            return


def decontaminate(documents: Dataset, args: TokenizeArguments) -> tuple[Dataset, dict]:
    """Flag documents sharing n-grams with benchmark items; drop them if the recipe says `remove`."""
    index = build_benchmark_index(args.benchmarks, args.benchmarks_dir, args.ngram_size, args.min_item_words)
    flagged, report = flag_documents(documents, index, map_workers(len(documents), args.workers()), MAP_BATCH)
    if args.decontaminate == "remove":
        flagged = flagged.filter(lambda matches: not matches, input_columns="contamination")
        if len(flagged) == 0:
            raise RecipeError(f"key 'decontaminate': every document of {args.corpus} is contaminated; none is left")
    return flagged.remove_columns("contamination"), {"action": args.decontaminate, **report.to_dict()}
