"""`stats.json` of a tokenize output folder: what the step produced, read back by training's lineage, the model
card, evaluation and the quickstart. Written last: its presence means the folder is complete."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from hfscratch.core.artifacts import Artifact


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
