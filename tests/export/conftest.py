"""Fixtures of the export tests: a byte-level BPE trained on text with accents, CJK and emoji, and tiny model
folders with it (`export_helpers.build_model_dir`), each built in about a second.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
from export_helpers import build_model_dir, corpus


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kit's byte-level BPE (`train_tokenizer`), 320 tokens."""
    from hfscratch.tokenization.arguments import TokenizeArguments
    from hfscratch.tokenization.tokenizer import train_tokenizer

    folder = tmp_path_factory.mktemp("tokenizer")
    tokenizer = train_tokenizer([corpus(random.Random(0))], TokenizeArguments(corpus="-", out="-", vocab_size=320))
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    """The shared model folder (read-only: tests write their .gguf files elsewhere)."""
    return build_model_dir(tmp_path_factory.mktemp("model"), tokenizer_dir)


@pytest.fixture
def make_model_dir(tmp_path: Path, tokenizer_dir: Path) -> Callable[..., Path]:
    """A model folder with config fields overridden (e.g. tie_word_embeddings=True)."""

    def make(**overrides) -> Path:
        return build_model_dir(tmp_path / "model", tokenizer_dir, **overrides)

    return make
