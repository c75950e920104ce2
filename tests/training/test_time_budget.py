"""A time-bound run ends by its deadline with its learning-rate schedule completed (warmup, then the decay down to
its floor), validated at the start and at the end; a run too short for `logging_steps` still logs its losses."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from training_helpers import logged, write_recipe
from transformers import TrainerCallback, TrainerState

from hfscratch.core.recipes import parse_recipe
from hfscratch.training import budget as budget_module
from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments
from hfscratch.training.budget import TimeBudget
from hfscratch.training.pretrain import build_trainer, train
from hfscratch.training.run_info import RunInfo

KEYS = [ModelArguments, DataArguments, PretrainingArguments]
PEAK, FLOOR = 3e-3, 0.1  # the test recipe's learning rate; cosine_with_min_lr's default floor here


class Timeline(TrainerCallback):
    """When each step ended, the closing validation's reserve when the last one did, and when training ended."""

    def __init__(self, budget: TimeBudget):
        self.budget, self.step_ends, self.reserved = budget, [], 0.0

    def on_step_end(self, args, state, control, **kwargs):  # after the budget's: it comes first in the callbacks
        self.step_ends.append(time.monotonic())
        self.reserved = self.budget.closing_validation_seconds

    def on_train_end(self, args, state, control, **kwargs):
        self.at = time.monotonic()


def trainer_for(tmp_path: Path, corpus: Path, *callbacks, **keys):
    recipe = write_recipe(tmp_path / "recipe.yaml", corpus, tmp_path / "model", **keys)
    return build_trainer(*parse_recipe(KEYS, [str(recipe)], "t"), callbacks=callbacks)


def test_a_time_bound_run_ends_its_schedule_at_the_deadline(tmp_path, packed_corpus):
    seconds, closing = 20.0, 2.0  # the caller keeps 2 s after training for its own steps
    budget = TimeBudget(time.monotonic() + seconds, closing=lambda per_block: closing)
    timeline = Timeline(budget)
    trainer = trainer_for(
        tmp_path, packed_corpus, budget, timeline, max_steps=100_000, warmup_steps=2_000, logging_steps=5,
        eval_strategy="steps", eval_steps=1_000_000, max_eval_samples=16,
    )  # fmt: skip
    started = time.monotonic()  # the clock starts with training: building the trainer is no part of the test
    budget.deadline = started + seconds
    assert train(trainer) == 0
    out = tmp_path / "model"
    # Training (its closing validation included) ends when the caller's reserve begins, to within what the clock
    # can know. The last step is the one after which no other fits, by the steps' recent median (on a loaded
    # machine single steps stray from it: CI's once ran 30x slower than a quiet machine's, from 0.06 s to 2.6 s
    # here under 8 CPU hogs), and the closing validation is reserved at the latest one's duration scaled by the
    # steps' slowdown since. So the run ends up to a few steps and that reserve early, and overruns by no more
    # than two steps (a slow one that ran past the end, then the last, which gives the schedule its end value)
    # and what the closing validation took beyond its reserve.
    took, want, jitter = timeline.at - started, seconds - closing, 0.05 * seconds
    closing_validation = logged(out, "eval_runtime")[trainer.state.global_step]
    longest_step = max(b - a for a, b in itertools.pairwise([budget.start, *timeline.step_ends]))
    late = 2 * longest_step + max(0.0, closing_validation - timeline.reserved) + jitter
    assert took <= want + late, f"overran the caller's reserve by {took - want:.2f} s, allowed {late:.2f} s"
    early = 3 * budget.step_seconds + timeline.reserved + jitter
    assert took >= want - early, f"ended {want - took:.2f} s early, allowed {early:.2f} s"
    assert budget.cut_short and 5 < trainer.state.global_step < 100_000
    rates = logged(out, "learning_rate")
    last = max(rates)
    assert last == trainer.state.global_step  # the last step is logged whatever logging_steps says
    assert rates[last] == pytest.approx(FLOOR * PEAK, rel=0.02)  # the decay ended, not cut off half-way
    # The warmup was laid over the time too: from 0 up, then down.
    assert rates[1] == 0 and max(rates.values()) > 0.5 * PEAK
    assert sorted(logged(out, "eval_loss")) == [0, last]  # validated at the start and at the end
    info = RunInfo.read(out)
    assert (info.stopped_by, info.global_step, info.max_steps) == ("time budget", last, 100_000)


def test_a_run_shorter_than_its_logging_steps_logs_and_validates_both_ends(tmp_path, packed_corpus):
    trainer = trainer_for(tmp_path, packed_corpus, max_steps=5, logging_steps=10, eval_strategy="steps", eval_steps=100)
    assert train(trainer) == 0
    out = tmp_path / "model"
    assert sorted(logged(out, "loss")) == [1, 5]  # first and last step: a curve to draw
    assert sorted(logged(out, "eval_loss")) == [0, 5]
    assert (out / "loss_curve.png").stat().st_size > 10_000


def test_progress_never_goes_back_when_the_end_moves_later(monkeypatch):
    """The end of training moves with the load (the closing validation's reserve follows the latest validation
    and the steps' slowdown): progress measured against a later end must not fall, or the learning rate would
    climb back up in the middle of its decay."""
    now = [1000.0]
    monkeypatch.setattr(budget_module.time, "monotonic", lambda: now[0])
    budget = TimeBudget(deadline=1100.0)
    budget.on_train_begin(None, TrainerState(max_steps=100_000), None)
    budget.validation_seconds = 20.0  # the closing validation is kept 20 s: training ends at 1080
    now[0] = 1050.0
    assert budget.progress(10, 100_000) == pytest.approx(50 / 80)
    budget.validation_seconds = 0.0  # the next validation was quick: the end moves to 1100
    now[0] = 1051.0
    assert budget.progress(11, 100_000) == pytest.approx(50 / 80)  # not 51 / 100
    now[0] = 1090.0
    assert budget.progress(12, 100_000) == pytest.approx(0.9)
