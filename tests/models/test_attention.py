"""Attention implementations agree for every layout; FlashAttention is refused, naming the field, where a score bias
is needed."""

import re

import pytest
import torch
from model_layouts import layout_grid
from torch.nn.attention.flex_attention import flex_attention
from transformers.integrations.flex_attention import WrappedFlexAttention

from hfscratch.models.hfscratch import HFScratchForCausalLM

pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")


@pytest.fixture
def flex_calls(monkeypatch) -> list[int]:
    """transformers' flex path with torch's unfused flex attention (the same score_mod and block mask, no inductor
    build per layout, which takes 5-50 s on this CPU); counts the calls, so a test can assert flex really ran."""
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return flex_attention(*args, **kwargs)

    monkeypatch.setattr(WrappedFlexAttention(training=False), "_compiled_flex_attention", counted)
    return calls


def left_padded(input_ids: torch.Tensor) -> torch.Tensor:
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, :3] = 0
    return attention_mask


def logits_by_implementation(model, input_ids, attention_mask, implementations) -> dict[str, torch.Tensor]:
    results = {}
    with torch.no_grad():
        for implementation in implementations:
            model.set_attn_implementation(implementation)
            assert model.config._attn_implementation == implementation
            results[implementation] = model(input_ids, attention_mask=attention_mask).logits
    return results


@pytest.mark.parametrize("layout", layout_grid())
def test_flex_sdpa_and_eager_agree(make_model, input_ids, flex_calls, layout):
    model = make_model(**layout)
    attention_mask = left_padded(input_ids)
    logits = logits_by_implementation(model, input_ids, attention_mask, ("eager", "sdpa", "flex_attention"))
    assert len(flex_calls) == model.config.num_hidden_layers
    real = attention_mask.bool()
    for implementation in ("sdpa", "flex_attention"):
        difference = (logits[implementation][real] - logits["eager"][real]).abs().max()
        assert difference < 1e-5, f"{implementation}: {difference}"


@pytest.mark.parametrize("num_key_value_heads", [4, 1])
@pytest.mark.parametrize("position", ["alibi", "relative"])
def test_flex_score_bias_with_gqa_and_cache(make_model, input_ids, flex_calls, position, num_key_value_heads):
    """The bias goes through flex attention's score_mod for every head layout, also when decoding from a cache."""
    model = make_model(position_embedding_type=position, num_key_value_heads=num_key_value_heads)
    model.set_attn_implementation("eager")
    expected = model.generate(input_ids, max_new_tokens=5, do_sample=False, use_cache=False)
    model.set_attn_implementation("flex_attention")
    assert torch.equal(model.generate(input_ids, max_new_tokens=5, do_sample=False), expected)
    assert flex_calls


@pytest.mark.slow
@pytest.mark.parametrize("position", ["alibi", "relative", "rope"])
def test_compiled_flex_kernel_matches_eager(make_model, input_ids, position):
    """transformers' own compiled flex attention (an inductor kernel on CPU), not the unfused one."""
    model = make_model(position_embedding_type=position)
    attention_mask = left_padded(input_ids)
    logits = logits_by_implementation(model, input_ids, attention_mask, ("eager", "flex_attention"))
    real = attention_mask.bool()
    assert (logits["flex_attention"][real] - logits["eager"][real]).abs().max() < 1e-5


FLASH_NAMES = ["flash_attention_2", "flash_attention_3", "kernels-community/flash-attn3"]


@pytest.mark.parametrize("implementation", FLASH_NAMES)
@pytest.mark.parametrize("position", ["alibi", "relative"])
def test_flash_attention_refused_for_score_biases_naming_the_field(make_config, position, implementation):
    message = (
        f"attn_implementation='{implementation}' cannot add the attention-score bias of "
        f"position_embedding_type='{position}'; use 'flex_attention', 'sdpa' or 'eager'."
    )
    config = make_config(position_embedding_type=position)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        HFScratchForCausalLM._from_config(config, attn_implementation=implementation)
    model = HFScratchForCausalLM(make_config(position_embedding_type=position))
    with pytest.raises(ValueError, match="cannot add the attention-score bias"):
        model.set_attn_implementation(implementation)
    assert model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("implementation", FLASH_NAMES)
@pytest.mark.parametrize("position", ["rope", "learned", "sinusoidal"])
def test_flash_attention_names_pass_through_for_other_positions(make_config, position, implementation):
    """Accepted by the model (`_supports_flash_attn`); what stops them here is the missing package or kernel
    (no flash-attn, no `kernels`, no Hub), which transformers reports itself."""
    model = HFScratchForCausalLM(make_config(position_embedding_type=position))
    assert model._supports_flash_attn
    with pytest.raises(Exception) as error:
        model.set_attn_implementation(implementation)
    assert "attention-score bias" not in str(error.value)
