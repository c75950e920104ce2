"""Validation bits per character on tinyshakespeare after a wall-clock budget of training, against nanoGPT.

Trains `recipes/pretrain/shakespeare-cpu.yaml` with the kit's own step (`PretrainTrainer`, callbacks and all)
on the first 90% of ../shared/data/corpora/tinyshakespeare.txt and measures the last 10%, nanoGPT's split.
The BPE tokenizer is trained here on the training split only. Bits per character make tokenizers comparable:
validation loss in nats per token x tokens / characters / ln 2. The text's blank-line paragraphs (Shakespeare's
speeches) are its documents, each followed by EOS, so that `document_masking` has boundaries to mask; the EOS
tokens are scored like any other, so the count stays that of the whole text.

    python benchmarks/shakespeare.py [--seconds 68] [--tune] [--corpus FILE]
    python benchmarks/shakespeare.py --against_nanogpt /tmp/nanogpt [--corpus FILE]

`--against_nanogpt PATH` (a checkout of karpathy/nanoGPT) runs nanoGPT's CPU Shakespeare recipe on the same split
first (its data written here as its prepare.py would), scores its checkpoint on the whole validation text in
64-character blocks (as ours is scored in 64-token blocks: every block's first token is not predicted), then trains
ours for nanoGPT's wall time, with and without document masking and compile, and prints one table. The learning-rate
schedule follows the clock (`TimeBudget`): warmup and decay complete at the deadline whatever the machine's load.

`--tune` is for choosing the recipe: it trains on the first 90% of the training split and measures the rest,
so the real validation text is touched only by the final measurement.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import re
import subprocess
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
from hfscratch.training.budget import TimeBudget  # noqa: E402
from hfscratch.training.optim import cpu_has_native_bf16  # noqa: E402
from hfscratch.training.pretrain import build_trainer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NANOGPT_SECONDS = 68.0  # its CPU recipe's wall time on a quiet machine of this kind: the default budget
TRAIN_FRACTION = 0.9  # nanoGPT's split: the first 90% of characters train, the last 10% validate
# nanoGPT's CPU Shakespeare recipe, as its README gives it for a laptop, at the 4x128 size
NANOGPT_RECIPE = [
    "config/train_shakespeare_char.py",
    "--device=cpu",
    "--compile=False",
    "--eval_iters=20",
    "--log_interval=1",
    "--block_size=64",
    "--batch_size=12",
    "--n_layer=4",
    "--n_head=4",
    "--n_embd=128",
    "--max_iters=2000",
    "--lr_decay_iters=2000",
    "--dropout=0.0",
]
# Our variants of the side-by-side table: recipe overrides (both settings spelled out, whatever the recipe says).
VARIANTS = {
    "ours": ["--document_masking", "false", "--torch_compile", "false"],
    "ours + document masking": ["--document_masking", "true", "--torch_compile", "false"],
    "ours + compile": ["--document_masking", "false", "--torch_compile", "true"],
    "ours + document masking + compile": ["--document_masking", "true", "--torch_compile", "true"],
}


def split_text(text: str, tune: bool) -> tuple[str, str]:
    cut = int(len(text) * TRAIN_FRACTION)
    train, validation = text[:cut], text[cut:]
    if tune:  # hold out the end of the training split instead of the real validation text
        inner = int(len(train) * TRAIN_FRACTION)
        train, validation = train[:inner], train[inner:]
    return train, validation


def documents(text: str) -> list[str]:
    """The text cut after each run of blank lines: its paragraphs, which join back into the text exactly."""
    return [piece for piece in re.split(r"(?<=\n\n)(?=[^\n])", text) if piece]


def encode_documents(backend, text: str, eos_id: int | None) -> list[int]:
    """The token stream of `text`: each document's tokens then EOS (no EOS, one stream, when `eos_id` is None)."""
    if eos_id is None:
        return backend.encode(text, add_special_tokens=False).ids
    encodings = backend.encode_batch(documents(text), add_special_tokens=False)
    return [token for encoding in encodings for token in [*encoding.ids, eos_id]]


def blocks(ids: list[int], block_size: int, pad_id: int) -> list[list[int]]:
    """The token stream cut into blocks; the last one padded (pads are masked out of the loss)."""
    padded = ids + [pad_id] * (-len(ids) % block_size)
    return np.asarray(padded, dtype=np.int32).reshape(-1, block_size).tolist()


def prepare_data(train: str, validation: str, out: Path, vocab_size: int, block_size: int, with_eos: bool) -> int:
    """Write a `hfscratch tokenize`-style folder (tokenizer/, packed/); return the validation token count."""
    settings = TokenizeArguments(corpus=str(out), vocab_size=vocab_size, min_frequency=2)
    # Training batches of lines: the BPE trainer counts words per string, so one 1 MB string would also do.
    tokenizer = train_tokenizer([train.splitlines(keepends=True)], settings)
    tokenizer.save_pretrained(out / "tokenizer")
    backend = encoding_backend(tokenizer)
    eos_id = tokenizer.eos_token_id if with_eos else None
    train_ids, validation_ids = (encode_documents(backend, text, eos_id) for text in (train, validation))
    DatasetDict(
        {
            "train": Dataset.from_dict({"input_ids": blocks(train_ids, block_size, tokenizer.pad_token_id)}),
            "validation": Dataset.from_dict({"input_ids": blocks(validation_ids, block_size, tokenizer.pad_token_id)}),
        }
    ).save_to_disk(str(out / "packed"))
    return len(validation_ids)


