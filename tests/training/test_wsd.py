"""Warmup-stable-decay: the shipped preset's curve is warmup, flat, decay; under a time budget the decay takes the
last part of the time; the schedule's options are checked against transformers' own when the recipe is parsed."""

from __future__ import annotations

import math

import pytest

from hfscratch.core.recipes import RecipeError, parse_recipe
from hfscratch.models.hfscratch import HFScratchConfig, HFScratchForCausalLM
from hfscratch.training import budget as budget_module
from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments
from hfscratch.training.budget import TimeBudget
from hfscratch.training.run_info import requested_steps
from hfscratch.training.trainer import PretrainTrainer

KEYS = [ModelArguments, DataArguments, PretrainingArguments]


def tiny_model() -> HFScratchForCausalLM:
    config = HFScratchConfig.from_preset(
        "llama", size="tiny", hidden_size=16, num_hidden_layers=2, num_attention_heads=2, vocab_size=50
    )
    return HFScratchForCausalLM(config)


def parse(tmp_path, *argv: str, recipe: str | None = None) -> PretrainingArguments:
    """The training arguments of `recipe` (a shipped one's name; default: none, data_dir 'x') with `argv`."""
    start = [recipe] if recipe else ["--data_dir", "x"]
    common = ["--use_cpu", "true", "--report_to", "none", "--output_dir", str(tmp_path / "out")]
    return parse_recipe(KEYS, [*start, *argv, *common], "hfscratch pretrain")[2]


def rates_of(trainer: PretrainTrainer, steps: int) -> list[float]:
    """The learning rate of each optimizer step 0 .. steps-1 from the Trainer's own scheduler."""
    trainer.create_optimizer_and_scheduler(num_training_steps=steps)
    rates = []
    for _ in range(steps):
        rates.append(trainer.lr_scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    return rates


def test_the_wsd_preset_parses_and_its_curve_is_warmup_flat_decay(tmp_path):
    args = parse(tmp_path, "--eval_strategy", "no", recipe="tiny-cpu-wsd")  # a shipped recipe, by name
    assert args.lr_scheduler_type.value == "warmup_stable_decay"
    assert args.lr_scheduler_kwargs == {"num_decay_steps": 120, "decay_type": "1-sqrt", "min_lr_ratio": 0.0}
    steps, peak = requested_steps(args), args.learning_rate
    assert (steps, args.warmup_steps, peak) == (600, 30, 3e-3)
    rates = rates_of(PretrainTrainer(model=tiny_model(), args=args), steps)
    warmup, flat, decay = rates[:30], rates[30:480], rates[480:]
    assert warmup == pytest.approx([peak * step / 30 for step in range(30)], rel=1e-12)  # linear, from 0
    assert set(flat) == {peak}  # the peak held exactly: every one of these is a checkpoint a decay can start from
    assert decay == pytest.approx([peak * (1 - math.sqrt(i / 120)) for i in range(120)], rel=1e-12, abs=1e-15)
    assert all(a > b for a, b in zip(decay, decay[1:])) and decay[-1] < 0.1 * peak


def test_wsd_under_a_time_budget_holds_the_peak_then_decays_over_the_last_part_of_the_time(tmp_path, monkeypatch):
    """The budget drives WSD like any step schedule (a LambdaLR): progress = max(steps, time) fraction, so the
    decay takes the last num_decay_steps / max_steps of the time and ends on its floor at the deadline."""
    now = [1000.0]
    monkeypatch.setattr(budget_module.time, "monotonic", lambda: now[0])
    budget = TimeBudget(deadline=1100.0)
    args = parse(
        tmp_path, "--lr_scheduler_type", "warmup_stable_decay", "--max_steps", "100000", "--warmup_steps", "1000",
        "--lr_scheduler_kwargs", '{"num_decay_steps": 20000, "decay_type": "linear", "min_lr_ratio": 0.1}',
    )  # fmt: skip
    trainer = PretrainTrainer(model=tiny_model(), args=args, callbacks=[budget])
    trainer.create_optimizer_and_scheduler(num_training_steps=args.max_steps)
    budget.on_train_begin(args, trainer.state, trainer.control)  # the clock starts at 1000 s: 100 s to go
    schedule, peak = trainer.lr_scheduler.lr_lambdas[0], args.learning_rate

    def factor_at(seconds: float, step: int) -> float:
        now[0] = 1000.0 + seconds
        return schedule(step)

    assert factor_at(0.5, 0) == pytest.approx(0.5 * 0.9 + 0.1)  # half of the warmup's 1% of the time
    assert factor_at(50, 10) == 1.0 and factor_at(79.9, 20) == 1.0  # stable for 80% of the time, whatever the step
    assert peak * factor_at(80, 25) == peak  # the decay starts when 80% of the time is used
    assert factor_at(90, 30) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the decay's 20% of the time
    assert factor_at(100, 40) == pytest.approx(0.1)  # the floor at the deadline


def test_schedule_options_are_checked_when_the_recipe_is_parsed(tmp_path):
    # Any schedule type gets its own defaults: `linear` was handed cosine_with_min_lr's min_lr_rate and raised
    # a TypeError at the first step, after the data and the model were loaded.
    linear = parse(tmp_path, "--lr_scheduler_type", "linear", "--warmup_steps", "2")
    assert linear.lr_scheduler_kwargs == {}
    assert rates_of(PretrainTrainer(model=tiny_model(), args=linear), 4) == pytest.approx([0, 2.5e-5, 5e-5, 2.5e-5])
    assert parse(tmp_path).lr_scheduler_kwargs == {"min_lr_rate": 0.1}  # the default schedule keeps its floor

    def error(*argv: str) -> str:
        with pytest.raises(RecipeError) as caught:
            parse(tmp_path, *argv)
        return str(caught.value)

    wsd = ["--lr_scheduler_type", "warmup_stable_decay"]
    assert error(*wsd) == (
        "key 'lr_scheduler_kwargs': warmup_stable_decay needs 'num_decay_steps' (e.g. {\"num_decay_steps\": 100})"
    )
    assert "warmup_stable_decay takes decay_type, min_lr_ratio" in error(
        *wsd, "--lr_scheduler_kwargs", '{"min_lr_rate": 0.1}'
    )
    assert error("--lr_scheduler_kwargs", '{"min_lr_ratio": 0.1}').startswith(
        "key 'lr_scheduler_kwargs': cosine_with_min_lr takes min_lr, min_lr_rate, num_cycles, not 'min_lr_ratio'"
    )
    assert "constant takes no options" in error("--lr_scheduler_type", "constant", "--lr_scheduler_kwargs", '{"a": 1}')
    too_long = [*wsd, "--lr_scheduler_kwargs", '{"num_decay_steps": 90}', "--max_steps", "100", "--warmup_steps", "20"]
    assert error(*too_long) == (
        "key 'lr_scheduler_kwargs': warmup (20) + num_decay_steps (90) exceed the run's 100 steps "
        "(no stable phase is left)"
    )
    assert "whole number >= 1, got 0.5" in error(*wsd, "--lr_scheduler_kwargs", '{"num_decay_steps": 0.5}')
