"""The pretrain CLI and the library beneath it: one-way layers, bad numbers refused before anything loads, one
FLOPs-per-token count."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest
import torch
from training_helpers import HFSCRATCH, REPO, clean_env, write_recipe

from hfscratch.core.recipes import RecipeError, parse_recipe
from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments
from hfscratch.training.callbacks import ThroughputMeter
from hfscratch.training.pretrain import build_trainer

KEYS = [ModelArguments, DataArguments, PretrainingArguments]
TRAINING = REPO / "hfscratch" / "training"
HIGHER_LAYERS = ("hfscratch.evaluation", "hfscratch.hub", "hfscratch.finetuning", "hfscratch.prompting",
                 "hfscratch.quickstart", "hfscratch.cli")  # fmt: skip


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", sorted(p.name for p in TRAINING.glob("*.py") if p.name != "cli.py"))
def test_training_library_imports_no_higher_layer(module):
    found = {m for m in imported_modules(TRAINING / module) if m.startswith(HIGHER_LAYERS)}
    assert not found, f"hfscratch/training/{module} imports {found}"


def test_a_negative_learning_rate_in_a_recipe_is_a_one_line_error(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data_dir: nowhere\nlearning_rate: -1e-3\n")
    with pytest.raises(RecipeError, match=r"^key 'learning_rate' must be a number above 0, got -0.001$"):
        parse_recipe(KEYS, [str(recipe)], "t")


def test_a_negative_learning_rate_on_the_command_line_stops_before_any_data(tmp_path):
    """`-1e-3` is the option's value (argparse read it as an option), and the range is checked at parse time:
    the data folder here does not exist, and the error is still the learning rate's."""
    command = [str(HFSCRATCH), "pretrain", "--data_dir", str(tmp_path / "none"), "--learning_rate", "-1e-3"]
    result = subprocess.run(command, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "hfscratch pretrain: error: key 'learning_rate' must be a number above 0, got -0.001"
    ]


def test_flops_per_token_of_a_model_from_elsewhere_is_the_trainers_own_count(tmp_path, packed_corpus):
    """A model without hfscratch's `flops_per_token` (here a plain Llama folder) is counted as the Trainer counts
    `total_flos` (6 x the non-embedding parameters), not 6 x all parameters as before."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=64)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(tmp_path / "llama")
    recipe = write_recipe(tmp_path / "r.yaml", packed_corpus, tmp_path / "out", max_steps=1)
    trainer = build_trainer(*parse_recipe(KEYS, [str(recipe), "--model_name_or_path", str(tmp_path / "llama")], "t"))
    meter, model = trainer.callback(ThroughputMeter), trainer.model
    assert meter.flops_per_token == 6 * model.num_parameters(exclude_embeddings=True)
    assert trainer.floating_point_ops({"input_ids": torch.zeros(2, 64)}) == 2 * 64 * meter.flops_per_token


def test_flops_per_token_of_an_hfscratch_model_is_its_own_count_for_mfu_and_total_flos(tmp_path, packed_corpus):
    recipe = write_recipe(tmp_path / "r.yaml", packed_corpus, tmp_path / "out", max_steps=1)
    trainer = build_trainer(*parse_recipe(KEYS, [str(recipe)], "t"))
    own = trainer.model.flops_per_token(64)  # 6N + attention, as `plan` counts it
    assert trainer.callback(ThroughputMeter).flops_per_token == own
    assert trainer.floating_point_ops({"input_ids": torch.zeros(2, 64)}) == 2 * 64 * own
