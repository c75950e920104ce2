"""Packing and the document split, unit by unit."""

from __future__ import annotations

import random

import numpy as np
import pytest
from datasets import Dataset

from hfscratch.tokenization.arguments import TokenizeArguments
from hfscratch.tokenization.packing import block_tables, is_validation, map_workers
from hfscratch.tokenization.pipeline import training_texts

PAD = -1


def token_documents(count: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(1000) for _ in range(rng.randint(1, 40))] for _ in range(count)]


@pytest.mark.parametrize("pad_token_id", [PAD, None], ids=["pad", "drop"])
@pytest.mark.parametrize("read_batch", [1, 7, 4096])
def test_each_token_lands_in_exactly_one_block_in_order(pad_token_id, read_batch):
    documents = token_documents(101, seed=0)
    stream = [t for doc in documents for t in doc]
    blocks = [
        b
        for table in block_tables(Dataset.from_dict({"input_ids": documents}), 16, pad_token_id, read_batch)
        for b in table.column("input_ids").to_pylist()
    ]
    assert {len(b) for b in blocks} == {16}
    packed = [t for b in blocks for t in b if t != PAD]
    tail = len(stream) % 16
    assert tail, "the test needs a partial last block"
    if pad_token_id is None:
        assert packed == stream[: len(stream) - tail]  # only the counted tail is dropped
    else:
        assert packed == stream
        assert blocks[-1].count(PAD) == 16 - tail


def test_packing_follows_a_row_selection_with_repeats():
    documents = token_documents(20, seed=1)
    rows = [3, 3, 0, 19, 7]
    selected = Dataset.from_dict({"input_ids": documents}).select(rows)
    tables = block_tables(selected, 8, PAD, read_batch=2)
    packed = [t for table in tables for b in table.column("input_ids").to_pylist() for t in b if t != PAD]
    assert packed == [t for row in rows for t in documents[row]]


def test_split_is_a_fixed_function_of_the_document_id():
    # Golden values: the same on every machine and Python process (hash() would change per process).
    assert [i for i in range(40) if is_validation(f"doc-{i}", 0.3)] == [3, 5, 6, 12, 21, 32, 36, 38, 39]
    held_out = np.mean([is_validation(f"doc-{i}", 0.1) for i in range(20_000)])
    assert held_out == pytest.approx(0.1, abs=0.01)
    assert not any(is_validation(f"doc-{i}", 0.0) for i in range(1000))


def test_map_workers_only_where_there_are_batches():
    assert map_workers(10, 2) is None
    assert map_workers(1500, 2) == 2
    assert map_workers(10**6, 1) is None


def test_tokenizer_trains_on_training_documents_only_and_at_most_the_cap():
    ids = [f"doc-{i}" for i in range(40)]
    documents = Dataset.from_dict({"text": [f"text of {i}" for i in ids], "id": ids})
    args = TokenizeArguments(corpus=".", validation_fraction=0.3, tokenizer_max_documents=25)
    texts = [text for batch in training_texts(documents, args, batch_size=7) for text in batch]
    assert texts == [f"text of {i}" for i in ids if not is_validation(i, 0.3)][:25]
