"""What both tokenization paths (`datasets` and the datatrove stages) agree on about a document: its split,
its default source tag, and how its text is encoded. Light to import: the datatrove workers import it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tokenizers import Tokenizer

SPLIT_SALT = b"hfscratch-split-v1"  # changing it reshuffles every corpus's split; keep it fixed
PARALLELISM = "TOKENIZERS_PARALLELISM"
RAYON_THREADS = "RAYON_NUM_THREADS"


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


@contextmanager
def encoder_threads(threads: int) -> Iterator[None]:
    """The Rust encoder on `threads` threads while the block runs: rayon's pool for more than one, none for one.

    A process gets the cores it has to itself, not every core of the machine: two processes with a thread per
    core each ran at 0.55M tokens/s apiece on 2 cores, one thread each at 0.75M. rayon sizes its pool from
    RAYON_NUM_THREADS at the process's first parallel encode (a fresh worker's; later changes are ignored).
    `tokenizers` reads TOKENIZERS_PARALLELISM at every call. A `Dataset.map` with `num_proc` sets it to false
    for its forked workers and restores only Python's copy of the environment, so without this the encoder
    would stay on one core for the rest of the process.
    """
    settings = {PARALLELISM: "true" if threads > 1 else "false", RAYON_THREADS: str(threads) if threads > 1 else None}
    before = {name: os.environ.get(name) for name in settings}
    set_environment(settings)
    try:
        yield
    finally:
        set_environment(before)


def set_environment(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