@torch.no_grad()
def nats_per_token(model: torch.nn.Module, validation: Dataset, collator, batch_size: int = 16) -> float:
    """Mean loss over every predicted validation token (the first token of each block has no context), from the
    batches the run's own collator makes (with document masking: its position ids, no attention mask)."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(validation), batch_size):
        batch = collator([{"input_ids": ids} for ids in validation[start : start + batch_size]["input_ids"]])
        labels = batch.pop("labels")
        logits = model(**{key: value.to(model.device) for key, value in batch.items()}).logits[:, :-1].float().cpu()
        targets = labels[:, 1:]
        total += torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="sum"
        ).item()
        count += int((targets != -100).sum())
    return total / count


def precision_overrides(precision: str) -> list[str]:
    """`--bf16` for the run: `auto` takes bf16 autocast where the CPU has it natively and fp32 elsewhere (without
    native bf16 the autocast step is about 3x slower here, so one fixed setting would be wrong on half the machines)."""
    bf16 = precision == "bf16" or (precision == "auto" and cpu_has_native_bf16())
    return ["--bf16", str(bf16).lower()]


def train_ours(args: argparse.Namespace, data_dir: Path, overrides: list[str], seconds: float) -> dict:
    """Train the recipe for `seconds` of wall clock (the schedule following the clock); score the validation."""
    recipe_args = [args.recipe, "--data_dir", str(data_dir), "--output_dir", str(Path(args.out) / "model")]
    overrides = [*precision_overrides(args.precision), *overrides]
    trainer = build_trainer(
        *parse_recipe(
            [ModelArguments, DataArguments, PretrainingArguments], [*recipe_args, *overrides, *args.overrides], "bench"
        ),
        callbacks=[TimeBudget(deadline=math.inf)],
    )
    budget = trainer.callback(TimeBudget)
    train_started = time.perf_counter()
    budget.deadline = time.monotonic() + seconds  # from the first step's start: building the Trainer is not training
    trainer.train()
    train_seconds = time.perf_counter() - train_started
    validation = load_from_disk(str(data_dir / "packed"))["validation"]
    return {
        "nats_per_token": nats_per_token(trainer.model, validation, trainer.data_collator),
        "train_seconds": round(train_seconds, 1),
        "steps": trainer.state.global_step,
        "cut_short_by_budget": budget.cut_short,
        "tokens_trained": trainer.state.num_input_tokens_seen,
        "parameters": trainer.model.num_parameters(),
        "document_masking": trainer.data_collator.document_masking,
        "torch_compile": trainer.args.torch_compile,
        "bf16": trainer.args.bf16,
    }


def write_nanogpt_data(nanogpt: Path, dataset: str, text: str) -> None:
    """data/DATASET/{train,val}.bin and meta.pkl, exactly as nanoGPT's shakespeare_char/prepare.py writes them."""
    folder = nanogpt / "data" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    train, validation = split_text(text, tune=False)
    for name, part in (("train.bin", train), ("val.bin", validation)):
        np.array([stoi[c] for c in part], dtype=np.uint16).tofile(folder / name)
    with open(folder / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}, f)


@torch.no_grad()
def score_nanogpt(nanogpt: Path, checkpoint: Path, validation_bin: Path, block_size: int = 64) -> float:
    """nanoGPT's checkpoint on the whole validation text in non-overlapping blocks: mean nats per predicted char."""
    sys.path.insert(0, str(nanogpt))
    try:
        from model import GPT, GPTConfig  # nanoGPT's model.py
    finally:
        sys.path.remove(str(nanogpt))
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model = GPT(GPTConfig(**saved["model_args"]))
    state = {key.removeprefix("_orig_mod."): value for key, value in saved["model"].items()}
    model.load_state_dict(state)
    model.eval()
    ids = torch.from_numpy(np.fromfile(validation_bin, dtype=np.uint16).astype(np.int64))
    total, count = 0.0, 0
    for start in range(0, len(ids), 16 * block_size):
        chunk = ids[start : start + 16 * block_size]
        rows = [chunk[i : i + block_size] for i in range(0, len(chunk), block_size)]
        for row in rows:  # the last row may be short: one at a time keeps it simple and exact
            if len(row) < 2:
                continue
            logits, _ = model(row[None], targets=row[None])  # with targets, logits for every position
            total += torch.nn.functional.cross_entropy(logits[0, :-1], row[1:], reduction="sum").item()
            count += len(row) - 1
    return total / count


