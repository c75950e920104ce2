"""The executors the datatrove stages of curation and tokenization share (curation/executors.py)."""

from __future__ import annotations

import os

import multiprocess.forkserver

from hfscratch.curation.executors import SlurmOptions, Stage, chain_executors
from hfscratch.curation.progress import start_forkserver
from hfscratch.tokenization.arguments import TokenizeArguments
from hfscratch.tokenization.stages import SplitSourceTokenizer, task_cores


def test_local_workers_fork_from_a_server_that_imported_every_stage_module(tmp_path):
    """Each stage's workers would otherwise import datatrove and the steps' modules again (0.9 s per stage)."""
    tokenizer = SplitSourceTokenizer(str(tmp_path), "tokenizer.json", "<eos>", 0.0, seed=0)
    stages = [Stage("tokenize", [tokenizer], tasks=2), Stage("merge", [], tasks=1)]
    chain_executors(stages, tmp_path / "logs", "local", 2, SlurmOptions(), "test", preload=None)
    preload = multiprocess.forkserver._forkserver._preload_modules
    assert preload[0] == "__main__"  # steps defined in the launching script still unpickle
    assert "hfscratch.tokenization.stages" in preload


def test_a_forkserver_started_early_is_kept_only_while_it_has_every_module_the_stages_need(tmp_path):
    """`hfscratch tokenize` starts the forkserver before it makes the tokenizer, so that its imports overlap;
    the executors keep that server where it imported all their steps' modules, and start another where not."""
    server = multiprocess.forkserver._forkserver
    start_forkserver({"hfscratch.tokenization.stages", "hfscratch.curation.sources"}, None)
    early = server._forkserver_pid
    tokenizer = SplitSourceTokenizer(str(tmp_path), "tokenizer.json", "<eos>", 0.0, seed=0)
    chain_executors([Stage("tokenize", [tokenizer], 2)], tmp_path / "logs", "local", 2, SlurmOptions(), "t", None)
    assert server._forkserver_pid == early
    start_forkserver({"hfscratch.tokenization.stages", "hfscratch.curation.blocks"}, None)
    assert server._forkserver_pid != early
    assert "hfscratch.curation.blocks" in server._preload_modules


def test_each_task_encodes_on_the_cores_it_has_to_itself(monkeypatch):
    """Two processes with a thread per core each ran at 0.55M tokens/s apiece on 2 cores; one thread each at
    0.75M: a task's encoder gets its share of the cores, one where tasks share them."""
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    local = dict(corpus=".", executor="local")
    assert task_cores(TokenizeArguments(**local, tasks=4, num_proc=4)) == 4
    assert task_cores(TokenizeArguments(**local, tasks=64, num_proc=16)) == 1
    assert task_cores(TokenizeArguments(**local, tasks=1, num_proc=16)) == 16
    slurm = TokenizeArguments(corpus=".", executor="slurm", slurm_partition="cpu", slurm_cpus_per_task=8, tasks=64)
    assert task_cores(slurm) == 8


def test_the_encoder_runs_single_threaded_in_a_task_that_shares_its_cores(tmp_path, monkeypatch):
    seen: list[tuple[str | None, str | None]] = []

    class Recording(SplitSourceTokenizer):
        def tokenize(self, data, rank):
            seen.append((os.environ.get("TOKENIZERS_PARALLELISM"), os.environ.get("RAYON_NUM_THREADS")))
            return iter(())

    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    monkeypatch.delenv("RAYON_NUM_THREADS", raising=False)
    for threads in (1, 3):
        list(Recording(str(tmp_path), "tokenizer.json", "<eos>", 0.0, seed=0, threads=threads).run(iter(())))
    assert seen == [("false", None), ("true", "3")]
    assert "TOKENIZERS_PARALLELISM" not in os.environ and "RAYON_NUM_THREADS" not in os.environ  # restored
