"""Tokenization on the curation engine (`executor: local | slurm`): datatrove token shards per source.

The shards must hold exactly the token stream of the `datasets` path for the same documents, survive a
SIGKILL with byte-identical output, and on Slurm become chained job arrays.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from datasets import load_from_disk
from datatrove.utils.dataset import DatatroveFolderDataset
from killed_runs import run_until_killed
from tokenization_helpers import UNICODE_SAMPLES, make_documents, step_argv, write_curated
from transformers import AutoTokenizer

from hfscratch.core.recipes import RecipeError
from hfscratch.tokenization.artifacts import TokenizeStats
from hfscratch.tokenization.cli import main

HFSCRATCH = Path(sys.executable).with_name("hfscratch")


def corpus_records() -> list[dict]:
    records = make_documents("web", 160, seed=1) + make_documents("books", 90, seed=2)
    return records + [
        {"text": text, "id": f"uni-{i}", "metadata": {"source": "web"}} for i, text in enumerate(UNICODE_SAMPLES)
    ]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def shard_documents(out: Path, split: str) -> dict[str, list[tuple[int, ...]]]:
    """{source: each document's tokens (EOS included)} of one split's merged token files."""
    documents = {}
    for folder in sorted((out / "tokens" / split).glob("*")):
        sequences = []
        for data in sorted(folder.glob("*.ds")):
            tokens = np.fromfile(data, dtype=np.uint16)
            ends = np.fromfile(f"{data}.index", dtype=np.uint64).astype(int)
            sequences += [tuple(tokens[a:b]) for a, b in zip([0, *ends[:-1]], ends)]
        documents[folder.name] = sequences
    return documents


def arrow_documents(out: Path, split: str, eos: int, pad: int) -> list[tuple[int, ...]]:
    """Each document's tokens (EOS included) of the `datasets` path's packed blocks, cut at EOS."""
    stream = [t for block in load_from_disk(str(out / "packed"))[split]["input_ids"] for t in block if t != pad]
    cuts = [i + 1 for i, t in enumerate(stream) if t == eos]
    return [tuple(stream[a:b]) for a, b in zip([0, *cuts[:-1]], cuts)]


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


@pytest.fixture(scope="module")
def both_paths(tmp_path_factory) -> tuple[Path, Path]:
    """The same one-file corpus tokenized by `Dataset.map` and by 2 datatrove tasks that split the file."""
    root = tmp_path_factory.mktemp("shards")
    corpus = write_jsonl(root / "corpus.jsonl", corpus_records())
    assert main(step_argv(corpus, root / "arrow")) == 0
    assert main(step_argv(corpus, root / "shards", executor="local", tasks=2, num_proc=2)) == 0
    return root / "arrow", root / "shards"


def test_token_shards_hold_the_token_stream_of_the_datasets_path(both_paths):
    arrow, shards = both_paths
    assert (arrow / "tokenizer" / "tokenizer.json").read_bytes() == (
        shards / "tokenizer" / "tokenizer.json"
    ).read_bytes()
    tokenizer = AutoTokenizer.from_pretrained(shards / "tokenizer")
    for split in ("train", "validation"):
        expected = arrow_documents(arrow, split, tokenizer.eos_token_id, tokenizer.pad_token_id)
        by_source = shard_documents(shards, split)
        assert Counter(d for docs in by_source.values() for d in docs) == Counter(expected), split
        assert all(doc[-1] == tokenizer.eos_token_id and tokenizer.eos_token_id not in doc[:-1] for doc in expected)
    # Sources stay apart, each document with its own source's words.
    books = [tokenizer.decode(d[:-1]) for d in shard_documents(shards, "train")["books"]]
    assert len(books) > 50 and not any(text.startswith(("Ünïcödé", "中文")) for text in books)
    a, s = TokenizeStats.read(arrow), TokenizeStats.read(shards)
    assert (s.train["documents"], s.train["tokens"]) == (a.train["documents"], a.train["tokens"])
    assert (s.validation["documents"], s.validation["tokens"]) == (a.validation["documents"], a.validation["tokens"])
    for tag in ("web", "books"):
        assert {k: s.sources[tag][k] for k in ("documents", "tokens", "characters", "validation_documents")} == {
            k: a.sources[tag][k] for k in ("documents", "tokens", "characters", "validation_documents")
        }
    assert s.settings["executor"] == "local" and "executor" not in a.settings


def test_both_tasks_of_a_one_file_corpus_tokenize_part_of_it(both_paths):
    _, shards = both_paths
    per_task = [json.loads(f.read_text()) for f in sorted((shards / "logs" / "tokenize" / "stats").glob("*.json"))]
    documents = [
        sum(v["total"] if isinstance(v, dict) else v for k, v in step["stats"].items() if k.endswith("/documents"))
        for task in per_task
        for step in task
        if step["name"].endswith("✍️ Tokenize by split and source")
    ]
    assert len(documents) == 2 and min(documents) > 0.3 * sum(documents)


def test_datatrove_reads_the_shards_as_full_blocks(both_paths):
    _, shards = both_paths
    stats = TokenizeStats.read(shards)
    folder = str(shards / "tokens" / "train")
    blocks = DatatroveFolderDataset(folder, seq_len=stats.block_size - 1, filename_pattern="**/*.ds", token_size=2)
    assert len(blocks) == stats.train["blocks"] > 0
    assert stats.train["dropped_tokens"] == stats.train["tokens"] - stats.train["blocks"] * stats.block_size
    assert all(len(blocks[i]["input_ids"]) == stats.block_size for i in range(len(blocks)))


def test_rerun_leaves_finished_shards_as_they_are_and_refuses_other_settings(both_paths, tmp_path):
    _, shards = both_paths
    before = tree_bytes(shards / "tokens")
    corpus = TokenizeStats.read(shards).corpus
    assert main(step_argv(Path(corpus), shards, executor="local", tasks=2, num_proc=2)) == 0
    assert tree_bytes(shards / "tokens") == before
    with pytest.raises(RecipeError, match="other settings"):
        main(step_argv(Path(corpus), shards, executor="local", tasks=3, num_proc=2))


def test_token_shards_refuse_what_they_cannot_do(tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", corpus_records()[:20])
    with pytest.raises(RecipeError, match="key 'last_block'.*drop"):
        main(step_argv(corpus, tmp_path / "o", executor="local", last_block="pad"))
    with pytest.raises(RecipeError, match="key 'mixture'.*data_mixture"):
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text("mixture: {c: 2.0}\n")
        main([str(recipe), *step_argv(corpus, tmp_path / "o", executor="local")])
    text = tmp_path / "t.txt"
    text.write_text("one paragraph\n\nanother one\n")
    with pytest.raises(RecipeError, match="key 'executor'.*datasets"):
        main(step_argv(text, tmp_path / "o2", executor="local"))


def test_decontamination_runs_inside_the_datatrove_stage(tmp_path, shared_benchmarks):
    from datasets import load_dataset

    item = load_dataset(str(shared_benchmarks / "allenai/ai2_arc"), "ARC-Challenge", split="test")[0]["question"]
    records = corpus_records()
    records[3]["text"] += " " + item  # one training document quotes a test question
    corpus = write_jsonl(tmp_path / "c.jsonl", records)
    options = {"executor": "local", "tasks": 2, "num_proc": 2, "decontaminate": "remove"}
    argv = [*step_argv(corpus, tmp_path / "o", **options), "--benchmarks_dir", str(shared_benchmarks)]
    assert main([*argv, "--benchmarks", "arc_challenge"]) == 0
    stats = TokenizeStats.read(tmp_path / "o")
    report = stats.decontamination["benchmarks"]["arc_challenge"]
    assert report["documents_flagged"] == 1 and report["document_ids"] == [records[3]["id"]]
    assert stats.decontamination["documents"] == len(records)
    assert stats.documents == len(records) - 1


@pytest.mark.slow
def test_killed_tokenization_resumes_to_byte_identical_shards(tmp_path):
    records = corpus_records() * 4
    records = [{**r, "id": f"{r['id']}-{i}"} for i, r in enumerate(records)]
    for i in range(8):  # one file per task, so that tasks finish one by one
        write_jsonl(tmp_path / "corpus" / f"part-{i}.jsonl", records[i::8])
    argv = step_argv(tmp_path / "corpus", Path("OUT"), executor="local", tasks=8, num_proc=1)

    def run(out: Path, kill_after_completions: int | None = None) -> int:
        command = [str(HFSCRATCH), "tokenize", *[str(out) if a == "OUT" else a for a in argv]]
        completions = out / "logs" / "tokenize" / "completions" if kill_after_completions else None
        return run_until_killed(command, completions, kill_after_completions or 0)

    assert run(tmp_path / "clean") == 0
    killed = tmp_path / "killed"
    assert run(killed, kill_after_completions=3) == -signal.SIGKILL
    assert 3 <= len(list((killed / "logs" / "tokenize" / "completions").iterdir())) < 8, "the kill must land mid-run"
    assert not (killed / "stats.json").exists()
    assert run(killed) == 0
    assert tree_bytes(killed / "tokens") == tree_bytes(tmp_path / "clean" / "tokens")
    assert TokenizeStats.read(killed).documents == len(records)


def test_slurm_executor_writes_the_tokenize_job_scripts_it_submits(tmp_path):
    """A stand-in `sbatch` records what would be submitted: the tokenize job array, then the merge job."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(
        '#!/bin/sh\necho "$@" >> "$SBATCH_LOG"\nn=$(wc -l < "$SBATCH_LOG")\necho "Submitted batch job $((1000 + n))"\n'
    )
    (bin_dir / "sbatch").chmod(0o755)
    corpus = write_curated(tmp_path / "curated", corpus_records())
    options = {"executor": "slurm", "slurm_partition": "cpu", "tasks": 16, "slurm_venv": tmp_path / "venv"}
    env = os.environ | {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SBATCH_LOG": str(tmp_path / "sbatch.log")}
    command = [str(HFSCRATCH), "tokenize", *step_argv(corpus, tmp_path / "run", **options)]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    submissions = (tmp_path / "sbatch.log").read_text().splitlines()
    assert sum("--dependency=afterok:" in s for s in submissions) >= 1
    for stage, tasks in (("tokenize", 16), ("merge", 1)):
        script = (tmp_path / "run" / "logs" / stage / "launch_script.slurm").read_text()
        assert "#SBATCH --partition=cpu" in script and f"#SBATCH --job-name=tokenize-{stage}" in script
        assert f"#SBATCH --array=0-{tasks - 1}" in script
        assert f"source {tmp_path / 'venv' / 'bin' / 'activate'}" in script
        assert (tmp_path / "run" / "logs" / stage / "executor.pik").is_file()
    assert (tmp_path / "run" / "tokenizer" / "tokenizer.json").is_file()  # trained before submitting
    assert not (tmp_path / "run" / "stats.json").exists()


def test_a_vocabulary_beyond_uint16_is_stored_in_four_bytes_end_to_end(tmp_path):
    """datatrove stores tokens in 4 bytes past 65,536 ids: the merge and the training reader must know it."""
    from hfscratch.training.data_mixture import source_blocks

    corpus = write_jsonl(tmp_path / "c.jsonl", corpus_records()[:80])
    assert main(step_argv(corpus, tmp_path / "small")) == 0
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "small" / "tokenizer")
    tokenizer.add_tokens([f"<extra_{i}>" for i in range(65_600)])  # ids past 2**16, never in the text
    tokenizer.save_pretrained(tmp_path / "big")
    argv = step_argv(corpus, tmp_path / "shards", executor="local", tasks=2, num_proc=2, tokenizer=tmp_path / "big")
    assert main(argv) == 0
    assert main(step_argv(corpus, tmp_path / "arrow", tokenizer=tmp_path / "big")) == 0
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    expected = Counter(arrow_documents(tmp_path / "arrow", "train", eos, pad))
    folder = tmp_path / "shards" / "tokens" / "train" / "web"
    tokens = np.fromfile(folder / "000_web.ds", dtype=np.uint32)
    ends = np.fromfile(folder / "000_web.ds.index", dtype=np.uint64).astype(int)
    assert Counter(tuple(tokens[a:b]) for a, b in zip([0, *ends[:-1]], ends)) == expected
    blocks = source_blocks(folder, 32, len(tokenizer))
    assert len(blocks) == len(tokens) // 32 and blocks[0]["input_ids"].tolist() == tokens[:32].tolist()


