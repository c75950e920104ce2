"""Mixture weights: token shares, repeats, and where the weights come from."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hfscratch.core.recipes import RecipeError
from hfscratch.tokenization.mixture import mixture_indices, resolve_weights, token_shares


def corpus(sizes: dict[str, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Source tags and token counts of documents whose lengths vary between 20 and 400 tokens."""
    rng = np.random.default_rng(seed)
    sources = np.array([tag for tag, count in sizes.items() for _ in range(count)])
    return sources, rng.integers(20, 400, size=len(sources))


def realised(sources: np.ndarray, tokens: np.ndarray, indices: np.ndarray) -> dict[str, float]:
    return token_shares({tag: int(tokens[indices][sources[indices] == tag].sum()) for tag in np.unique(sources)})


@pytest.mark.parametrize(
    "weights", [{"a": 1, "b": 1, "c": 1}, {"a": 2.0, "b": 0.5, "c": 1.0}, {"a": 0.3, "b": 3.7, "c": 0.05}]
)
def test_realised_token_shares_within_one_percent_of_requested(weights):
    sources, tokens = corpus({"a": 3000, "b": 1000, "c": 500})
    natural = {tag: int(tokens[sources == tag].sum()) for tag in weights}
    requested = token_shares({tag: weights[tag] * natural[tag] for tag in weights})
    shares = realised(sources, tokens, mixture_indices(sources, tokens, weights, seed=0))
    for tag in weights:
        assert shares[tag] == pytest.approx(requested[tag], rel=0.01), tag


def test_whole_weights_repeat_each_document_and_zero_removes_a_source():
    sources, tokens = corpus({"a": 50, "b": 50, "c": 50})
    counts = Counter(mixture_indices(sources, tokens, {"a": 2.0, "b": 1.0, "c": 0.0}, seed=0).tolist())
    assert {counts[i] for i in np.flatnonzero(sources == "a")} == {2}
    assert {counts[i] for i in np.flatnonzero(sources == "b")} == {1}
    assert not any(counts[i] for i in np.flatnonzero(sources == "c"))


def test_order_is_seeded_and_mixes_sources():
    sources, tokens = corpus({"a": 200, "b": 200})
    weights = {"a": 1.5, "b": 0.5}
    first = mixture_indices(sources, tokens, weights, seed=1)
    assert np.array_equal(first, mixture_indices(sources, tokens, weights, seed=1))
    assert not np.array_equal(first, mixture_indices(sources, tokens, weights, seed=2))
    assert len(set(sources[first[:50]])) == 2


def test_weights_come_from_the_recipe_then_stats_json_then_one():
    weights = resolve_weights(["a", "b", "c"], {"a": 3.0}, {"a": 0.1, "b": 0.5})
    assert weights == {"a": 3.0, "b": 0.5, "c": 1.0}


def test_unknown_tag_or_all_zero_weights_are_recipe_errors():
    with pytest.raises(RecipeError, match=r"'mixture'.*\['wbe'\]"):
        resolve_weights(["web", "code"], {"wbe": 2.0}, {})
    with pytest.raises(RecipeError, match="every source has weight 0"):
        resolve_weights(["web"], {"web": 0.0}, {})
