"""Resumability after SIGKILL, bad input, Slurm job scripts, and the web recipe on real WARC files."""

import gzip
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from curation_corpora import dedup_corpus, read_output, write_jsonl
from killed_runs import run_until_killed

from hfscratch.core.recipes import RecipeError
from hfscratch.curation.pipeline import CurateArguments

REPO = Path(__file__).resolve().parents[2]
HFSCRATCH = Path(sys.executable).with_name("hfscratch")


def documents_bytes(run_dir: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted((run_dir / "documents").glob("*"))}


@pytest.mark.slow
def test_killed_run_resumes_to_byte_identical_output(tmp_path):
    records, _ = dedup_corpus()
    for i in range(8):  # one file per task, so that tasks finish one by one
        write_jsonl(records[i::8], tmp_path / "corpus" / f"part-{i}.jsonl")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        f"sources: [{{type: jsonl, path: {tmp_path / 'corpus'}}}]\n"
        "tasks: 8\nworkers: 1\nlanguage_filter: false\nminhash_buckets: 4\n"
    )

    def run(out: Path, kill_after_completions: int | None = None) -> int:
        command = [str(HFSCRATCH), "curate", str(recipe), "--output_dir", str(out)]
        completions = out / "logs" / "filter" / "completions" if kill_after_completions else None
        return run_until_killed(command, completions, kill_after_completions or 0)

    assert run(tmp_path / "clean") == 0
    killed = tmp_path / "killed"
    assert run(killed, kill_after_completions=3) == -signal.SIGKILL
    finished = len(list((killed / "logs" / "filter" / "completions").iterdir()))
    assert 3 <= finished < 8, "the kill must land mid-run"
    assert run(killed) == 0
    assert documents_bytes(killed) == documents_bytes(tmp_path / "clean")
    assert len(read_output(killed)) > 0


def test_bad_input_is_skipped_counted_and_named(tmp_path, curate):
    folder = tmp_path / "docs"
    folder.mkdir()
    good = "A perfectly ordinary paragraph of English text about Python packaging and testing. " * 5
    (folder / "good.md").write_text(good)
    (folder / "binary.bin").write_bytes(b"\x7fELF\x00\x00\x01" + bytes(range(256)) * 4)
    (folder / "latin1.txt").write_bytes("caf\xe9 cr\xe8me br\xfbl\xe9e ".encode("latin-1") * 10)
    (folder / "empty.txt").write_text("")
    (folder / "blank.md").write_text("  \n\n \t\n")
    (folder / "huge.txt").write_text("x" * 2_000_000)
    jsonl = tmp_path / "records"
    jsonl.mkdir()
    lines = "".join(f'{{"id": "{i}", "text": "{good} {i}"}}\n' for i in range(50))
    (jsonl / "truncated.jsonl.gz").write_bytes(gzip.compress(lines.encode())[:-200])
    (jsonl / "mixed.jsonl").write_text(
        '{"id": "a", "text": "fine text here"}\nnot json\n{"id": "b"}\n{"id": "c", "text": ""}\n'
    )
    (jsonl / "zero.jsonl").write_bytes(b"")
    out, stats = curate(
        [{"type": "text", "path": str(folder), "tag": "docs"}, {"type": "jsonl", "path": str(jsonl), "tag": "records"}],
        max_doc_bytes=1_000_000,
    )
    skipped = stats["skipped_records"]
    assert skipped == {
        "binary": 1,
        "invalid_utf8": 1,
        "too_large": 1,
        "unreadable_file": 1,
        "invalid_json": 1,
        "no_text": 1,
        "empty_file": 2,  # empty.txt, zero.jsonl
        "empty_text": 2,  # blank.md, record c
    }
    warnings = "".join(p.read_text() for p in sorted((out / "logs" / "filter" / "logs").glob("task_*.log")))
    named = ["empty.txt: skipped (empty file)", "zero.jsonl: skipped (empty file)"]
    named += ["blank.md record 0: skipped (empty text)", "mixed.jsonl record 3: skipped (empty text)"]
    assert [n for n in named if n not in warnings] == []
    texts = [r["text"] for r in read_output(out)]
    assert good in texts and "fine text here" in texts
    assert any(t.startswith(good) for t in texts if t != good)  # records before the break in the gzip survive
    assert stats["sources"]["docs"]["documents_kept"] == 1  # empty input is counted and named, not an error


