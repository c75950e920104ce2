"""Evaluation within a deadline: every part scores the same share of its items, as many as fit.

An evaluation made of parts (perplexity on held-out documents, the domain benchmark, each lm-eval task) is given
a deadline (`evaluate --minutes`, or what the quickstart has left). Before each part runs, the share of items
that still fits is worked out from two figures: how many tokens the model must score for every item of every part
not yet run (counted from the items themselves: their token ids, or the requests lm-eval builds for a task), and
how long one scored token takes. The second is first measured by a short probe of the model at the machine's
current load, then corrected by every part that runs (actual seconds over predicted), so the estimate follows the
load as it changes during the evaluation. Every remaining part then scores that share of its items (at least a
few, so that each part reports something), and the record says how many items each part scored.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MIN_ITEMS = 8  # a part never scores fewer items than this (or all it has): a number, however rough
# A part that cannot stop midway (an lm-eval run) plans on this share of its time when a later part can stop
# at the deadline (perplexity): estimates are off by tens of percent on a loaded machine, and the later part then
# uses what is left instead of the run overshooting.
MARGIN = 0.8
PROBE_REPEATS = 3


@dataclass
class Part:
    """One part of an evaluation, as the budget sees it."""

    name: str
    items: int  # items when run in full (documents, benchmark items)
    tokens: float  # tokens the model scores for all of them


class ScoringBudget:
    """Shares the time left before `deadline` (a `time.monotonic()` value) among the parts still to run."""

    def __init__(self, deadline: float, seconds_per_token: float):
        self.deadline = deadline
        self.seconds_per_token = seconds_per_token  # at the current load; corrected by every part that runs
        self.log: list[tuple[str, float, float]] = []  # (part, predicted seconds, actual seconds) of each part run

    @classmethod
    def probed(cls, deadline: float, forward: Callable[[], int]) -> ScoringBudget:
        """A budget whose token rate is measured now: `forward` runs one representative scoring batch and returns
        the tokens it scored (the median of a few runs, after one for warm-up)."""
        forward()
        rates = []
        for _ in range(PROBE_REPEATS):
            start = time.monotonic()
            tokens = forward()
            rates.append((time.monotonic() - start) / max(1, tokens))
        return cls(deadline, statistics.median(rates))

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()

    def predicted_seconds(self, part: Part, share: float = 1.0) -> float:
        return share * part.tokens * self.seconds_per_token

    def share(self, remaining: list[Part], margin: float = 1.0) -> float:
        """Fraction of their items that the parts in `remaining` can all score before the deadline (at most 1),
        planning on `margin` of the time left."""
        scoring = sum(part.tokens for part in remaining) * self.seconds_per_token
        if scoring <= 0:
            return 1.0
        return max(0.0, min(1.0, margin * self.seconds_left() / scoring))

    def items(self, part: Part, remaining: list[Part], margin: float = 1.0) -> int:
        """How many items `part` (the first of `remaining`) scores now."""
        share = self.share(remaining, margin)
        if share >= 1.0:
            return part.items
        return min(part.items, max(MIN_ITEMS, math.floor(share * part.items)))

    def observe(self, part: Part, items: int, seconds: float) -> None:
        """`part` scored `items` of its items in `seconds`: the token rate becomes the one it ran at (the latest
        part's, which follows the load and corrects the probe, whose batches differ from real ones)."""
        share = items / part.items if part.items else 0.0
        self.log.append((part.name, self.predicted_seconds(part, share), seconds))
        scored_tokens = share * part.tokens
        if scored_tokens > 0:
            # everything the part took (its requests built, its metrics) counts: it is what the next costs too
            self.seconds_per_token = seconds / scored_tokens


def model_probe(model: Any, rows: int, length: int) -> Callable[[], int]:
    """One forward pass of `model` over a (rows, length) batch, as lm-eval's scoring batches look: a probe."""
    import torch

    from hfscratch.evaluation.perplexity import context_length

    device = next(model.parameters()).device
    ids = torch.randint(0, model.config.vocab_size, (rows, min(length, context_length(model))), device=device)

    @torch.no_grad()
    def forward() -> int:
        model(input_ids=ids)
        return ids.numel()

    return forward
