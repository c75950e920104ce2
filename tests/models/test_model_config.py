import re

import pytest
from transformers import AutoConfig, AutoModelForCausalLM

from hfscratch.models.hfscratch import CHOICES, PRESETS, SIZES, HFScratchConfig, HFScratchForCausalLM


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_are_fields_of_one_config_class(preset):
    config = HFScratchConfig.from_preset(preset, size="tiny", vocab_size=100)
    assert type(config) is HFScratchConfig
    assert {field: getattr(config, field) for field in PRESETS[preset]} == PRESETS[preset]
    assert config.hidden_size == SIZES["tiny"]["hidden_size"]


def test_preset_covers_the_classic_architectures():
    positions = {preset["position_embedding_type"] for preset in PRESETS.values()}
    assert positions == set(CHOICES["position_embedding_type"])
    gpt2, llama, vaswani = PRESETS["gpt2"], PRESETS["llama"], PRESETS["vaswani"]
    assert (gpt2["norm_position"], gpt2["attention_bias"], gpt2["tie_word_embeddings"]) == ("pre", True, True)
    assert (llama["norm_type"], llama["mlp_type"], llama["hidden_act"]) == ("rmsnorm", "gated", "silu")
    assert (vaswani["norm_position"], vaswani["hidden_act"]) == ("post", "relu")


def test_overrides_win_over_preset_and_size():
    config = HFScratchConfig.from_preset("llama", size="1b", num_key_value_heads=8, hidden_act="gelu")
    assert (config.num_key_value_heads, config.hidden_act, config.hidden_size) == (8, "gelu", 2048)


def test_derived_defaults():
    llama_7b = HFScratchConfig.from_preset("llama", size="7b")
    assert (llama_7b.head_dim, llama_7b.num_key_value_heads, llama_7b.intermediate_size) == (128, 32, 11008)
    assert HFScratchConfig.from_preset("gpt2").intermediate_size == 4 * 768


def test_tensor_parallel_plan_only_where_heads_can_be_split():
    assert HFScratchConfig.from_preset("llama").base_model_tp_plan["layers.*.self_attn.q_proj"] == "colwise"
    assert HFScratchConfig.from_preset("bloom").base_model_tp_plan is None
    assert "base_model_tp_plan" not in HFScratchConfig.from_preset("bloom").to_dict()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hidden_size": 100, "num_attention_heads": 3}, "num_attention_heads=3 must divide hidden_size=100"),
        ({"num_attention_heads": 12, "num_key_value_heads": 5}, "num_key_value_heads=5 must divide"),
        ({"hidden_size": 30, "num_attention_heads": 2, "head_dim": 15}, "head_dim=15 must be even"),
        ({"norm_type": "batchnorm"}, "norm_type='batchnorm' is not supported; choose one of 'layernorm', 'rmsnorm'"),
        ({"norm_position": "middle"}, "norm_position='middle' is not supported; choose one of 'pre', 'post'"),
        ({"mlp_type": "moe"}, "mlp_type='moe' is not supported; choose one of 'plain', 'gated'"),
        ({"position_embedding_type": "xpos"}, "position_embedding_type='xpos' is not supported; choose one of"),
        ({"hidden_act": "swish2"}, "hidden_act='swish2' is not supported; choose one of"),
        ({"residual_dropout": 1.5}, "residual_dropout=1.5 must be in [0, 1)"),
    ],
)
def test_invalid_combinations_raise_when_built(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        HFScratchConfig(**fields)


def test_unknown_preset_or_size_names_the_choices():
    with pytest.raises(ValueError, match="preset='gpt5' is not supported; choose one of 'gpt2', 'llama'"):
        HFScratchConfig.from_preset("gpt5")
    with pytest.raises(ValueError, match="size='3b' is not supported; choose one of 'tiny'"):
        HFScratchConfig.from_preset("llama", size="3b")


def test_odd_head_dim_is_fine_without_rope():
    assert HFScratchConfig(hidden_size=30, num_attention_heads=2, position_embedding_type="alibi").head_dim == 15


def test_save_and_reload_through_auto_config(tmp_path):
    config = HFScratchConfig.from_preset("t5", size="tiny", qk_norm=True)
    config.save_pretrained(tmp_path)
    reloaded = AutoConfig.from_pretrained(tmp_path)
    assert type(reloaded) is HFScratchConfig
    assert {**reloaded.to_dict(), "_name_or_path": ""} == config.to_dict()


def test_auto_classes_know_the_model_type():
    model = AutoModelForCausalLM.from_config(HFScratchConfig.from_preset("llama", size="tiny", vocab_size=100))
    assert type(model) is HFScratchForCausalLM


def test_pipeline_plan_where_positions_enter_inside_the_layers():
    """Llama's pipeline plan (embedding, layers, norm): true for RoPE, ALiBi and relative positions, computed next
    to the layers; learned and sinusoidal ones are added between the embedding and the first layer."""
    assert HFScratchForCausalLM._pp_plan == {"lm_head": (["hidden_states"], ["logits"])}
    for preset in ("llama", "bloom", "t5"):
        assert HFScratchConfig.from_preset(preset).base_model_pp_plan["layers"] == (
            ["hidden_states", "attention_mask"],
            ["hidden_states"],
        )
    for preset in ("gpt2", "vaswani"):
        assert HFScratchConfig.from_preset(preset).base_model_pp_plan is None
