"""A time-bound run ends by its deadline with its learning-rate schedule completed (warmup, then the decay down to
its floor), validated at the start and at the end; a run too short for `logging_steps` still logs its losses."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from training_helpers import logged, write_recipe
from transformers import TrainerCallback

from hfscratch.core.recipes import parse_recipe
from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments
from hfscratch.training.budget import TimeBudget
from hfscratch.training.pretrain import build_trainer, train
from hfscratch.training.run_info import RunInfo

KEYS = [ModelArguments, DataArguments, PretrainingArguments]
PEAK, FLOOR = 3e-3, 0.1  # the test recipe's learning rate; cosine_with_min_lr's default floor here


class TrainingEnd(TrainerCallback):
    def on_train_end(self, args, state, control, **kwargs):
        self.at = time.monotonic()


def trainer_for(tmp_path: Path, corpus: Path, *callbacks, **keys):
    recipe = write_recipe(tmp_path / "recipe.yaml", corpus, tmp_path / "model", **keys)
    return build_trainer(*parse_recipe(KEYS, [str(recipe)], "t"), callbacks=callbacks)


def test_a_time_bound_run_ends_its_schedule_at_the_deadline(tmp_path, packed_corpus):
    seconds, closing = 20.0, 2.0  # the caller keeps 2 s after training for its own steps
    end = TrainingEnd()
    budget = TimeBudget(time.monotonic() + seconds, closing=lambda per_block: closing)
    trainer = trainer_for(
        tmp_path, packed_corpus, budget, end, max_steps=100_000, warmup_steps=2_000, logging_steps=10,
        eval_strategy="steps", eval_steps=1_000_000, max_eval_samples=16,
    )  # fmt: skip
    started = budget.deadline - seconds
    assert train(trainer) == 0
    out = tmp_path / "model"
    # Training (its closing validation included) ends when the caller's reserve begins. At 20 s a loaded machine's
    # jitter (a step, a validation) is a few percent; the quickstart's test holds its minutes to 5%.
    assert end.at - started == pytest.approx(seconds - closing, abs=0.1 * seconds)
    assert budget.cut_short and 10 < trainer.state.global_step < 100_000
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