def test_a_given_tokenizer_separates_documents_with_its_own_eos(tmp_path):
    corpus = write_jsonl(tmp_path / "c.jsonl", corpus_records()[:60])
    assert main([*step_argv(corpus, tmp_path / "made"), "--eos_token", "</s>"]) == 0  # not the recipe default
    given = {"tokenizer": tmp_path / "made" / "tokenizer"}
    assert main(step_argv(corpus, tmp_path / "shards", executor="local", tasks=2, num_proc=2, **given)) == 0
    assert main(step_argv(corpus, tmp_path / "arrow", **given)) == 0
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "made" / "tokenizer")
    assert tokenizer.eos_token == "</s>"
    expected = arrow_documents(tmp_path / "arrow", "train", tokenizer.eos_token_id, tokenizer.pad_token_id)
    assert Counter(d for docs in shard_documents(tmp_path / "shards", "train").values() for d in docs) == Counter(
        expected
    )


def test_stats_read_the_index_files_in_chunks_into_length_counts(both_paths):
    """stats.json comes from per-length counts read a chunk of documents at a time, not from a table with a row per
    document: the same counts whatever the chunk, and those of the documents in the token files."""
    from hfscratch.tokenization.sharded import read_length_counts

    _, shards = both_paths
    whole, chunked = read_length_counts(shards), read_length_counts(shards, chunk=7)
    assert (
        whole.keys()
        == chunked.keys()
        == {("train", "web"), ("train", "books"), ("validation", "web"), ("validation", "books")}
    )
    for key, counts in whole.items():
        assert np.array_equal(counts.counts, chunked[key].counts)
        lengths = [len(document) for document in shard_documents(shards, key[0])[key[1]]]
        assert counts.documents == len(lengths) and counts.tokens == sum(lengths)
        assert counts.median() == np.median(lengths)
    stats = TokenizeStats.read(shards)
    assert stats.sources["web"]["documents"] == whole["train", "web"].documents + whole["validation", "web"].documents


def test_length_counts_agree_with_numpy():
    from hfscratch.tokenization.stats import length_counts

    rng = np.random.default_rng(0)
    for size in (1, 2, 7, 1000):
        lengths = rng.integers(0, 50, size)
        counts = length_counts(lengths[: size // 2]) + length_counts(lengths[size // 2 :])
        assert counts.documents == size and counts.tokens == lengths.sum()
        assert counts.median() == np.median(lengths)
        assert counts.without_eos().tokens == (lengths - 1)[lengths > 0].sum()
        assert counts.at_least_one().median() == np.median(np.maximum(lengths, 1))
