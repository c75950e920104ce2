"""Test-suite settings: nothing may wait on a network, shared data is optional, the longest files run first."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Set before anything imports huggingface_hub, datasets or transformers (they read these at import time).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The suite's own --help cache (hfscratch/core/help_cache.py), never the user's; removed when the run ends.
os.environ["HFSCRATCH_CACHE"] = tempfile.mkdtemp(prefix="hfscratch-test-cache-")
atexit.register(shutil.rmtree, os.environ["HFSCRATCH_CACHE"], ignore_errors=True)

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

# The longest files first (test_readme takes about 14 minutes): under `-n auto` each worker takes whole files in
# collection order (pyproject's addopts), so a long file started last would leave the other workers idle.
LONGEST_FIRST = [
    "test_readme.py",
    "test_quickstart.py",
    "test_compiled_training.py",
    "test_distributed.py",
    "test_fsdp2.py",
    "test_finetune_dpo.py",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture
def shared_data() -> Path:
    """`../shared/data` beside the checkout (benchmark mirrors, corpora); skips where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data folder {SHARED_DATA}, absent on this machine")
    return SHARED_DATA
