"""A finished run is left as it is: running the same command again changes no byte of the output folder; raising
max_steps continues it from its final checkpoint; --overwrite_output_dir starts over. A run resumed from its final
checkpoint trains no step past max_steps (the Trainer checks max_steps only after a step)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from training_helpers import HFSCRATCH, REPO, clean_env, logged, pretrain_command, run, write_recipe

from hfscratch.core.recipes import parse_recipe
from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments
from hfscratch.training.pretrain import build_trainer, train
from hfscratch.training.run_info import RunInfo

# The keys the model card reads (hfscratch/hub/lineage.py, facts.py): run_info.json keeps them.
CARD_KEYS = {
    "world_size",
    "distributed_type",
    "deepspeed",
    "zero_stage",
    "gradient_accumulation_steps",
    "parameters",
    "max_steps",
    "training_args",
    "train_tokens",
    "data_dir",
    "device",
    "num_devices",
    "train_runtime_s",
    "device_hours",
}


def fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def finished_recipe(tmp_path: Path, corpus: Path) -> Path:
    return write_recipe(
        tmp_path / "recipe.yaml",
        corpus,
        tmp_path / "model",
        max_steps=4,
        save_strategy="steps",
        save_steps=2,
        resume_from_checkpoint="auto",
        eval_strategy="steps",
        eval_steps=100,
    )


def test_rerun_of_a_finished_run_changes_nothing_and_says_how_to_go_on(tmp_path, packed_corpus):
    recipe = finished_recipe(tmp_path, packed_corpus)
    out = tmp_path / "model"
    first = run(pretrain_command([str(recipe)]))  # `accelerate launch -m hfscratch.training.pretrain`'s entry
    info = RunInfo.read(out)  # typed, and with every key the model card reads
    assert (info.max_steps, info.global_step, info.stopped_by) == (4, 4, "max_steps")
    assert CARD_KEYS <= set(json.loads((out / "run_info.json").read_text()))
    # Library noise is in the run's log file, not on the console.
    assert "Setting accelerator to CPU" not in first.stdout + first.stderr
    assert "Setting accelerator to CPU" in (out / "pretrain.log").read_text()

    before = fingerprint(out)
    again = run([str(HFSCRATCH), "pretrain", str(recipe)])
    assert fingerprint(out) == before, "a rerun changed the finished run"
    lines = (again.stdout + again.stderr).strip().splitlines()
    assert len(lines) == 1 and "holds a finished run (4 steps), left unchanged" in lines[0]
    assert "--max_steps" in lines[0] and "continues from checkpoint-4" in lines[0]
    assert "--overwrite_output_dir" in lines[0]

    run([str(HFSCRATCH), "pretrain", str(recipe), "--max_steps", "6"])  # continues from checkpoint-4
    assert RunInfo.read(out).global_step == 6 and sorted(logged(out, "loss")) == [1, 2, 3, 4, 5, 6]

    run([str(HFSCRATCH), "pretrain", str(recipe), "--overwrite_output_dir", "true"])  # starts over
    assert RunInfo.read(out).global_step == 4 and not (out / "checkpoint-6").exists()
    assert sorted(logged(out, "loss")) == [1, 2, 3, 4]
    assert (out / "pretrain.log").read_text().count("Setting accelerator to CPU") == 1  # this run's log only


def test_resuming_from_the_final_checkpoint_trains_no_step_past_max_steps(tmp_path, packed_corpus):
    """The root cause of a rerun training one more step: killed after its final checkpoint but before run_info.json,
    a run resumes at max_steps; it must complete (model, run_info.json) without training."""
    recipe = finished_recipe(tmp_path, packed_corpus)
    keys = [ModelArguments, DataArguments, PretrainingArguments]
    assert train(build_trainer(*parse_recipe(keys, [str(recipe)], "t"))) == 0
    out = tmp_path / "model"
    (out / "run_info.json").unlink()  # as if killed after the last checkpoint
    weights = (out / "checkpoint-4" / "model.safetensors").read_bytes()

    trainer = build_trainer(*parse_recipe(keys, [str(recipe)], "t"))
    assert train(trainer) == 0
    assert trainer.state.global_step == 4 and not (out / "checkpoint-5").exists()
    assert (out / "model.safetensors").read_bytes() == weights and RunInfo.read(out).global_step == 4


def test_help_does_not_import_the_trainer():
    code = (
        "import sys\n"
        "from hfscratch.training import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('transformers.trainer', 'deepspeed', 'hfscratch.evaluation') if m in sys.modules]\n"
        "sys.exit(f'imported {heavy}' if heavy else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=clean_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--overwrite_output_dir" in result.stdout and "--learning_rate" in result.stdout
