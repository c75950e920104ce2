"""What both tokenization paths (`datasets` and the datatrove stages) agree on about a document: its split,
its default source tag, and how its text is encoded. Light to import: the datatrove workers import it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tokenizers import Tokenizer

SPLIT_SALT = b"hfscratch-split-v1"  # changing it reshuffles every corpus's split; keep it fixed


def is_validation(document_id: str, validation_fraction: float) -> bool:
    """Stable across runs, machines and Python processes (unlike `hash()`): a function of the id alone."""
    digest = hashlib.blake2b(document_id.encode("utf-8"), digest_size=8, key=SPLIT_SALT).digest()
    return int.from_bytes(digest, "big") / 2**64 < validation_fraction


def file_tag(path: Path) -> str:
    """The source tag of a file without tags: its name without suffixes (`web.jsonl.gz` -> `web`)."""
    return path.name.split(".")[0]


def as_plain_text(backend: Tokenizer) -> Tokenizer:
    """`backend` set to read special-token strings in documents as plain text, with no truncation or padding.

    A document that contains "<|end_of_text|>" must not end there: the markers that packing inserts would
    otherwise be forged by the data.
    """
    backend.encode_special_tokens = True
    backend.no_truncation()
    backend.no_padding()
    return backend
