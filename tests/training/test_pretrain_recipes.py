"""The shipped pretrain recipes parse, and the accelerate/DeepSpeed configs fit together."""

from __future__ import annotations

import json

import pytest
import yaml
from training_helpers import REPO

from hfscratch.core.recipes import RecipeError, parse_recipe
from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments
from hfscratch.training.pretrain import build_trainer

PRETRAIN = REPO / "recipes" / "pretrain"
ACCELERATE = REPO / "recipes" / "accelerate"
KEYS = [ModelArguments, DataArguments, PretrainingArguments]


@pytest.mark.parametrize("name", ["tiny-cpu", "shakespeare-cpu", "125m", "1b", "7b"])
def test_pretrain_recipes_parse(name):
    # The GPU recipes ask for bf16, which TrainingArguments refuses on a machine without a GPU unless use_cpu.
    model, data, training = parse_recipe(KEYS, [str(PRETRAIN / f"{name}.yaml"), "--use_cpu", "true"], "test")
    assert training.lr_scheduler_type == "cosine_with_min_lr" and training.lr_scheduler_kwargs == {"min_lr_rate": 0.1}
    assert training.resume_from_checkpoint == "auto" or name == "shakespeare-cpu"
    assert model.model_preset in ("llama", "gpt2")


def test_bad_recipe_values_are_one_line_errors(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("data_dir: x\nglobal_batch_tokens: lots\n")
    with pytest.raises(RecipeError, match="key 'global_batch_tokens' expects an integer or null, got 'lots'"):
        parse_recipe(KEYS, [str(recipe)], "test")
    with pytest.raises(RecipeError, match="'train_tokens' needs 'global_batch_tokens'"):
        parse_recipe(KEYS, ["--data_dir", "x", "--train_tokens", "1000", "--use_cpu", "true"], "test")
    model, _, _ = parse_recipe(KEYS, ["--data_dir", "x", "--config_overrides", "hidden_size=64,qk_norm=true"], "test")
    assert model.overrides() == {"hidden_size": 64, "qk_norm": True}
    with pytest.raises(ValueError, match="key=value pairs"):
        ModelArguments(config_overrides="hidden_size").overrides()


def test_model_and_data_mistakes_are_recipe_errors(tmp_path, packed_corpus):
    def build(*overrides: str) -> None:
        build_trainer(*parse_recipe(KEYS, ["--use_cpu", "true", "--report_to", "none", *overrides], "test"))

    with pytest.raises(RecipeError, match="has no tokenizer/ and packed/ or tokens/"):
        build("--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "out"))
    data = ["--data_dir", str(packed_corpus), "--output_dir", str(tmp_path / "out")]
    with pytest.raises(RecipeError, match="'hidden_sise' is not a model config field \\(did you mean 'hidden_size'"):
        build(*data, "--config_overrides", "hidden_sise=64")
    with pytest.raises(RecipeError, match="blocks have 64 tokens, more than .* max_position_embeddings \\(32\\)"):
        build(*data, "--model_preset", "gpt2", "--config_overrides", "max_position_embeddings=32")
    with pytest.raises(RecipeError, match="global_batch_tokens' is 1,000, not a multiple of world size 1 x"):
        build(*data, "--global_batch_tokens", "1000")


@pytest.mark.parametrize("engine", ["zero1", "zero2", "zero3", "zero3-offload", "multinode-zero3"])
def test_deepspeed_launch_configs_name_an_existing_json_with_trainer_filled_values(engine):
    launch = yaml.safe_load((ACCELERATE / f"{engine}.yaml").read_text())
    assert launch["distributed_type"] == "DEEPSPEED" and "mixed_precision" not in launch
    config = json.loads((REPO / launch["deepspeed_config"]["deepspeed_config_file"]).read_text())
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping"):
        assert config[key] == "auto"
    assert "optimizer" not in config  # the Trainer's AdamW keeps the weight-decay groups
    stage = config["zero_optimization"]["stage"]
    assert launch["deepspeed_config"]["zero3_init_flag"] == (stage == 3)
    if stage == 3:
        assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
