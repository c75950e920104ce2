"""Fixtures of the fine-tuning and synthesis tests: the session's tiny pretrained model."""

from pathlib import Path

import pytest
from finetuning_helpers import tiny_base


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny pretrained model folder (config, safetensors, code, tokenizer); see finetuning_helpers."""
    return tiny_base(tmp_path_factory)
