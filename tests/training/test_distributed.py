"""ZeRO-2, ZeRO-3 and DDP with 2 CPU processes under real launchers: the mode is asserted, the loss falls, and
the saved folder reloads with `AutoModelForCausalLM` to the model that was trained.

"The model that was trained" is pinned by its last validation loss, computed by the training processes
(through the DeepSpeed engine or DDP) on 32 full blocks: the reloaded model must give the same mean token loss
on the same blocks, which any wrong, missing or unconsolidated weight would change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from training_helpers import (
    EVAL_BLOCKS,
    REPO,
    VENV_BIN,
    check_trained_and_reloadable,
    free_port,
    pretrain_command,
    run,
    torchrun,
    write_recipe,
)

STEPS = 12


def train_two_processes(tmp_path: Path, corpus: Path, launcher: list[str], **keys) -> tuple[Path, dict]:
    out = tmp_path / "model"
    recipe = write_recipe(
        tmp_path / "recipe.yaml",
        corpus,
        out,
        max_steps=STEPS,
        global_batch_tokens=1024,
        eval_strategy="steps",
        eval_steps=STEPS,
        max_eval_samples=EVAL_BLOCKS,
        **keys,
    )
    run(pretrain_command([str(recipe)], launcher))
    return out, json.loads((out / "run_info.json").read_text())


def test_zero2_with_two_processes(tmp_path, packed_corpus):
    out, info = train_two_processes(
        tmp_path, packed_corpus, torchrun(2), deepspeed=str(REPO / "recipes/accelerate/zero2.json")
    )
    assert (info["deepspeed"], info["zero_stage"], info["world_size"]) == (True, 2, 2)
    assert info["gradient_accumulation_steps"] == 2  # 1,024 tokens = 2 processes x 4 rows x 64 tokens x 2
    assert info["parameters_on_rank0"] == info["parameters"]  # ZeRO-2 shards optimizer states, not weights
    check_trained_and_reloadable(out, packed_corpus, STEPS)


@pytest.mark.slow
def test_zero3_with_two_processes_from_the_accelerate_config(tmp_path, packed_corpus):
    launcher = [
        str(VENV_BIN / "accelerate"),
        "launch",
        "--config_file",
        str(REPO / "recipes/accelerate/zero3.yaml"),
        "--num_processes",
        "2",
        "--main_process_port",
        str(free_port()),
    ]
    out, info = train_two_processes(tmp_path, packed_corpus, launcher)
    assert (info["deepspeed"], info["zero_stage"], info["world_size"]) == (True, 3, 2)
    assert info["parameters_on_rank0"] <= info["parameters"] // 2 + 1_000  # each rank holds about half
    check_trained_and_reloadable(out, packed_corpus, STEPS)


@pytest.mark.slow
def test_ddp_with_two_processes(tmp_path, packed_corpus):
    out, info = train_two_processes(tmp_path, packed_corpus, torchrun(2))
    assert (info["deepspeed"], info["distributed_type"], info["world_size"]) == (False, "MULTI_CPU", 2)
    check_trained_and_reloadable(out, packed_corpus, STEPS)


def test_a_checkpoint_is_marked_complete_only_after_every_rank_saved_its_rng_state(tmp_path, packed_corpus):
    # `resume_from_checkpoint: auto` trusts a checkpoint whose trainer_state.json is readable; rank 1 saving its
    # RNG state 3 s late must still find that file unwritten, or a kill in between resumes it without that state.
    out = tmp_path / "model"
    recipe = write_recipe(
        tmp_path / "recipe.yaml", packed_corpus, out, max_steps=2, save_strategy="steps", save_steps=1
    )
    run([*torchrun(2), str(Path(__file__).with_name("slow_rank_rng.py")), str(recipe)])
    for checkpoint in (out / "checkpoint-1", out / "checkpoint-2"):
        rng_states = [checkpoint / f"rng_state_{rank}.pth" for rank in (0, 1)]
        written_last = max(path.stat().st_mtime_ns for path in rng_states)
        assert (checkpoint / "trainer_state.json").stat().st_mtime_ns >= written_last, checkpoint.name
