"""Fixtures of the hub tests: one real tiny run for the whole session, copied for tests that write into it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_test_helpers import copy_model, make_tiny_run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model folder of a real curate -> tokenize -> pretrain run (read-only: use `model_dir` to write)."""
    return make_tiny_run(tmp_path_factory.mktemp("run"))


@pytest.fixture
def model_dir(tiny_run: Path, tmp_path: Path) -> Path:
    return copy_model(tiny_run, tmp_path / "model")
