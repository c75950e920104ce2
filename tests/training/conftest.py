"""Fixtures of the pretraining tests: a small packed corpus made here, and the commands that train on it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from training_helpers import make_packed_corpus


@pytest.fixture(scope="session")
def packed_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `hfscratch tokenize` output folder (tokenizer/ + packed/ train and validation) of synthetic text."""
    return make_packed_corpus(tmp_path_factory.mktemp("corpus"), random.Random(0))
