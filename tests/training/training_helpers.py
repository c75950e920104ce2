"""Helpers of the pretraining tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
HFSCRATCH = VENV_BIN / "hfscratch"  # the console script of this environment
OFFLINE = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}

NOUNS = ["cat", "dog", "king", "queen", "ship", "river", "garden", "letter", "sword", "house"]
VERBS = ["sees", "loves", "finds", "keeps", "builds", "writes", "leaves", "takes"]
ADJECTIVES = ["old", "red", "quiet", "bright", "small", "brave"]


def sentence(rng: random.Random) -> str:
    return f"The {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(VERBS)} the {rng.choice(NOUNS)}."


def make_packed_corpus(folder: Path, rng: random.Random, documents: int = 400) -> Path:
    """Train a 300-token BPE on a grammar's sentences and pack them into 64-token blocks with `hfscratch tokenize`."""
    from hfscratch.tokenization.arguments import TokenizeArguments
    from hfscratch.tokenization.pipeline import run_tokenize

    text = folder / "text.txt"
    text.write_text("\n\n".join(" ".join(sentence(rng) for _ in range(rng.randint(2, 6))) for _ in range(documents)))
    out = folder / "tokenized"
    run_tokenize(
        TokenizeArguments(
            corpus=str(text), out=str(out), vocab_size=300, block_size=64, validation_fraction=0.1, num_proc=1
        )
    )
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pretrain_command(recipe_args: list[str], launcher: list[str] | None = None) -> list[str]:
    """`python -m hfscratch.training.pretrain ARGS`, or the same under a launcher such as torchrun."""
    entry = ["-m", "hfscratch.training.pretrain", *recipe_args]
    return [*launcher, *entry] if launcher else [sys.executable, *entry]


def torchrun(nproc: int = 2) -> list[str]:
    return [str(VENV_BIN / "torchrun"), f"--nproc_per_node={nproc}", f"--master_port={free_port()}"]


def clean_env() -> dict[str, str]:
    """This environment, offline, without the ACCELERATE_* variables an in-process Trainer may have set."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ACCELERATE_")}
    return {**env, **OFFLINE, "OMP_NUM_THREADS": "1"}


def run(command: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stderr[-4000:]}"
    return result


def write_recipe(path: Path, data_dir: Path, output_dir: Path, **keys) -> Path:
    """A pretrain recipe for a 2-layer, 64-wide Llama on the test corpus; `keys` add or replace keys."""
    recipe = {
        "data_dir": str(data_dir),
        "output_dir": str(output_dir),
        "model_preset": "llama",
        "config_overrides": "hidden_size=64,num_hidden_layers=2,num_attention_heads=2",
        "use_cpu": True,
        "per_device_train_batch_size": 4,
        "learning_rate": 3e-3,
        "warmup_steps": 2,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "seed": 1,
        "disable_tqdm": True,
        **keys,
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


def logged(output_dir: Path, key: str) -> dict[int, float]:
    """Step -> value of `key` in the run's log history (trainer_state.json)."""
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    return {row["step"]: row[key] for row in history if key in row}


EVAL_BLOCKS = 32  # full blocks only (no padding): every evaluation batch then weighs the same


def validation_loss(model: Any, corpus: Path) -> float:
    import torch
    from datasets import load_from_disk

    blocks = torch.tensor(load_from_disk(str(corpus / "packed"))["validation"]["input_ids"][:EVAL_BLOCKS])
    with torch.no_grad():
        return model(input_ids=blocks, labels=blocks).loss.item()


def check_trained_and_reloadable(out: Path, corpus: Path, steps: int) -> None:
    """A multi-process run trained (its loss fell) and its folder reloads with the trained validation loss."""
    import pytest
    from transformers import AutoModelForCausalLM

    losses = list(logged(out, "loss").values())
    assert len(losses) == steps
    assert sum(losses[-3:]) / 3 < losses[0] - 0.5, losses  # it learned
    model = AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True).eval()  # the code saved with it
    assert validation_loss(model, corpus) == pytest.approx(logged(out, "eval_loss")[steps], rel=1e-5)
