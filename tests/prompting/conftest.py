"""Fixtures of the prompting tests: the tiny pretrained model of tests/finetuning, built once per session."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "finetuning"))  # finetuning_helpers
from finetuning_helpers import tiny_base  # noqa: E402


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_base(tmp_path_factory)
