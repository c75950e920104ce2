"""Every cache type gives the logits of a full recompute, for every layout (positions x norms x MLP types)."""

import logging

import pytest
import torch
from model_layouts import POSITIONS, layout_grid
from transformers import DynamicCache, GenerationConfig, StaticCache

from hfscratch.models.hfscratch import HFScratchForCausalLM

PREFIX = 5  # prompt tokens fed at once; the rest one at a time


def incremental_logits(model: HFScratchForCausalLM, input_ids: torch.Tensor, cache) -> torch.Tensor:
    """The prompt in one forward, then one token per forward through `cache`: (B, T, vocab)."""
    with torch.no_grad():
        steps = [model(input_ids[:, :PREFIX], cache=cache, use_cache=True).logits]
        for t in range(PREFIX, input_ids.shape[1]):
            steps.append(model(input_ids[:, t : t + 1], cache=cache, use_cache=True).logits)
    return torch.cat(steps, dim=1)


CACHES = {
    "dynamic": lambda config, length: DynamicCache(config=config),
    # longer than the sequence: the unwritten slots must be masked out, and the score bias sized by them
    "static": lambda config, length: StaticCache(config=config, max_cache_len=length + 7),
}


@pytest.mark.parametrize("cache_type", CACHES)
@pytest.mark.parametrize("sliding_window", [None, 4], ids=["full", "window4"])
@pytest.mark.parametrize("layout", layout_grid())
def test_caches_match_full_recompute(make_model, input_ids, layout, sliding_window, cache_type):
    model = make_model(**layout, sliding_window=sliding_window)
    cache = CACHES[cache_type](model.config, input_ids.shape[1])
    if sliding_window is not None:  # the caches keep only the window
        layers = {type(layer).__name__ for layer in cache.layers}
        assert layers <= {"DynamicSlidingWindowLayer", "StaticSlidingWindowLayer"}, layers
    with torch.no_grad():
        full = model(input_ids, use_cache=False).logits
    torch.testing.assert_close(incremental_logits(model, input_ids, cache), full, rtol=0, atol=1e-4)


def test_sliding_window_limits_attention(make_model, input_ids):
    """The window is real: tokens beyond it no longer change the last logits, which they do without a window."""
    changed = input_ids.clone()
    changed[:, 0] = changed[:, 0] % 96 + 1
    for window, should_change in ((4, False), (None, True)):
        model = make_model(sliding_window=window, num_hidden_layers=1)
        with torch.no_grad():
            difference = (model(input_ids).logits[:, -1] - model(changed).logits[:, -1]).abs().max()
        assert (difference > 1e-4) == should_change, (window, difference)


@pytest.mark.parametrize("position", POSITIONS)
def test_static_cache_generation_matches_recompute(make_model, input_ids, position):
    """`cache_implementation="static"` crashed for alibi and relative positions (the bias was sized by the tokens
    seen, not by the static cache's length); with left padding too."""
    model = make_model(position_embedding_type=position)
    batch, attention_mask = input_ids.clone(), torch.ones_like(input_ids)
    batch[0, :3], attention_mask[0, :3] = 0, 0
    greedy = dict(attention_mask=attention_mask, max_new_tokens=6, do_sample=False)
    static = model.generate(batch, **greedy, cache_implementation="static")
    recomputed = model.generate(batch, **greedy, use_cache=False)
    assert torch.equal(static, recomputed)


def test_cache_update_receives_the_attention_kwargs(make_model, input_ids):
    """Paged caches read their indices from `cache.update(..., kwargs)` and fill them in for the attention
    function; the kwargs were dropped."""
    model = make_model()
    seen = []

    class Recording(DynamicCache):
        def update(self, key_states, value_states, layer_idx, *args, **kwargs):
            seen.append(kwargs.get("kwargs", {}).get("read_index"))
            return super().update(key_states, value_states, layer_idx)

    with torch.no_grad():
        model(input_ids, cache=Recording(config=model.config), use_cache=True, read_index="marker")
    assert seen == ["marker"] * model.config.num_hidden_layers


@pytest.mark.slow
@pytest.mark.parametrize("position", ["rope", "sinusoidal", "alibi"])
def test_paged_cache_continuous_batching_matches_generate(make_model, input_ids, position, caplog):
    """`generate_batch` (continuous batching on a paged cache) gives `generate`'s tokens; positions that need a
    (T, S) score bias are refused with the field named (continuous batching logs it and returns no tokens)."""
    model = make_model(position_embedding_type=position)
    prompts = [input_ids[0].tolist(), input_ids[1, :7].tolist()]
    config = GenerationConfig(max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=0)
    with caplog.at_level(logging.ERROR):
        outputs = model.generate_batch(prompts, generation_config=config)
    generated = [output.generated_tokens for output in outputs.values()]
    if position == "alibi":
        assert generated == [[], []]
        assert "position_embedding_type='alibi' needs a (T, S) score bias" in caplog.text
        return
    for prompt, tokens in zip(prompts, generated):
        alone = model.generate(torch.tensor([prompt]), max_new_tokens=6, do_sample=False)
        assert tokens == alone[0, len(prompt) :].tolist()
