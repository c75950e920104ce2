"""Tokens per second of step 1b's tokenize + pack, against a plain `datasets.map` with the same tokenizer.

The reference is what transformers' `run_clm.py` example does: `map(tokenizer(texts), batched=True)`, then
a second `map` that concatenates each batch and cuts it into blocks. Both write Arrow files to a fresh cache
and use the same worker count. The third row is `hfscratch tokenize --executor local`: the datatrove stages
(tokenize with as many tasks as workers, then merge) from a JSON-lines copy of the corpus to token shards,
executor start-up included. The fixed corpus is the documentation installed with this Python
environment (every distribution's description and the standard library's `pydoc_data.topics`), repeated
`--copies` times; nothing is downloaded.

Every row runs under the system allocator and under the one `hfscratch tokenize` starts with here (mimalloc,
else jemalloc, where installed: core/allocator.py), each in a fresh process started with it, as the
command starts itself; the headline ratio is against the reference as run_clm.py runs, under the system
allocator, and the same-allocator ratio is printed beside it.

    python benchmarks/tokenize_throughput.py [--copies 4] [--num_proc 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pydoc_data.topics  # noqa: E402

# datasets and the kit are imported where they are used: datatrove's workers start from a forkserver that
# imports this script first, and they should start as they do under `hfscratch tokenize`, not with its imports.


def documentation_corpus(copies: int) -> Any:
    from datasets import Dataset

    descriptions = sorted(
        (dist.metadata["Name"] or "", dist.metadata.get_payload() or dist.metadata["Description"] or "")
        for dist in importlib.metadata.distributions()
    )
    texts = [text for _, text in descriptions if text.strip()] + sorted(pydoc_data.topics.topics.values())
    texts = texts * copies
    return Dataset.from_dict(
        {"text": texts, "id": [str(i) for i in range(len(texts))], "source": ["docs"] * len(texts)}
    )


def reference(corpus: Any, tokenizer, block_size: int, num_proc: int) -> int:
    """run_clm.py: tokenize, then group each batch's concatenation into blocks (dropping each batch's tail)."""
    tokenized = corpus.map(lambda b: tokenizer(b["text"]), batched=True, num_proc=num_proc, remove_columns=["text"])

    def group_texts(examples: dict) -> dict:
        concatenated = list(chain.from_iterable(examples["input_ids"]))
        total = len(concatenated) // block_size * block_size
        return {"input_ids": [concatenated[i : i + block_size] for i in range(0, total, block_size)]}

    blocks = tokenized.map(group_texts, batched=True, num_proc=num_proc, remove_columns=tokenized.column_names)
    return len(blocks) * block_size


def ours(corpus: Any, tokenizer, block_size: int, num_proc: int, cache_dir: str) -> int:
    from hfscratch.tokenization.packing import pack, tokenize_documents
    from hfscratch.tokenization.tokenizer import encoding_backend

    tokenized = tokenize_documents(corpus, encoding_backend(tokenizer), tokenizer.eos_token_id, 0.0, num_proc)
    blocks = pack(tokenized, block_size, tokenizer.pad_token_id, cache_dir)
    return len(blocks) * block_size


def shards(corpus_file: str, tokenizer_dir: str, block_size: int, num_proc: int, cache_dir: str, allocator: str) -> int:
    """The datatrove stages, with the same tokenizer, writing token shards to `cache_dir`."""
    from hfscratch.tokenization.arguments import TokenizeArguments
    from hfscratch.tokenization.pipeline import run_tokenize

    args = TokenizeArguments(
        corpus=corpus_file,
        out=f"{cache_dir}/shards",
        tokenizer=tokenizer_dir,
        block_size=block_size,
        validation_fraction=0.0,
        executor="local",
        tasks=num_proc,
        num_proc=num_proc,
        allocator=allocator,
    )
    return run_tokenize(args).train["blocks"] * block_size


@dataclass
class Timing:
    tokens: int
    wall_s: float
    cpu_s: float  # this process and its map workers

    @property
    def rate(self) -> float:
        return self.tokens / self.wall_s


def measure(run: Callable[[str], int]) -> Timing:
    """One run in a fresh cache folder (nothing reused)."""
    import datasets

    with tempfile.TemporaryDirectory() as cache:
        datasets.config.HF_DATASETS_CACHE = cache
        cpu_before, start = cpu_seconds(), time.perf_counter()
        tokens = run(cache)
        return Timing(tokens, time.perf_counter() - start, cpu_seconds() - cpu_before)


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


LABELS = {
    "reference": "reference (datasets.map + group_texts)",
    "ours": "hfscratch tokenize + pack (datasets)",
    "shards": "hfscratch tokenize --executor local",
}


def measure_all(folder: str, options: argparse.Namespace) -> dict[str, dict]:
    """One run of each row in this process (started under one allocator); {row: tokens, wall_s, cpu_s}."""
    import datasets
    from transformers import AutoTokenizer

    from hfscratch.core.allocator import loaded_allocator

    datasets.disable_progress_bars()
    datasets.disable_caching()  # every map recomputes; files still go to the (fresh) cache folder
    corpus = datasets.load_from_disk(f"{folder}/corpus")  # on disk, as a real corpus is: maps write Arrow files
    tokenizer = AutoTokenizer.from_pretrained(f"{folder}/tokenizer")
    allocator = loaded_allocator()
    runs = {
        "reference": lambda _: reference(corpus, tokenizer, options.block_size, options.num_proc),
        "ours": lambda cache: ours(corpus, tokenizer, options.block_size, options.num_proc, cache),
        "shards": lambda cache: shards(
            f"{folder}/corpus.jsonl", f"{folder}/tokenizer", options.block_size, options.num_proc, cache, allocator
        ),
    }
    return {name: vars(measure(run)) | {"allocator": allocator} for name, run in runs.items()}


def run_under(allocator: str, folder: str, argv: list[str]) -> dict[str, dict]:
    """`measure_all` in a fresh process started under `allocator` (its LD_PRELOAD), as `hfscratch tokenize`
    starts itself; the reference runs as run_clm.py would under it."""
    from hfscratch.core.allocator import PRELOAD, preload_value, preloaded, resolve

    _, library = resolve(allocator)
    command = [sys.executable, __file__, *argv, "--measure_in", folder]
    log = Path(folder, f"measure-{allocator}.log")  # the child's progress bars and library output
    with preloaded(preload_value(library, os.environ.get(PRELOAD))), log.open("w") as output:
        if subprocess.run(command, stdout=output, stderr=subprocess.STDOUT).returncode != 0:
            sys.exit(f"the measurement under {allocator} failed:\n{log.read_text()[-3000:]}")
    runs = json.loads(Path(folder, "result.json").read_text())
    assert all(r["allocator"] == allocator for r in runs.values()), f"asked for {allocator}, ran {runs}"
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--vocab_size", type=int, default=8192)
    parser.add_argument("--block_size", type=int, default=1024)
    parser.add_argument("--num_proc", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--measure_in", help=argparse.SUPPRESS)  # a child process: measure once, write JSON
    options = parser.parse_args()
    if options.measure_in:
        runs = measure_all(options.measure_in, options)
        Path(options.measure_in, "result.json").write_text(json.dumps(runs))
        return

    import datasets

    from hfscratch.core.allocator import resolve
    from hfscratch.tokenization.arguments import TokenizeArguments
    from hfscratch.tokenization.tokenizer import train_tokenizer

    datasets.disable_progress_bars()
    folder = tempfile.TemporaryDirectory()
    corpus = documentation_corpus(options.copies)
    corpus.save_to_disk(f"{folder.name}/corpus")
    characters = sum(map(len, corpus["text"]))
    one_copy = corpus["text"][: len(corpus) // options.copies]
    tokenizer = train_tokenizer(iter([one_copy]), TokenizeArguments(corpus=".", vocab_size=options.vocab_size))
    corpus.to_json(f"{folder.name}/corpus.jsonl")  # the token shards' input: a JSON-lines corpus
    tokenizer.save_pretrained(f"{folder.name}/tokenizer")
    fast = resolve("auto")[0]  # what `hfscratch tokenize` runs under here
    allocators = ["system"] + ([fast] if fast != "system" else [])
    print(f"corpus: {len(corpus):,} documents, {characters / 1e6:.1f}M characters; BPE of {len(tokenizer):,} tokens")
    print(
        f"workers: {options.num_proc}; block size {options.block_size}; allocators {', '.join(allocators)}; "
        f"best of {options.repeats} alternated runs, each in a fresh process"
    )
    argv = sys.argv[1:]
    timings: dict[tuple[str, str], list[Timing]] = {}
    for _ in range(options.repeats):  # alternated, so all see the same load from other processes
        for allocator in allocators:
            for name, run in run_under(allocator, folder.name, argv).items():
                timings.setdefault((name, allocator), []).append(Timing(run["tokens"], run["wall_s"], run["cpu_s"]))
    best = {key: max(runs, key=lambda t: t.rate) for key, runs in timings.items()}
    print(f"{'tokens/s (wall)':<40} " + " ".join(f"{a:>16}" for a in allocators))
    for name, label in LABELS.items():
        cells = []
        for allocator in allocators:
            timing = best[name, allocator]
            # datatrove's workers are children of its forkserver, which getrusage never counts: no CPU figure.
            per_cpu = "" if name == "shards" else f" ({timing.tokens / timing.cpu_s / 1e6:.2f}/CPU-s)"
            cells.append(f"{timing.rate / 1e6:.2f}M{per_cpu}")
        print(f"{label:<40} " + " ".join(f"{c:>16}" for c in cells))
    baseline = best["reference", "system"]  # run_clm.py as it runs: the system allocator
    for name in ("ours", "shards"):
        ratios = [f"{best[name, a].rate / baseline.rate:.2f}x with {a}" for a in allocators]
        same = (
            ""
            if fast == "system"
            else f"; {best[name, fast].rate / best['reference', fast].rate:.2f}x the reference under {fast}"
        )
        print(f"ratio, {LABELS[name]}: {', '.join(ratios)} the reference's tokens/s (system){same}")
    print(f"load average during the runs: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
