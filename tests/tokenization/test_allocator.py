"""The encoding processes' C allocator (core/allocator.py): asked for, it runs or the step says why not, and it
never changes a token."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_token_shards import corpus_records, tree_bytes, write_jsonl
from tokenization_helpers import step_argv

from hfscratch.core import allocator
from hfscratch.core.recipes import RecipeError
from hfscratch.curation.executors import slurm_environment
from hfscratch.tokenization.arguments import TokenizeArguments
from hfscratch.tokenization.pipeline import run_tokenize

HFSCRATCH = Path(sys.executable).with_name("hfscratch")
INSTALLED = [name for name in allocator.ALLOCATORS if allocator.find_library(name) is not None]
needs_one = pytest.mark.skipif(
    not INSTALLED, reason=f"needs mimalloc or jemalloc installed ({allocator.INSTALL_HINT}); none is here"
)


def test_a_named_allocator_that_is_not_installed_is_a_one_line_error_and_auto_takes_the_system_one(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(allocator, "library_dirs", lambda: [tmp_path])  # a machine with neither installed
    with pytest.raises(RecipeError, match=r"^key 'allocator': mimalloc is not installed \(no libmimalloc\.so\*"):
        allocator.resolve("mimalloc")
    assert allocator.resolve("auto") == ("system", None)
    (tmp_path / "libjemalloc.so.2").write_bytes(b"")
    assert allocator.resolve("auto") == ("jemalloc", tmp_path / "libjemalloc.so.2")  # the one installed


def test_a_process_that_does_not_run_the_allocator_asked_for_refuses_to_encode(tmp_path):
    """This test's process was started with the system allocator: `allocator: mimalloc` must not silently
    encode with it (`hfscratch tokenize` starts itself again under it; a `run_tokenize` call cannot)."""
    assert allocator.loaded_allocator() == "system"
    corpus = write_jsonl(tmp_path / "corpus.jsonl", corpus_records()[:20])
    args = TokenizeArguments(corpus=str(corpus), out=str(tmp_path / "out"), vocab_size=300, allocator="mimalloc")
    with pytest.raises(RecipeError, match=r"^key 'allocator': mimalloc was asked for and this process .* runs system"):
        run_tokenize(args)
    assert not (tmp_path / "out" / "stats.json").exists()


def test_preload_keeps_other_libraries_and_replaces_a_known_allocator():
    value = allocator.preload_value(Path("/lib/libmimalloc.so.2"), "/opt/libjemalloc.so.2:/opt/libprofiler.so")
    assert value == "/lib/libmimalloc.so.2 /opt/libprofiler.so"
    assert allocator.preload_value(None, "/opt/libjemalloc.so.2") is None


def test_slurm_tasks_start_with_the_allocator_after_their_environment():
    script = slurm_environment("/env", "/usr/lib/libmimalloc.so.2")
    assert script == "source /env/bin/activate && export LD_PRELOAD=/usr/lib/libmimalloc.so.2"
    assert slurm_environment(None, None) is None


@needs_one
def test_token_shard_tasks_run_the_allocator_asked_for_and_write_the_same_bytes(tmp_path):
    """Each run's tasks fork from a forkserver started with its allocator: a server left from the run before
    (another allocator) must not be reused, or the system run would encode with mimalloc and fail its check."""
    corpus = write_jsonl(tmp_path / "corpus.jsonl", corpus_records())
    outputs = {}
    for choice in (INSTALLED[0], "system", "auto"):
        out = tmp_path / choice
        args = TokenizeArguments(
            corpus=str(corpus), out=str(out), vocab_size=300, executor="local", tasks=2, num_proc=2, allocator=choice
        )
        stats = run_tokenize(args)
        assert stats.allocator == (INSTALLED[0] if choice == "auto" else choice)
        outputs[choice] = tree_bytes(out / "tokens")
    assert outputs[INSTALLED[0]] == outputs["system"] == outputs["auto"]


@needs_one
def test_hfscratch_tokenize_starts_again_under_the_allocator_with_the_same_blocks(tmp_path):
    corpus = write_jsonl(tmp_path / "corpus.jsonl", corpus_records())
    for choice in (INSTALLED[0], "system"):
        command = [str(HFSCRATCH), "tokenize", *step_argv(corpus, tmp_path / choice), "--allocator", choice]
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert json.loads((tmp_path / choice / "stats.json").read_text())["allocator"] == choice
    blocks = {choice: arrow_files(tmp_path / choice / "packed") for choice in (INSTALLED[0], "system")}
    assert blocks[INSTALLED[0]] == blocks["system"] and blocks["system"]


def arrow_files(folder: Path) -> dict[str, bytes]:
    """The packed blocks' Arrow files (state.json holds a fingerprint that differs run to run)."""
    return {name: data for name, data in tree_bytes(folder).items() if name.endswith(".arrow")}