@pytest.mark.parametrize(
    "sources, message",
    [
        ([{"type": "text", "path": "/no/such/folder"}], r"sources\[0\]\.path: /no/such/folder does not exist"),
        ([{"type": "warc"}], r"sources\[0\]\.path: a warc source needs a path"),
        ([{"type": "csv", "path": "."}], r"sources\[0\]\.type: expected one of text, jsonl"),
        ([{"type": "text", "path": ".", "colour": "red"}], r"sources\[0\]: unknown key 'colour'"),
        ([{"type": "python-docs"}, {"type": "python-docs"}], "tags must be unique"),
        ([], "give at least one source"),
    ],
)
def test_bad_sources_fail_before_any_work(tmp_path, sources, message):
    with pytest.raises(RecipeError, match=message):
        CurateArguments(output_dir=str(tmp_path / "out"), sources=sources)
    assert not (tmp_path / "out").exists()


def test_cli_reports_a_missing_source_in_one_line(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("sources: [{type: jsonl, path: /no/such.jsonl}]\n")
    result = subprocess.run([str(HFSCRATCH), "curate", str(recipe)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "hfscratch curate: error: sources[0].path: /no/such.jsonl does not exist"


def test_slurm_executor_writes_the_job_scripts_it_submits(tmp_path):
    """A stand-in `sbatch` records what would be submitted: one array job per stage, chained by dependencies."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(
        '#!/bin/sh\necho "$@" >> "$SBATCH_LOG"\nn=$(wc -l < "$SBATCH_LOG")\necho "Submitted batch job $((1000 + n))"\n'
    )
    (bin_dir / "sbatch").chmod(0o755)
    recipe = tmp_path / "slurm.yaml"
    recipe.write_text(
        f"output_dir: {tmp_path / 'run'}\nexecutor: slurm\nslurm_partition: cpu\ntasks: 16\nminhash_buckets: 4\n"
        f"slurm_venv: {tmp_path / 'venv'}\n"
    )
    env = os.environ | {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SBATCH_LOG": str(tmp_path / "sbatch.log")}
    result = subprocess.run([str(HFSCRATCH), "curate", str(recipe)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    submissions = (tmp_path / "sbatch.log").read_text().splitlines()
    stages = [
        "filter",
        "exact-signatures",
        "exact-duplicates",
        "exact-filter",
        "minhash-signatures",
        "minhash-buckets",
        "minhash-verify",
        "minhash-clusters",
        "final",
    ]
    assert len([s for s in submissions if "merge_stats" not in s]) >= len(stages)
    assert sum("--dependency=afterok:" in s for s in submissions) >= len(stages) - 1
    for stage, tasks in zip(stages, [16, 16, 1, 16, 16, 4, 4, 1, 16]):
        script = (tmp_path / "run" / "logs" / stage / "launch_script.slurm").read_text()
        assert "#SBATCH --partition=cpu" in script and f"#SBATCH --job-name=curate-{stage}" in script
        assert f"#SBATCH --array=0-{tasks - 1}" in script
        assert f"source {tmp_path / 'venv' / 'bin' / 'activate'}" in script
        assert "launch_pickled_pipeline" in script and (tmp_path / "run" / "logs" / stage / "executor.pik").is_file()


@pytest.mark.slow
def test_web_recipe_on_real_warc_files(tmp_path, shared_data, curate):
    warc = shared_data / "corpora" / "warc"
    out, stats = curate(
        [{"type": "warc", "path": str(warc), "tag": "web"}, {"type": "wet", "path": str(warc), "tag": "wet"}],
        url_filter=True,
        language_filter=True,
        exact_dedup=True,
        pii_redaction=True,
    )
    documents = read_output(out)
    assert stats["sources"]["web"]["documents_read"] >= 30  # 38 HTML responses in the three WARC files
    assert all(r["metadata"]["url"].startswith("http") for r in documents if r["metadata"]["source"] == "web")
    assert all("<html" not in r["text"].lower() for r in documents)  # Trafilatura extracted the text
    assert stats["sources"]["wet"]["documents_read"] >= 1


@pytest.mark.slow
def test_python_docs_shards_partition_the_corpus():
    """Tasks split the embedded corpus by document id: every document in exactly one task."""
    from hfscratch.curation.sources import PythonDocsReader

    def ids(rank: int, world_size: int) -> list[str]:
        return [doc.id for doc in PythonDocsReader(limit=-1).run(rank=rank, world_size=world_size)]

    everything = ids(0, 1)
    shards = [ids(rank, 3) for rank in range(3)]
    assert len(everything) > 500 and len(set(everything)) == len(everything)
    assert sorted(sum(shards, [])) == sorted(everything)
    assert all(shards)


def test_hf_dataset_source_reads_a_local_mirror(shared_data, curate):
    arc = shared_data / "benchmarks" / "allenai" / "ai2_arc"
    source = {"type": "hf", "dataset": str(arc), "config": "ARC-Easy", "split": "validation", "text_key": "question"}
    out, stats = curate([source | {"tag": "arc"}])
    documents = read_output(out)
    assert len(documents) == 570 and all(d["metadata"]["source"] == "arc" for d in documents)
