"""scores.json: every result `hfscratch evaluate` has recorded for one model, one entry per task.

Runs accumulate. A second `hfscratch evaluate MODEL --tasks arc_easy` adds (or replaces) arc_easy and keeps the
domain benchmark, perplexity and every other task from earlier runs: the newest run of a task wins, and each
entry records the settings it ran with (few-shot count, item limit, date, lm-eval version), so a table that mixes
runs says so row by row. Results of other weights are never mixed in: the record carries a fingerprint of the
model's weights, and an evaluation of different weights (a retrained folder) starts a new record.

Units: every accuracy-like number (task scores, their standard errors and chance levels, the average, the domain
benchmark's metrics, open-ended `*_acc` and judge scores) is stored in percent, as the Open LLM Leaderboard
shows them; the model card, report.md, the plot and the model-index show these same numbers. BLEU and ROUGE are
0-100 by definition; perplexity, bits per byte and human ratings (1-5) keep their own units.

Every reader (the model card, the lineage, report.md, the quickstart) reads the file through `Scores.read`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from hfscratch.core.artifacts import Artifact, ArtifactError
from hfscratch.core.recipes import RecipeError


def now() -> str:
    """The date entries record: UTC, to the second (ISO 8601)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def percent(fraction: float | None) -> float | None:
    """lm-eval's fractions (0.4547) as the percent (45.47) this file stores."""
    return None if fraction is None else 100.0 * fraction


@dataclass
class TaskScore:
    """One task's headline number: an lm-eval task or group, or the domain cloze benchmark."""

    task: str  # lm-eval's name (arc_easy, mmlu, hfscratch_domain): the key runs accumulate by
    task_name: str  # as the card and model-index name it (ARC (Easy), Domain cloze)
    dataset_type: str  # the Hub dataset id, or "local"
    dataset_name: str | None  # the dataset's config (ARC-Easy)
    split: str | None
    metric: str  # acc, acc_norm, acc_mutual_info, ...
    score: float  # percent
    stderr: float | None  # percent
    chance: float | None  # percent: a uniform guesser's expected score over the items scored
    num_fewshot: int
    samples: int  # items scored
    limit: float | None  # the run's --limit (None: the full split)
    date: str
    lm_eval_version: str
    metrics: dict[str, float] = field(default_factory=dict)  # the task's other metrics, percent (domain: acc, ...)


@dataclass
class Average:
    """A preset's average (the leaderboard's mean of its tasks' headline numbers), in percent."""

    preset: str
    tasks: list[str]
    score: float
    chance: float | None
    date: str


@dataclass
class PerplexityScore:
    dataset: str  # the held-out data as given (a `hfscratch tokenize` folder or a file): the key
    documents: int
    tokens: int
    bytes: int
    window: int
    stride: int
    nats_per_token: float
    perplexity: float
    bits_per_byte: float
    date: str
    of_documents: int | None = None  # documents held out, when a time budget scored only `documents` of them


@dataclass
class OpenEndedScore:
    source: str  # truthfulqa_gen or the prompt file: the key
    prompts: int
    metrics: dict[str, float]  # means over prompts: BLEU/ROUGE (0-100), *_acc and judge in percent
    items: list[dict[str, Any]]  # each prompt's answer and scores
    max_new_tokens: int
    date: str


@dataclass
class HumanScore:
    items: int
    raters: int
    ratings: int
    mean: float  # on the sheet's 1-5 scale
    ci95: list[float]
    agreement_kappa: float | None
    exact_agreement: float | None  # percent
    date: str


@dataclass
class Scores(Artifact):
    FILE: ClassVar[str] = "scores.json"
    SCHEMA_VERSION: ClassVar[int] = 2

    model: str  # the model folder's name
    weights_fingerprint: str | None = None  # `hfscratch.models.loading.weights_fingerprint` of what was scored
    tasks: dict[str, TaskScore] = field(default_factory=dict)  # by task, in the order first recorded
    averages: dict[str, Average] = field(default_factory=dict)  # by preset
    perplexity: dict[str, PerplexityScore] = field(default_factory=dict)  # by dataset
    open_ended: dict[str, OpenEndedScore] = field(default_factory=dict)  # by source
    human: HumanScore | None = None

    def is_empty(self) -> bool:
        return not (self.tasks or self.perplexity or self.open_ended or self.human)

    def merged_into(self, earlier: Scores | None) -> Scores:
        """This run's results on top of an earlier record of the same weights: the newest entry of a task wins.

        An average whose tasks a newer run has re-scored no longer describes the rows shown beside it: dropped.
        """
        if earlier is None:
            return self
        if earlier.weights_fingerprint != self.weights_fingerprint:
            print(
                f"note: the recorded scores.json describes other weights (model {earlier.model!r}, before a "
                "retraining?): starting a new record",
                file=sys.stderr,
            )
            return self
        averages = {
            preset: avg for preset, avg in earlier.averages.items() if not set(avg.tasks) & set(self.tasks)
        } | self.averages
        return replace(
            self,
            tasks=earlier.tasks | self.tasks,
            averages=averages,
            perplexity=earlier.perplexity | self.perplexity,
            open_ended=earlier.open_ended | self.open_ended,
            human=self.human or earlier.human,
        )


def read_scores(folder: str | Path) -> Scores | None:
    """`Scores.read_or_none`, its `ArtifactError` as the one-line `RecipeError` the CLI prints."""
    try:
        return Scores.read_or_none(folder)
    except ArtifactError as exc:
        raise RecipeError(str(exc)) from None
