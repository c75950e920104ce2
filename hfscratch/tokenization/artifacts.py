"""`stats.json` of a tokenize output folder: what the step produced, read back by training's lineage, the model
card, evaluation and the quickstart. Written last: its presence means the folder is complete."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from hfscratch.core.artifacts import Artifact
from hfscratch.core.recipes import RecipeError
from hfscratch.curation.executors import SlurmOptions
from hfscratch.tokenization.arguments import TokenizeArguments

logger = logging.getLogger("hfscratch.tokenize")


@dataclass
class TokenizeStats(Artifact):
    FILE: ClassVar[str] = "stats.json"
    SCHEMA_VERSION: ClassVar[int] = 1

    corpus: str
    tokenizer: dict[str, Any]  # path, type, vocab_size
    documents: int
    block_size: int
    last_block: str
    train: dict[str, Any]  # documents, tokens, blocks, ... of the split (tokenization.pipeline.split_stats)
    validation: dict[str, Any]
    sources: dict[str, dict[str, Any]]  # per source tag: documents, tokens, weight, shares
    skipped: dict[str, int] = field(default_factory=dict)  # records not tokenized, by reason
    skipped_examples: list[str] = field(default_factory=list)  # FILE:LINE: reason, the first few
    decontamination: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # the recipe's values that decide the output
    allocator: str | None = None  # the C allocator the documents were encoded with (core/allocator.py)


def finished_or_none(args: TokenizeArguments) -> TokenizeStats | None:
    """The stats of a finished tokenization of the same settings in `out`, left as it is; None (and the old
    stats.json removed) if there is none or `overwrite` is set; a `RecipeError` for one of other settings."""
    settings = output_settings(args)
    finished = TokenizeStats.read_or_none(args.out)
    if finished is not None and not args.overwrite:
        if finished.settings == settings:
            logger.warning(f"{args.out} already holds this tokenization (stats.json): left as it is")
            return finished
        changed = sorted(
            k for k in settings.keys() | finished.settings.keys() if settings.get(k) != finished.settings.get(k)
        )
        raise RecipeError(
            f"key 'out': {args.out} holds a tokenization with other settings ({', '.join(changed)}); "
            "choose another out, or --overwrite true to replace it"
        )
    TokenizeStats.path(args.out).unlink(missing_ok=True)  # the folder is incomplete until it is written again
    return None


# Where the output goes and how it is run, not what it is; the executor and its tasks decide token shards.
RUN_KEYS = ("out", "num_proc", "overwrite", "allocator", *(f.name for f in dataclasses.fields(SlurmOptions)))


def output_settings(args: TokenizeArguments) -> dict:
    """The recipe values that decide the output (not where it goes or how many workers make it)."""
    ignored = RUN_KEYS + (("executor", "tasks") if args.executor == "datasets" else ())
    return {key: value for key, value in dataclasses.asdict(args).items() if key not in ignored}
