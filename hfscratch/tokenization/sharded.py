"""Run tokenization on the curation engine (`executor: local | slurm`; the stages are in stages.py).

    out/tokenizer/                          trained first, on the launching machine
    out/tokens/{train,validation}/<source>/ datatrove token files: NNN_<source>.ds, .ds.index, .ds.metadata
    out/logs/{tokenize,merge}/              datatrove's logs, stats and completions per task
    out/doc_lengths.png, out/stats.json     written by the merge task, stats.json last

A run killed part-way and started again redoes only the tasks that did not finish, with the tokenizer it
trained the first time; `out/.settings.json` records the settings of the run under way, so a restart with
other settings is refused (or, with `overwrite`, starts from nothing) instead of mixing two tokenizations.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from hfscratch.core.allocator import PRELOAD, preload_value, resolve
from hfscratch.core.recipes import RecipeError
from hfscratch.curation.executors import chain_executors
from hfscratch.tokenization.arguments import TokenizeArguments
from hfscratch.tokenization.artifacts import TokenizeStats, finished_or_none, output_settings
from hfscratch.tokenization.decontamination import NgramIndex, build_benchmark_index
from hfscratch.tokenization.documents import is_validation
from hfscratch.tokenization.mixture import token_shares
from hfscratch.tokenization.stages import (
    PARTS_DIR,
    SPLITS,
    TOKENS_DIR,
    BenchmarkDecontamination,
    SplitSourceTokenizer,
    contamination_report,
    corpus_readers,
    tokenize_stages,
)
from hfscratch.tokenization.stats import LengthCounts, import_pyplot_in_background, plot_document_lengths

SETTINGS_FILE = ".settings.json"
SAMPLE_PARTS = 16  # a capped tokenizer sample is drawn from this many byte ranges spread over the corpus
TRAINING_BATCH = 1000
INDEX_CHUNK = 1 << 20  # documents per read of an index file (8 MB)


def run_sharded_tokenize(args: TokenizeArguments) -> TokenizeStats | None:
    """Run both stages here (local) and return the stats, or submit them (slurm) and return None."""
    # Here, not at the top: the merge task imports this module for `write_stats`, and transformers costs seconds.
    from hfscratch.curation.progress import StageProgress, console, console_log_to, start_forkserver
    from hfscratch.tokenization.corpus import corpus_files
    from hfscratch.tokenization.tokenizer import load_tokenizer, read_chat_template, train_tokenizer

    finished = finished_or_none(args)
    if finished is not None:
        return finished
    out = Path(args.out).resolve()
    claim_folder(out, args)
    fmt, files = corpus_files(Path(args.corpus))
    readers = functools.partial(corpus_readers, fmt, files)
    _, library = resolve(args.allocator)  # the tasks' allocator; each task checks that it runs it
    preload = preload_value(library, os.environ.get(PRELOAD))
    if args.executor == "local":  # the workers' forkserver imports their steps while the tokenizer is made here
        start_forkserver({type(step).__module__ for step in readers()} | {SplitSourceTokenizer.__module__}, preload)
    tokenizer_file = out / "tokenizer" / "tokenizer.json"
    if not tokenizer_file.is_file():  # a restarted run keeps the tokenizer its finished tasks used
        if args.tokenizer:
            tokenizer = load_tokenizer(args.tokenizer)
        else:
            with console_log_to(out / "logs" / "tokenizer-sample.log"):  # the readers' per-file lines
                tokenizer = train_tokenizer(sample_texts(readers, args), args)
        if args.chat_template is not None:
            tokenizer.chat_template = read_chat_template(args.chat_template)
        tokenizer.save_pretrained(out / "tokenizer")
    eos_token = load_tokenizer(str(out / "tokenizer")).eos_token  # a given tokenizer's own, e.g. GPT-2's
    index = None
    if args.decontaminate != "none":
        index = build_benchmark_index(args.benchmarks, args.benchmarks_dir, args.ngram_size, args.min_item_words)
    decontamination = (
        BenchmarkDecontamination(index, args.decontaminate == "remove", str(out / PARTS_DIR / "decontamination"))
        if index is not None
        else None
    )
    finish = functools.partial(write_stats, args, index)
    stages = tokenize_stages(readers(), decontamination, str(tokenizer_file), eos_token, args, finish)
    at_once = args.workers() if args.executor == "local" else -1  # Slurm: every task of the job array
    chain = chain_executors(stages, out / "logs", args.executor, at_once, args, "tokenize", preload)
    if args.executor == "slurm":
        chain[-1].run()  # submits its dependencies first
        print(f"Submitted {len(chain)} Slurm jobs; launch scripts in {out / 'logs'}/*/launch_script.slurm")
        return None
    # This process runs the merge task itself (a local executor of one worker runs it in-process), which plots:
    # pyplot is imported while the tasks run, not after them.
    import_pyplot_in_background()
    stream = console()
    for stage, executor in zip(stages, chain):
        with StageProgress(stage.name, out / "logs" / stage.name, stage.tasks, stream):
            executor.run()
    stream.flush()
    if TokenizeStats.read_or_none(out) is None:
        if not any(token_folders(out, split) for split in SPLITS):
            raise RecipeError(f"key 'corpus': empty corpus, no non-empty documents in {args.corpus}")
        raise RecipeError(f"tokenize: a task failed; its error is in {out / 'logs'}/*/logs/")
    return TokenizeStats.read(out)


def claim_folder(out: Path, args: TokenizeArguments) -> None:
    """Record the settings of the run under way; refuse a run of other settings over an unfinished one.
    With `overwrite`, everything an earlier run wrote is removed first."""
    settings = {**output_settings(args), "executor": args.executor}
    marker = out / SETTINGS_FILE
    if args.overwrite:
        for name in ("logs", "tokenizer", TOKENS_DIR, PARTS_DIR):
            shutil.rmtree(out / name, ignore_errors=True)
    elif marker.is_file() and json.loads(marker.read_text()) != settings:
        raise RecipeError(
            f"key 'out': {out} holds an unfinished tokenization with other settings; "
            "rerun it with its own settings, or --overwrite true to start again"
        )
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(settings, indent=2))


def read_documents(readers: list[Any], rank: int, world_size: int) -> Any:
    """The documents that task `rank` of `world_size` reads (readers chain: each passes the earlier ones on)."""
    data = None
    for reader in readers:
        data = reader(data, rank, world_size)
    return data


def sample_texts(readers: Any, args: TokenizeArguments) -> Any:
    """Batches of training-split texts for the BPE trainer: all of them, or `tokenizer_max_documents` drawn
    evenly from `SAMPLE_PARTS` byte ranges of the corpus (the first documents alone would be one source's)."""
    limit = args.tokenizer_max_documents
    parts = 1 if limit is None else SAMPLE_PARTS
    per_part = math.inf if limit is None else math.ceil(limit / parts)
    batch: list[str] = []
    taken = 0
    for rank in range(parts):
        in_part = 0
        for document in read_documents(readers(), rank, parts):
            if in_part >= per_part or (limit is not None and taken >= limit):
                break
            if is_validation(document.id, args.validation_fraction):
                continue
            batch.append(document.text)
            in_part, taken = in_part + 1, taken + 1
            if len(batch) == TRAINING_BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def write_stats(args: TokenizeArguments, index: NgramIndex | None) -> None:
    """stats.json of the merged token files (the merge task calls this last), doc_lengths.png, and
    decontamination.json; the same keys as the `datasets` path, with every block a full one. Read file by file
    into length counts: its memory does not grow with the number of documents."""
    from hfscratch.curation.report import merged_stats, value

    out = Path(args.out).resolve()
    lengths = read_length_counts(out)  # {(split, source): stream lengths, EOS included}
    if not lengths:
        return  # the launcher names the empty corpus
    steps = merged_stats(out / "logs" / "tokenize") or []
    tokenizer_step = next((s for s in steps if s["name"].endswith(SplitSourceTokenizer.name)), {"stats": {}})
    skipped = {
        key.removeprefix("skipped_").replace("_", " "): int(metric["total"])
        for step in steps
        for key, metric in step["stats"].items()
        if key.startswith("skipped_")
    }
    figures = {
        name: split_figures({tag: c for (split, tag), c in lengths.items() if split == name}, args.block_size)
        for name in SPLITS
    }
    train_tokens = {tag: c.tokens for (split, tag), c in lengths.items() if split == "train"}
    shares = token_shares(train_tokens)
    by_source: dict[str, LengthCounts] = {}
    for (_, tag), counts in sorted(lengths.items()):
        by_source[tag] = by_source.get(tag, LengthCounts()) + counts
    sources = {}
    for tag, counts in by_source.items():
        tokens = counts.tokens - counts.documents  # without the EOS after each document
        chars = sum(int(value(tokenizer_step, f"{split}/{tag}/characters")) for split in SPLITS)
        validation = lengths.get(("validation", tag))
        sources[tag] = {
            "documents": counts.documents,
            "tokens": tokens,
            "characters": chars,
            "characters_per_token": round(chars / tokens, 4) if tokens else None,
            "validation_documents": validation.documents if validation else 0,
            "weight": None,  # mixed at load time: the pretraining recipe's data_mixture
            "train_tokens": train_tokens.get(tag, 0),
            "epoch_tokens": train_tokens.get(tag, 0),
            "requested_share": None,
            "realised_share": round(shares.get(tag, 0.0), 6),
        }
    decontamination = None
    if index is not None:
        checked = sum(int(value(s, "total")) for s in steps if s["name"].endswith(BenchmarkDecontamination.name))
        report = contamination_report(index, out / PARTS_DIR / "decontamination", checked)
        decontamination = {"action": args.decontaminate, **report.to_dict()}
        (out / "decontamination.json").write_text(json.dumps(decontamination, indent=2))
    allocators = sorted(k.removeprefix("allocator/") for k in tokenizer_step["stats"] if k.startswith("allocator/"))
    vocab_size = Tokenizer.from_file(str(out / "tokenizer" / "tokenizer.json")).get_vocab_size(with_added_tokens=True)
    plot_document_lengths({tag: c.without_eos() for tag, c in by_source.items()}, out / "doc_lengths.png")
    TokenizeStats(
        corpus=args.corpus,
        tokenizer={
            "path": str(out / "tokenizer"),
            "type": args.tokenizer_type,
            "vocab_size": vocab_size,
        },
        documents=sum(c.documents for c in by_source.values()),
        block_size=args.block_size,
        last_block=args.last_block,
        train=figures["train"],
        validation=figures["validation"],
        sources=sources,
        skipped=skipped,
        decontamination=decontamination,
        settings=output_settings(args),
        allocator=" + ".join(allocators) or None,  # one name unless tasks ran on machines that differ
    ).write(out)  # last: the folder is complete
    (out / SETTINGS_FILE).unlink(missing_ok=True)


def split_figures(lengths: dict[str, LengthCounts], block_size: int) -> dict:
    """Documents, stream tokens and full blocks of one split; each source's tail is dropped (its reader reads
    whole blocks of each file)."""
    tokens = sum(c.tokens for c in lengths.values())
    blocks = sum(c.tokens // block_size for c in lengths.values())
    return {
        "documents": sum(c.documents for c in lengths.values()),
        "tokens": tokens,
        "blocks": blocks,
        "padding_tokens": 0,
        "dropped_tokens": tokens - blocks * block_size,
    }


def token_folders(out: Path, split: str) -> dict[str, Path]:
    """{source: its token folder} of one split of a sharded tokenization (none: an empty dict)."""
    return {folder.name: folder for folder in sorted((out / TOKENS_DIR / split).glob("*")) if any(folder.glob("*.ds"))}


def read_length_counts(out: Path, chunk: int = INDEX_CHUNK) -> dict[tuple[str, str], LengthCounts]:
    """{(split, source): its documents' lengths in stream tokens (EOS included)}, from the `.ds.index` files
    (each document's end offset, uint64), memory-mapped and read `chunk` documents at a time."""
    lengths: dict[tuple[str, str], LengthCounts] = {}
    for split in SPLITS:
        for tag, folder in token_folders(out, split).items():
            counts = lengths[split, tag] = LengthCounts()
            for index in sorted(folder.glob("*.ds.index")):
                if index.stat().st_size == 0:
                    continue
                ends = np.memmap(index, dtype=np.uint64, mode="r")
                previous = 0
                for start in range(0, len(ends), chunk):
                    part = ends[start : start + chunk].astype(np.int64)
                    counts.add(np.diff(part, prepend=previous))
                    previous = int(part[-1])
    return lengths