def run_nanogpt(nanogpt: Path, text: str, out: Path) -> dict:
    """nanoGPT's CPU recipe on the text's split: its wall time (the whole train.py process) and its score."""
    dataset = "hfscratch_benchmark"
    write_nanogpt_data(nanogpt, dataset, text)
    out_dir = out / "nanogpt"
    command = [sys.executable, "train.py", *NANOGPT_RECIPE, f"--dataset={dataset}", f"--out_dir={out_dir}"]
    started = time.perf_counter()
    finished = subprocess.run(command, cwd=nanogpt, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise RuntimeError(f"nanoGPT's train.py failed ({finished.returncode}): {finished.stderr[-2000:]}")
    nats = score_nanogpt(nanogpt, out_dir / "ckpt.pt", nanogpt / "data" / dataset / "val.bin")
    return {"seconds": round(seconds, 1), "bits_per_char": nats / math.log(2)}


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())  # other work on the machine slows a budgeted run


def table(rows: list[tuple[str, float, float, int, str]], reference: float | None) -> str:
    lines = [
        "| run | bits/char | ratio to nanoGPT | seconds | steps | load (1, 5, 15 min) |",
        "|---|---|---|---|---|---|",
    ]
    for name, bits, seconds, steps, load in rows:
        ratio = f"{bits / reference:.3f}" if reference else "-"
        lines.append(f"| {name} | {bits:.3f} | {ratio} | {seconds:.1f} | {steps} | {load} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=None, help="training wall clock (default: nanoGPT's, or 68)")
    parser.add_argument("--recipe", default=str(REPO / "recipes/pretrain/shakespeare-cpu.yaml"))
    parser.add_argument(
        "--corpus", "--text", dest="text", default=str(REPO.parent / "shared/data/corpora/tinyshakespeare.txt")
    )
    parser.add_argument("--out", default=str(REPO / "runs/benchmarks/shakespeare"))
    parser.add_argument("--vocab_size", type=int, default=2048)
    parser.add_argument("--block_size", type=int, default=64)
    parser.add_argument(
        "--precision", choices=["auto", "fp32", "bf16"], default="auto", help="auto: bf16 where the CPU has it natively"
    )
    parser.add_argument("--no_eos", action="store_true", help="one token stream, no EOS between paragraphs")
    parser.add_argument("--tune", action="store_true", help="validate on the end of the training split")
    parser.add_argument("--against_nanogpt", metavar="PATH", help="a nanoGPT checkout: run it first, side by side")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="ours, with which settings")
    parser.add_argument("overrides", nargs="*", help="recipe overrides, after --: -- --learning_rate 3e-3")
    args = parser.parse_args(argv)
    if not Path(args.text).is_file():
        print(f"{args.text} not found (the tinyshakespeare text of ../shared, or --corpus FILE)", file=sys.stderr)
        return 2
    if args.against_nanogpt and not (Path(args.against_nanogpt) / "train.py").is_file():
        print(
            f"--against_nanogpt {args.against_nanogpt}: no train.py there (expected a nanoGPT checkout)",
            file=sys.stderr,
        )
        return 2
    if args.against_nanogpt and args.tune:
        print("--tune and --against_nanogpt: the comparison is on the real validation split only", file=sys.stderr)
        return 2

    text = Path(args.text).read_text(encoding="utf-8")
    out = Path(args.out)
    rows, reference = [], None
    seconds = args.seconds or NANOGPT_SECONDS
    if args.against_nanogpt:
        nanogpt = run_nanogpt(Path(args.against_nanogpt), text, out)
        reference, seconds = nanogpt["bits_per_char"], args.seconds or nanogpt["seconds"]
        rows.append(
            ("nanoGPT, CPU recipe (4x128, 2000 iterations)", reference, nanogpt["seconds"], 2000, load_average())
        )
        print(json.dumps({"nanogpt": nanogpt, "load": load_average()}), flush=True)

    train_text, validation_text = split_text(text, args.tune)
    data_dir = out / "data"
    validation_tokens = prepare_data(
        train_text, validation_text, data_dir, args.vocab_size, args.block_size, with_eos=not args.no_eos
    )
    variants = args.variants or (list(VARIANTS) if args.against_nanogpt else [])
    for name in variants or ["the recipe"]:
        result = train_ours(args, data_dir, VARIANTS.get(name, []), seconds)
        bits_per_char = result["nats_per_token"] * validation_tokens / len(validation_text) / math.log(2)
        result.update(
            variant=name,
            split="tune (end of the training split)" if args.tune else "validation (last 10%)",
            bits_per_char=round(bits_per_char, 4),
            chars_per_token=round(len(validation_text) / validation_tokens, 3),
            budget_seconds=round(seconds, 1),
            load=load_average(),
        )
        print(json.dumps(result), flush=True)
        rows.append((name, bits_per_char, result["train_seconds"], result["steps"], result["load"]))
    print(f"\n{Path(args.text).name}, {seconds:.1f} s of training each\n" + table(rows, reference))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
