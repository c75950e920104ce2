"""Fixtures of the tokenization tests."""

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture
def shared_benchmarks() -> Path:
    """`../shared/data/benchmarks` beside the checkout; skips where it is absent."""
    folder = SHARED_DATA / "benchmarks"
    if not folder.is_dir():
        pytest.skip(f"needs the benchmark mirrors in {folder}, absent on this machine")
    return folder
