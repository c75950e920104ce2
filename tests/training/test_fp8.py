"""`fp8: true`: refused where it cannot run (one line, exit 2, before any data or model is read), and the
module filter handed to torchao picks exactly the seven projections of every decoder layer.

The float8 matmuls themselves need a GPU with compute capability >= 8.9; that run is part of the GPU check.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from training_helpers import REPO, clean_env
from transformers import AutoModelForCausalLM

from hfscratch.models.hfscratch import HFScratchConfig
from hfscratch.training.arguments import PretrainingArguments
from hfscratch.training.fp8 import FP8_PROJECTIONS, convert_to_fp8, fp8_unavailable, is_fp8_projection


def tiny_model(preset: str = "llama", **overrides) -> torch.nn.Module:
    config = HFScratchConfig.from_preset(
        preset, hidden_size=64, num_hidden_layers=3, num_attention_heads=4, vocab_size=96, **overrides
    )
    return AutoModelForCausalLM.from_config(config)


def expected_projections(layers: int, projections: tuple[str, ...] = FP8_PROJECTIONS) -> set[str]:
    attention = {"q_proj", "k_proj", "v_proj", "o_proj"}
    return {
        f"model.layers.{i}.{'self_attn' if name in attention else 'mlp'}.{name}"
        for i in range(layers)
        for name in projections
    }


@pytest.mark.parametrize("tied", [True, False])
def test_the_filter_picks_exactly_the_seven_projections_of_every_layer(tied):
    model = tiny_model(tie_word_embeddings=tied)
    chosen = {name for name, module in model.named_modules() if is_fp8_projection(module, name)}
    assert chosen == expected_projections(3)  # not lm_head, the embeddings or the norms
    # A preset whose MLP has no gate (GPT-2's fc/proj are up/down here) converts the six it has.
    gpt2 = tiny_model("gpt2")
    chosen = {name for name, module in gpt2.named_modules() if is_fp8_projection(module, name)}
    assert chosen == expected_projections(3, tuple(p for p in FP8_PROJECTIONS if p != "gate_proj"))


def test_the_refusal_names_the_key_and_every_missing_requirement(tmp_path):
    args = PretrainingArguments.__new__(PretrainingArguments)  # the fields fp8_unavailable reads, nothing else
    args.use_cpu, args.torch_compile = True, False
    why = fp8_unavailable(args)
    assert why.startswith("key 'fp8': FP8 training needs a CUDA GPU with compute capability >= 8.9, ")
    assert "torch_compile: true and torchao installed" in why
    assert "no CUDA GPU (use_cpu is true)" in why and "torch_compile is false" in why
    with pytest.raises(ValueError, match="key 'fp8'"):
        PretrainingArguments(output_dir=str(tmp_path / "out"), fp8=True, use_cpu=True, torch_compile=True)


def test_fp8_on_this_machine_exits_2_before_reading_data(tmp_path):
    """The data folder does not exist: an error about it would mean the arguments were not checked first."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "hfscratch.training.pretrain", "tiny-cpu", "--fp8", "true"]
    command += ["--data_dir", str(tmp_path / "missing"), "--output_dir", str(out), "--torch_compile", "true"]
    result = subprocess.run(command, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith("hfscratch pretrain: error: key 'fp8': FP8 training")
    assert not out.exists()  # nothing written


def test_conversion_swaps_exactly_those_modules_for_float8_linear():
    pytest.importorskip("torchao")
    from torchao.float8.float8_linear import Float8Linear

    model = tiny_model()
    assert set(convert_to_fp8(model)) == expected_projections(3)
    converted = {name for name, module in model.named_modules() if isinstance(module, Float8Linear)}
    assert converted == expected_projections(3)
    assert type(model.lm_head) is torch.nn.Linear


def test_conversion_refuses_sizes_fp8_matmuls_cannot_take():
    pytest.importorskip("torchao")
    from hfscratch.core.recipes import RecipeError

    model = tiny_model(intermediate_size=100)
    with pytest.raises(RecipeError, match=r"key 'fp8': model.layers.0.mlp.gate_proj is 64x100; .* multiples of 16"):
        convert_to_fp8(model)
