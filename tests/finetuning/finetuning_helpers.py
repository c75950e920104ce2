"""A tiny pretrained model for the fine-tuning, prompting and synthesis tests (imported by this distinctive name).

The base is a 2-layer, 64-wide Llama-style model pretrained for a few hundred steps on two kinds of text:
sentences of a small grammar, and Self-Instruct style numbered task lists about those sentences. So it is
not random, it has never seen the chat format (fine-tuning has something to teach), and it writes parseable
tasks when prompted the Self-Instruct way (synthesis has something to parse and filter).

The python-docs base has the same shape, pretrained on the python-docs questions and answers that are not held
out, with a tokenizer trained on them: the grammar base's 400-token vocabulary spells Python names letter by
letter, and at that size it never related a question's name to its answer (see `build_python_docs_base`).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

REPO = Path(__file__).resolve().parents[2]
NOUNS = ["cat", "dog", "king", "queen", "ship", "river", "garden", "letter", "sword", "house"]
VERBS = ["sees", "loves", "finds", "keeps", "builds", "writes", "leaves", "takes"]
ADJECTIVES = ["old", "red", "quiet", "bright", "small", "brave"]
# Instruction kinds with answers that follow from the sentence: a model can learn them, and a loss can drop.
TASK_KINDS = {
    "Name the subject of the sentence.": lambda s: s[2],
    "Name the object of the sentence.": lambda s: s[5],
    "Which verb does the sentence use?": lambda s: s[3],
    "Give the adjective in the sentence.": lambda s: s[1],
    "Repeat the sentence word for word.": lambda s: " ".join(s),
    "Count the words in the sentence.": lambda s: str(len(s)),
}


def sentence_words(rng: random.Random) -> list[str]:
    return ["The", rng.choice(ADJECTIVES), rng.choice(NOUNS), rng.choice(VERBS), "the", rng.choice(NOUNS) + "."]


def grammar_task(rng: random.Random, kinds: list[str] | None = None) -> dict[str, str]:
    """An Alpaca record whose answer is a function of its input sentence."""
    instruction = rng.choice(kinds or list(TASK_KINDS))
    words = sentence_words(rng)
    return {"instruction": instruction, "input": " ".join(words), "output": TASK_KINDS[instruction](words).strip(".")}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def task_list_document(rng: random.Random, tasks: int = 4) -> str:
    from hfscratch.prompting.templates import self_instruct_prompt, self_instruct_task

    shown = [grammar_task(rng) for _ in range(tasks)]
    prompt = self_instruct_prompt(shown[:-1])  # ends with "Task N\nInstruction:", then the task is written
    return prompt.removesuffix(f"Task {tasks}\nInstruction:") + self_instruct_task(tasks, shown[-1])


def pretrain_tiny_model(folder: Path, documents: list[str], vocab_size: int, steps: int, seed: int = 0) -> Path:
    """Train a BPE tokenizer with `hfscratch tokenize` on `documents`, then pretrain the 2-layer, 64-wide model on
    them; returns its folder (`folder/base`)."""
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    from hfscratch import HFScratchConfig, HFScratchForCausalLM
    from hfscratch.tokenization.arguments import TokenizeArguments
    from hfscratch.tokenization.pipeline import run_tokenize

    corpus = write_jsonl(folder / "corpus.jsonl", [{"text": t, "id": str(i)} for i, t in enumerate(documents)])
    tokenized = folder / "tokenized"
    run_tokenize(
        TokenizeArguments(
            corpus=str(corpus),
            out=str(tokenized),
            vocab_size=vocab_size,
            block_size=128,
            validation_fraction=0.05,
            num_proc=1,
        )
    )
    tokenizer = AutoTokenizer.from_pretrained(str(tokenized / "tokenizer"))
    config = HFScratchConfig.from_preset(
        "llama",
        size="tiny",
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=176,
        vocab_size=len(tokenizer),
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = HFScratchForCausalLM(config)
    blocks = torch.tensor(load_from_disk(str(tokenized / "packed"))["train"]["input_ids"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps, pct_start=0.05)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in tqdm(range(steps), desc=f"pretrain tiny base {folder.name}", disable=None):
        batch = blocks[torch.randint(len(blocks), (16,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    model.config.use_cache = True
    out = folder / "base"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "pretrain_loss.txt").write_text(f"{loss.item():.4f}\n")
    return out


def build_tiny_base(folder: Path, steps: int = 250, seed: int = 0) -> Path:
    """The grammar base: grammar sentences and Self-Instruct task lists, a 400-token vocabulary."""
    rng = random.Random(seed)
    documents = [" ".join(" ".join(sentence_words(rng)) for _ in range(rng.randint(2, 5))) for _ in range(300)]
    documents += [task_list_document(rng) for _ in range(300)]
    return pretrain_tiny_model(folder, documents, vocab_size=400, steps=steps, seed=seed)


# The share of the python-docs set held out, as the finetune recipes hold it out (`validation_fraction`).
PYTHON_DOCS_HELD_OUT = 0.1


def build_python_docs_base(folder: Path, steps: int = 300, seed: int = 0) -> Path:
    """The python-docs base: "question, blank line, answer" of every python-docs record that is not held out, a
    1,024-token vocabulary trained on them, so held-out questions and answers stay unseen. After SFT, the
    tiny-cpu-dpo recipe moved the held-out reward margin 0.00 -> 0.12 (reward accuracy 60%) from the grammar base,
    and 0.00 -> 1.73 to 2.57 (69% to 76%) from this one."""
    from hfscratch.finetuning.python_docs import python_docs_instructions, split_held_out

    train, _ = split_held_out(python_docs_instructions(seed=seed), PYTHON_DOCS_HELD_OUT)
    documents = [record["instruction"] + (f"\n\n{record['input']}" if record["input"] else "") + "\n\n"
                 + record["output"] for record in train]  # fmt: skip
    return pretrain_tiny_model(folder, documents, vocab_size=1024, steps=steps, seed=seed)


@contextlib.contextmanager
def single_thread():
    """One intra-op thread for a tiny model: on 2 shared cores, 2 threads ran a training step 8x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _session_base(tmp_path_factory, name: str, build) -> Path:
    """A base model built once per session however many test folders ask for it."""
    folder = tmp_path_factory.getbasetemp() / name
    done = folder / "base" / "pretrain_loss.txt"
    if not done.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with single_thread():
            build(folder)
    return folder / "base"


