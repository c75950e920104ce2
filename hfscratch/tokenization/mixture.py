"""Per-source mixture weights, defined on tokens.

A source with weight `w` contributes `w` times its own training tokens to an epoch, so its share of the
training tokens is `w_s * T_s / sum_r(w_r * T_r)`. The whole part of `w` repeats every document of the
source; the fractional part adds a seeded random subset of its documents whose tokens come closest to
`frac(w) * T_s` (see `fractional_sample`). `w = 2` thus shows each document twice, `w = 0.5` about half
of them, `w = 0` none.
"""

from __future__ import annotations

import math

import numpy as np

from hfscratch.core.recipes import RecipeError


def resolve_weights(tags: list[str], recipe: dict[str, float] | None, curated: dict[str, float]) -> dict[str, float]:
    """Each tag's weight: the recipe's, else the curation step's stats.json, else 1.0."""
    unknown = sorted(set(recipe or {}) - set(tags))
    if unknown:
        raise RecipeError(f"key 'mixture': no documents with source tag(s) {unknown}; the corpus has {sorted(tags)}")
    weights = {tag: (recipe or {}).get(tag, curated.get(tag, 1.0)) for tag in tags}
    if not any(weights[tag] > 0 for tag in tags):
        raise RecipeError(f"key 'mixture': every source has weight 0 ({weights}); nothing would be trained on")
    return weights


def mixture_indices(sources: np.ndarray, tokens: np.ndarray, weights: dict[str, float], seed: int) -> np.ndarray:
    """Row numbers of the documents of one epoch, repeats included, in a seeded random order.

    `sources[i]` is the tag of document `i` and `tokens[i]` the tokens it adds to the stream.
    """
    rng = np.random.default_rng(seed)
    picks = []
    for tag in sorted(weights):  # sorted: the rng draws in the same order on every run
        members = np.flatnonzero(sources == tag)
        fraction, whole = math.modf(weights[tag])
        picks.extend([members] * int(whole))
        if fraction > 0 and len(members):
            picks.append(fractional_sample(rng.permutation(members), tokens, fraction))
    indices = np.concatenate(picks) if picks else np.empty(0, dtype=np.int64)
    rng.shuffle(indices)  # mixes sources within blocks
    return indices


def fractional_sample(order: np.ndarray, tokens: np.ndarray, fraction: float) -> np.ndarray:
    """Documents of `order` whose tokens come closest to `fraction` of all of theirs.

    The longest prefix that stays under the target, plus the one later document that best fills the gap:
    the error is then about the smallest length difference between documents, not a whole document.
    """
    cumulative = np.cumsum(tokens[order])
    target = fraction * cumulative[-1]
    count = int(np.searchsorted(cumulative, target, side="right"))  # the first `count` stay under the target
    gap = target - (cumulative[count - 1] if count else 0)
    rest = order[count:]
    if len(rest):
        best = int(np.argmin(np.abs(tokens[rest] - gap)))
        if abs(tokens[rest[best]] - gap) < gap:
            return np.append(order[:count], rest[best])
    return order[:count]


def token_shares(tokens_by_source: dict[str, int]) -> dict[str, float]:
    total = sum(tokens_by_source.values())
    return {tag: count / total if total else 0.0 for tag, count in tokens_by_source.items()}
