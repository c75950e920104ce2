"""Validation bits per character on tinyshakespeare after a wall-clock budget of training, against nanoGPT.

Trains `recipes/pretrain/shakespeare-cpu.yaml` with the kit's own step (`PretrainTrainer`, callbacks and all)
on the first 90% of ../shared/data/corpora/tinyshakespeare.txt and measures the last 10%, nanoGPT's split.
The BPE tokenizer is trained here on the training split only. Bits per character make tokenizers comparable:
validation loss in nats per token x tokens / characters / ln 2.

    python benchmarks/shakespeare.py [--seconds 68] [--tune]

`--tune` is for choosing the recipe: it trains on the first 90% of the training split and measures the rest,
so the real validation text is touched only by the final measurement. The reference on this 2-core machine:
nanoGPT's CPU Shakespeare recipe (character-level, 4 layers x 128) reaches 2.72 bits/char (1.886 nats/char)
in 68 s; a plain Llama-shaped model with a 2,048-token BPE and a hand-written bf16 loop 2.43 in 60 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from datasets import Dataset, DatasetDict, load_from_disk  # noqa: E402

from hfscratch.core.recipes import parse_recipe  # noqa: E402
from hfscratch.tokenization.arguments import TokenizeArguments  # noqa: E402
from hfscratch.tokenization.tokenizer import encoding_backend, train_tokenizer  # noqa: E402
from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments  # noqa: E402
from hfscratch.training.callbacks import WallClockBudget  # noqa: E402
from hfscratch.training.pretrain import build_trainer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NANOGPT_BITS_PER_CHAR, NANOGPT_SECONDS = 2.72, 68.0
TRAIN_FRACTION = 0.9  # nanoGPT's split: the first 90% of characters train, the last 10% validate


def split_text(text: str, tune: bool) -> tuple[str, str]:
    cut = int(len(text) * TRAIN_FRACTION)
    train, validation = text[:cut], text[cut:]
    if tune:  # hold out the end of the training split instead of the real validation text
        inner = int(len(train) * TRAIN_FRACTION)
        train, validation = train[:inner], train[inner:]
    return train, validation


def blocks(ids: list[int], block_size: int, pad_id: int) -> list[list[int]]:
    """The token stream cut into blocks; the last one padded (pads are masked out of the loss)."""
    padded = ids + [pad_id] * (-len(ids) % block_size)
    return np.asarray(padded, dtype=np.int32).reshape(-1, block_size).tolist()


def prepare_data(train: str, validation: str, out: Path, vocab_size: int, block_size: int) -> int:
    """Write a `hfscratch tokenize`-style folder (tokenizer/, packed/); return the validation token count."""
    settings = TokenizeArguments(corpus=str(out), vocab_size=vocab_size, min_frequency=2)
    # Training batches of lines: the BPE trainer counts words per string, so one 1 MB string would also do.
    tokenizer = train_tokenizer([train.splitlines(keepends=True)], settings)
    tokenizer.save_pretrained(out / "tokenizer")
    backend = encoding_backend(tokenizer)
    train_ids, validation_ids = (backend.encode(text, add_special_tokens=False).ids for text in (train, validation))
    DatasetDict(
        {
            "train": Dataset.from_dict({"input_ids": blocks(train_ids, block_size, tokenizer.pad_token_id)}),
            "validation": Dataset.from_dict({"input_ids": blocks(validation_ids, block_size, tokenizer.pad_token_id)}),
        }
    ).save_to_disk(str(out / "packed"))
    return len(validation_ids)


@torch.no_grad()
def nats_per_token(model: torch.nn.Module, validation: Dataset, pad_id: int, batch_size: int = 16) -> float:
    """Mean loss over every predicted validation token (the first token of each block has no context)."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(validation), batch_size):
        ids = torch.tensor(validation[start : start + batch_size]["input_ids"])
        labels = ids.masked_fill(ids == pad_id, -100)
        logits = model(input_ids=ids).logits[:, :-1].float()
        targets = labels[:, 1:]
        total += torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="sum"
        ).item()
        count += int((targets != -100).sum())
    return total / count


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=NANOGPT_SECONDS, help="training wall-clock budget")
    parser.add_argument("--recipe", default=str(REPO / "recipes/pretrain/shakespeare-cpu.yaml"))
    parser.add_argument("--text", default=str(REPO.parent / "shared/data/corpora/tinyshakespeare.txt"))
    parser.add_argument("--out", default=str(REPO / "runs/benchmarks/shakespeare"))
    parser.add_argument("--vocab_size", type=int, default=4096)
    parser.add_argument("--block_size", type=int, default=64)
    parser.add_argument("--tune", action="store_true", help="validate on the end of the training split")
    parser.add_argument("overrides", nargs="*", help="recipe overrides, after --: -- --learning_rate 3e-3")
    args = parser.parse_args(argv)
    if not Path(args.text).is_file():
        print(f"{args.text} not found (the tinyshakespeare text of ../shared)", file=sys.stderr)
        return 2

    started = time.perf_counter()
    train_text, validation_text = split_text(Path(args.text).read_text(encoding="utf-8"), args.tune)
    data_dir = Path(args.out) / "data"
    validation_tokens = prepare_data(train_text, validation_text, data_dir, args.vocab_size, args.block_size)
    recipe_args = [
        args.recipe,
        "--data_dir",
        str(data_dir),
        "--output_dir",
        str(Path(args.out) / "model"),
        *args.overrides,
    ]
    trainer = build_trainer(*parse_recipe([ModelArguments, DataArguments, PretrainingArguments], recipe_args, "bench"))
    budget = WallClockBudget(args.seconds)
    trainer.add_callback(budget)
    train_started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - train_started

    validation = load_from_disk(str(data_dir / "packed"))["validation"]
    nats = nats_per_token(trainer.model, validation, trainer.processing_class.pad_token_id)
    bits_per_char = nats * validation_tokens / len(validation_text) / math.log(2)
    result = {
        "split": "tune (end of the training split)" if args.tune else "validation (last 10%)",
        "bits_per_char": round(bits_per_char, 4),
        "nats_per_char": round(bits_per_char * math.log(2), 4),
        "nats_per_token": round(nats, 4),
        "chars_per_token": round(len(validation_text) / validation_tokens, 3),
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "steps": trainer.state.global_step,
        "cut_short_by_budget": budget.cut_short,
        "tokens_trained": trainer.state.num_input_tokens_seen,
        "parameters": trainer.model.num_parameters(),
        "nanogpt_bits_per_char": NANOGPT_BITS_PER_CHAR,
        "ratio_to_nanogpt": round(bits_per_char / NANOGPT_BITS_PER_CHAR, 3),
        "load_average_1min": round(os.getloadavg()[0], 2),  # other work on the machine slows a budgeted run
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
