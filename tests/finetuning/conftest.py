"""Fixtures of the fine-tuning and synthesis tests: the session's tiny pretrained model, grammar-task data, and
one full SFT run that the DPO tests start from (SFT, then DPO, as a chat model is made)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from finetuning_helpers import grammar_task, run_finetune_cli, tiny_base, write_jsonl


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny pretrained model folder (config, safetensors, code, tokenizer); see finetuning_helpers."""
    return tiny_base(tmp_path_factory)


@pytest.fixture(scope="session")
def instruction_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("instructions")
    rng = random.Random(1)
    train = write_jsonl(folder / "train.jsonl", [grammar_task(rng) for _ in range(192)])
    # the validation set mixes both record shapes: chat records go through the same template
    validation = [grammar_task(rng) for _ in range(48)]
    validation[:8] = [
        {
            "messages": [
                {"role": "user", "content": f"{r['instruction']}\n\n{r['input']}"},
                {"role": "assistant", "content": r["output"]},
            ]
        }
        for r in validation[:8]
    ]
    return train, write_jsonl(folder / "validation.jsonl", validation)


@pytest.fixture(scope="session")
def full_sft(tiny_base_model: Path, instruction_files, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`hfscratch finetune --method full` (packed, assistant-only loss) on the grammar tasks."""
    train, validation = instruction_files
    out = tmp_path_factory.mktemp("sft") / "full"
    return run_finetune_cli(
        out, "--method", "full", "--model_name_or_path", str(tiny_base_model), "--train_file", str(train),
        "--validation_file", str(validation), "--learning_rate", "3e-3", "--num_train_epochs", "4",
        "--per_device_train_batch_size", "4", "--max_length", "256",
    )  # fmt: skip