def tiny_base(tmp_path_factory) -> Path:
    """The session's tiny grammar base model."""
    return _session_base(tmp_path_factory, "hfscratch-tiny-base", build_tiny_base)


def python_docs_base(tmp_path_factory) -> Path:
    """The session's tiny python-docs base model."""
    return _session_base(tmp_path_factory, "hfscratch-python-docs-base", build_python_docs_base)


def subprocess_env() -> dict[str, str]:
    offline = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCELERATE_")}
    return {**env, **offline, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


CLI = [sys.executable, "-m", "hfscratch"]
# What every in-process test run adds: the CPU, no progress bars, a fixed seed, logs now and then, no evaluation
# during training (the step measures before and after itself).
QUIET = ["--use_cpu", "true", "--disable_tqdm", "true", "--seed", "0", "--logging_steps", "4", "--eval_strategy", "no"]


def run_finetune_cli(out: Path, *argv: str) -> dict:
    """`hfscratch finetune ARGV --output_dir OUT` in this process (through the step's main), one thread; returns
    the output folder, the parsed finetune_results.json and the wall time."""
    import time

    from hfscratch.finetuning.cli import main

    started = time.perf_counter()
    with single_thread():
        assert main([*argv, "--output_dir", str(out), *QUIET]) == 0
    seconds = time.perf_counter() - started
    return {"out": out, "results": json.loads((out / "finetune_results.json").read_text()), "seconds": seconds}
