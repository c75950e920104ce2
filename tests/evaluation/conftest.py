"""Fixtures of the evaluation tests: a tokenize folder of synthetic documents, a random and a trained tiny model.

The documents follow six cyclic word sequences (weekdays, months, colours, ...), one per document, so a model
that learned the corpus predicts a continuation from its context, and the domain benchmark has an answer a
trained model can find and a random one cannot. Everything is built once per session, in seconds.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

CYCLES = [
    "monday tuesday wednesday thursday friday saturday sunday".split(),
    "january february march april may june july august september october november december".split(),
    "red orange yellow green blue indigo violet".split(),
    "one two three four five six seven eight nine ten".split(),
    "north east south west".split(),
    "spring summer autumn winter".split(),
]


def cycle_document(rng: random.Random, words: int = 320) -> str:
    cycle = rng.choice(CYCLES)
    start = rng.randrange(len(cycle))
    return " ".join(cycle[(start + i) % len(cycle)] for i in range(words))


@pytest.fixture(scope="session")
def tokenized_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `hfscratch tokenize` output folder: 240 documents, 20% held out, a 400-token BPE, 64-token blocks."""
    from hfscratch.tokenization.arguments import TokenizeArguments
    from hfscratch.tokenization.pipeline import run_tokenize

    folder = tmp_path_factory.mktemp("eval-corpus")
    rng = random.Random(0)
    corpus = folder / "corpus.jsonl"
    import json

    corpus.write_text("".join(json.dumps({"id": f"doc{i}", "text": cycle_document(rng)}) + "\n" for i in range(240)))
    out = folder / "tokenized"
    run_tokenize(
        TokenizeArguments(
            corpus=str(corpus), out=str(out), vocab_size=400, block_size=64, validation_fraction=0.2, num_proc=1
        )
    )
    return out


def tiny_config(tokenizer, **overrides):
    from hfscratch.models.hfscratch import HFScratchConfig

    fields = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return HFScratchConfig.from_preset("llama", size="tiny", **{**fields, **overrides})


def save_model(model, tokenizer, folder: Path) -> Path:
    model.register_for_auto_class("AutoModelForCausalLM")
    model.config.register_for_auto_class()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory: pytest.TempPathFactory, tokenized_corpus: Path) -> Path:
    """A randomly initialised tiny model folder (seeded), with the corpus's tokenizer."""
    from transformers import AutoTokenizer

    from hfscratch.models.hfscratch import HFScratchForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenized_corpus / "tokenizer")
    torch.manual_seed(0)
    model = HFScratchForCausalLM(tiny_config(tokenizer))
    return save_model(model, tokenizer, tmp_path_factory.mktemp("random-model"))


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory: pytest.TempPathFactory, tokenized_corpus: Path) -> Path:
    """The same tiny model trained for 80 AdamW steps on the corpus's training blocks."""
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    from hfscratch.models.hfscratch import HFScratchForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenized_corpus / "tokenizer")
    blocks = torch.tensor(load_from_disk(str(tokenized_corpus / "packed"))["train"]["input_ids"])
    torch.manual_seed(0)
    model = HFScratchForCausalLM(tiny_config(tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(80):
        batch = blocks[torch.randint(len(blocks), (8,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    return save_model(model, tokenizer, tmp_path_factory.mktemp("trained-model"))


@pytest.fixture(scope="session")
def benchmarks_dir() -> Path:
    """`../shared/data/benchmarks` (the four benchmark mirrors); skips where absent."""
    folder = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "benchmarks"
    if not folder.is_dir():
        pytest.skip(f"needs the benchmark mirrors in {folder}, absent on this machine")
    return folder
