import json

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaForCausalLM

from hfscratch.models.convert import LLAMA_LAYOUT, SHARED_FIELDS, from_llama, to_llama
from hfscratch.models.hfscratch import HFScratchForCausalLM


@pytest.fixture
def llama_shaped(make_model):
    """The `llama` layout with GQA, biases and tied embeddings, which Llama's config can all express."""
    return make_model(attention_bias=True, tie_word_embeddings=True, rope_parameters={"rope_theta": 500.0})


def test_to_llama_gives_the_same_logits(llama_shaped, input_ids):
    llama = to_llama(llama_shaped).eval()
    assert type(llama) is LlamaForCausalLM
    with torch.no_grad():
        assert (llama(input_ids).logits - llama_shaped(input_ids).logits).abs().max() < 1e-5


def test_exported_folder_loads_as_plain_llama(llama_shaped, input_ids, tmp_path):
    to_llama(llama_shaped).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "llama" and "auto_map" not in config
    assert not list(tmp_path.glob("*.py"))
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()  # no trust_remote_code
    assert type(reloaded) is LlamaForCausalLM
    with torch.no_grad():
        assert (reloaded(input_ids).logits - llama_shaped(input_ids).logits).abs().max() < 1e-5


# a value Llama cannot express, for every field of the Llama layout
NOT_LLAMA = {
    "norm_type": "layernorm",
    "norm_position": "post",
    "position_embedding_type": "alibi",
    "mlp_type": "plain",
    "qk_norm": True,
    "embedding_dropout": 0.1,
    "residual_dropout": 0.1,
    "sliding_window": 8,
    "logit_softcap": 30.0,
}


@pytest.mark.parametrize("field", LLAMA_LAYOUT)
def test_non_llama_layouts_name_the_field_that_blocks_export(make_config, field):
    model = HFScratchForCausalLM(make_config(**{field: NOT_LLAMA[field]}))
    with pytest.raises(ValueError, match=f"^{field}=.* cannot be exported to Llama"):
        to_llama(model)


def test_from_llama_round_trip(llama_shaped, input_ids, tmp_path):
    llama = to_llama(llama_shaped)
    back = from_llama(llama).eval()
    assert type(back) is HFScratchForCausalLM
    for field in [*SHARED_FIELDS, *LLAMA_LAYOUT]:
        assert getattr(back.config, field) == getattr(llama_shaped.config, field), field
    llama.save_pretrained(tmp_path)
    from_path = from_llama(tmp_path).eval()
    with torch.no_grad():
        expected = llama_shaped(input_ids).logits
        assert torch.equal(back(input_ids).logits, expected)
        assert torch.equal(from_path(input_ids).logits, expected)
