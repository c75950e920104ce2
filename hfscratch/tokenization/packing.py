"""Document-level train/validation split, tokenization, and packing into fixed-length blocks.

Packing concatenates documents, each followed by EOS, into one token stream and cuts it into blocks of
`block_size`, so no compute goes to padding and a document may span blocks. Each token of the stream lands
in exactly one block: the stream is carried over from one batch of documents to the next, and only the
tail after the last full block is left; it is padded into one more block (the causal-LM collator masks pad
labels, so those positions cost no loss) or dropped, and counted either way.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, Features, List, Value
from datasets.arrow_writer import ArrowWriter
from tokenizers import Tokenizer

from hfscratch.tokenization.documents import encoder_threads, is_validation

BLOCK_FEATURES = Features({"input_ids": List(Value("int32"))})
READ_BATCH = 4096  # documents per Arrow batch read while packing
MAP_BATCH = 1000  # documents per batch of a Dataset.map


def tokenize_batch(batch: pa.Table, backend: Tokenizer, eos_token_id: int, validation_fraction: float) -> pa.Table:
    """`Dataset.map(batched=True)` body on Arrow batches: each document's source, token ids with EOS
    appended, length in tokens (without EOS) and characters, and split.

    Arrow in and out: datasets would otherwise check every token of Python lists one by one (30% slower).
    """
    texts = batch.column("text")
    encodings = backend.encode_batch_fast(texts.to_pylist(), add_special_tokens=False)
    return pa.table(
        {
            "source": batch.column("source"),
            "input_ids": pa.array([e.ids + [eos_token_id] for e in encodings], type=pa.list_(pa.int32())),
            "num_tokens": pa.array([len(e.ids) for e in encodings], type=pa.int64()),
            "num_chars": pc.utf8_length(texts).cast(pa.int64()),
            "is_validation": [is_validation(i, validation_fraction) for i in batch.column("id").to_pylist()],
        }
    )


def map_workers(num_documents: int, num_proc: int) -> int | None:
    """Worker processes for a batched `Dataset.map` in Python (decontamination): none without a batch to do
    (each costs a fork)."""
    workers = min(num_proc, math.ceil(num_documents / MAP_BATCH))
    return workers if workers > 1 else None


def tokenize_documents(
    documents: Dataset, backend: Tokenizer, eos_token_id: int, validation_fraction: float, num_proc: int
) -> Dataset:
    """Tokenize in this process, each batch encoded on `num_proc` > 1 cores by the encoder's threads.

    Forked `Dataset.map` workers would each start a process and pickle their batches, and datasets switches
    the encoder's threads off in them: on 2 cores that path was 1.4x slower (benchmarks/tokenize_throughput.py).
    """
    with encoder_threads(num_proc):
        tokenized = documents.with_format("arrow").map(
            tokenize_batch,
            batched=True,
            batch_size=MAP_BATCH,
            fn_kwargs={"backend": backend, "eos_token_id": eos_token_id, "validation_fraction": validation_fraction},
            desc="tokenize",
        )
    return tokenized.with_format(None)


def block_tables(
    documents: Dataset, block_size: int, pad_token_id: int | None, read_batch: int = READ_BATCH
) -> Iterator[pa.Table]:
    """The blocks of the documents' `input_ids`, in order, as Arrow tables of `input_ids` rows.

    `pad_token_id` None drops the tail that does not fill a last block; otherwise it is padded. The blocks are
    offsets into the concatenated stream (numpy to Arrow, no Python list of tokens): 6x faster than lists.
    """
    carry = np.empty(0, dtype=np.int32)
    for table in documents.select_columns(["input_ids"]).with_format("arrow").iter(batch_size=read_batch):
        stream = np.concatenate([carry, table.column("input_ids").combine_chunks().flatten().to_numpy()])
        full = len(stream) - len(stream) % block_size
        if full:
            yield blocks_table(stream[:full], block_size)
        carry = stream[full:]
    if len(carry) and pad_token_id is not None:
        yield blocks_table(np.pad(carry, (0, block_size - len(carry)), constant_values=pad_token_id), block_size)


def blocks_table(stream: np.ndarray, block_size: int) -> pa.Table:
    offsets = np.arange(0, len(stream) + 1, block_size, dtype=np.int32)
    return pa.table({"input_ids": pa.ListArray.from_arrays(offsets, pa.array(stream, type=pa.int32()))})


def pack(documents: Dataset, block_size: int, pad_token_id: int | None, cache_dir: str) -> Dataset:
    """The documents' blocks as a memory-mapped Dataset, written batch by batch to an Arrow file in `cache_dir`."""
    path = os.path.join(cache_dir, f"blocks-{uuid.uuid4().hex}.arrow")
    with ArrowWriter(features=BLOCK_FEATURES, path=path) as writer:
        for table in block_tables(documents, block_size, pad_token_id):
            writer.write_table(table)
        writer.finalize()
    return Dataset.from_file(path)
