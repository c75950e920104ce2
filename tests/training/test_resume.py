"""Exact resume: a run killed with SIGKILL after a checkpoint and resumed with `--resume_from_checkpoint auto`
ends with bitwise the same weights, and logs the same losses, as a run that was never interrupted."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file
from training_helpers import REPO, clean_env, logged, pretrain_command, run, write_recipe

from hfscratch.core.recipes import RecipeError
from hfscratch.training.checkpoints import last_complete_checkpoint, resolve_resume

STEPS, SAVE_EVERY = 40, 5


def test_auto_resume_picks_the_newest_complete_checkpoint(tmp_path):
    assert resolve_resume("auto", str(tmp_path)) is None  # nothing yet: start fresh
    for step, state in ((5, "{}"), (10, "{}"), (15, '{"trunc')):  # 15: killed while writing its state
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    (tmp_path / "checkpoint-20").mkdir()  # killed before its state was written
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
    assert resolve_resume("auto", str(tmp_path)) == str(tmp_path / "checkpoint-10")
    with pytest.raises(RecipeError, match="checkpoint-20 is not a checkpoint folder"):
        resolve_resume(str(tmp_path / "checkpoint-20"), str(tmp_path))


def recipe(tmp_path: Path, corpus: Path, name: str) -> Path:
    # 2 micro-batches per step, so the resumed run must also restore the place inside the data order.
    return write_recipe(
        tmp_path / f"{name}.yaml",
        corpus,
        tmp_path / name,
        max_steps=STEPS,
        global_batch_tokens=512,
        save_strategy="steps",
        save_steps=SAVE_EVERY,
        save_total_limit=2,
        resume_from_checkpoint="auto",
    )


def kill_after_first_checkpoint(command: list[str], checkpoint: Path) -> None:
    process = subprocess.Popen(command, cwd=REPO, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (checkpoint / "trainer_state.json").exists():
            assert process.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_killed_and_resumed_run_matches_an_uninterrupted_one(tmp_path, packed_corpus):
    run(pretrain_command([str(recipe(tmp_path, packed_corpus, "straight"))]))

    interrupted = recipe(tmp_path, packed_corpus, "interrupted")
    out = tmp_path / "interrupted"
    kill_after_first_checkpoint(pretrain_command([str(interrupted)]), out / f"checkpoint-{SAVE_EVERY}")
    assert not (out / "model.safetensors").exists(), "killed too late: the run had finished"
    resumed_from = json.loads((last_complete_checkpoint(out) / "trainer_state.json").read_text())["global_step"]
    assert 0 < resumed_from < STEPS
    run(pretrain_command([str(interrupted)]))  # the same command again: `auto` finds the checkpoint

    straight = load_file(tmp_path / "straight" / "model.safetensors")
    resumed = load_file(out / "model.safetensors")
    assert straight.keys() == resumed.keys()
    assert all(straight[name].equal(resumed[name]) for name in straight), "weights differ after resume"
    assert logged(out, "loss") == logged(tmp_path / "straight", "loss")  # every step, before and after the kill
    assert len(logged(out, "loss")) == STEPS
