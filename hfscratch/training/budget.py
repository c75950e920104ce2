"""Time-bound pretraining: a wall-clock deadline that both the learning-rate schedule and the stop follow.

A run that must end by a deadline (the quickstart's `--minutes`) cannot know in advance how many steps will fit:
the machine may be shared, and its speed changes during the run. Measuring the first steps and fixing max_steps
from them misjudges the rest whenever the load changes, and the run then stops mid-schedule or ends early. So the
schedule is driven by progress, the larger of the two fractions

    steps done / max_steps        and        time used / time available,

fed to the recipe's own scheduler as a (fractional) step: the warmup and the cosine decay to its floor keep their
shape, laid over whichever limit binds first, and a run cut short by the clock ends its decay at the deadline
instead of being stopped in the middle of it. A run without a deadline is untouched, and so resumes bitwise
exactly; a time-bound one is not reproducible step for step, by nature.
"""

from __future__ import annotations

import collections
import math
import statistics
import time
from collections.abc import Callable

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

ScheduleFunction = Callable[[float], float]
# Seconds the caller needs after training (evaluation, ...), given the seconds one validation block took to score
# in the run's latest validation (None before the first): the estimate follows the machine's load.
ClosingEstimate = Callable[[float | None], float]
RECENT_STEPS = 5  # the step time is the median of the last 5 steps


class TimeBudget(TrainerCallback):
    """Ends training by `deadline` (a `time.monotonic()` value) with the learning-rate schedule completed.

    `PretrainTrainer` hands its scheduler's functions to `follow`. When the step about to run is the last that
    fits, the schedule gives it its end value and the callback stops the run after it, with the same log,
    validation and checkpoint an ordinary last step gets. The time after the last step is kept free: a closing
    validation (as long as the latest one took) and `closing`, what the caller needs after training. `cut_short`
    says whether the clock, not max_steps, ended the run.
    """

    def __init__(self, deadline: float, closing: ClosingEstimate | None = None):
        self.deadline = deadline
        self.closing = closing
        self.start: float | None = None
        self.start_progress = 0.0  # a resumed run continues the schedule from its step
        self.step_seconds = 0.0  # one optimizer step, lately
        self._recent: collections.deque[float] = collections.deque(maxlen=RECENT_STEPS)
        self.validation_seconds = 0.0  # the latest validation's duration: the closing one needs as long
        self.seconds_per_block: float | None = None  # of the latest validation
        self.last_step = math.inf  # set once the schedule has given a step its end value
        self._reached = 0.0  # progress never goes back, though the end it is measured against moves with the load
        self.cut_short = False
        self._step_began = 0.0
        self._cycle_began: float | None = None  # the previous step's end, unless a validation or save came between
        self._step_seconds_then = 0.0  # step time near the latest validation (0: not measured yet)
        self._steps_since_validation = 0

    # -- the schedule --------------------------------------------------------------------------------------

    def progress(self, step: int, max_steps: int) -> float:
        """Fraction of the schedule reached at the start of optimizer step `step` (0-based), which is about to
        run. The step after which no other fits before the deadline is given the schedule's end (progress 1)."""
        by_steps = step / max_steps
        if self.start is None:
            return min(1.0, by_steps)
        now, end = time.monotonic(), self.end_of_training()
        if step > 0 and self.last_step == math.inf and now + 2 * self.step_seconds > end:
            self.last_step = step + 1  # this one fits (or must run anyway: it has begun), the next would not
        if step + 1 >= self.last_step:
            return 1.0
        used = (now - self.start) / (end - self.start) if end > self.start else 1.0
        by_time = self.start_progress + (1 - self.start_progress) * used
        self._reached = max(self._reached, min(1.0, max(by_steps, by_time)))
        return self._reached

    def follow(self, schedule: ScheduleFunction, max_steps: int) -> Callable[[int], float]:
        """`schedule` (a LambdaLR function of the step) driven by `progress` instead of the step alone."""
        return lambda step: schedule(self.progress(step, max_steps) * max_steps)

    # -- the clock ------------------------------------------------------------------------------------------

    def end_of_training(self) -> float:
        """When the last step must end: the deadline, less one more validation and what the caller needs after
        training, both as the latest validation measured them, scaled by how much slower (or faster) the steps
        have become since: the machine's load changes between validations."""
        per_block = self.seconds_per_block * self.slowdown if self.seconds_per_block is not None else None
        closing = self.closing(per_block) if self.closing else 0.0
        return self.deadline - self.closing_validation_seconds - closing

    @property
    def slowdown(self) -> float:
        """How much slower the steps are now than near the latest validation (1: not measured yet)."""
        return self.step_seconds / self._step_seconds_then if self._step_seconds_then else 1.0

    @property
    def closing_validation_seconds(self) -> float:
        """The time kept for the closing validation: the latest one's, scaled by the slowdown since."""
        return self.validation_seconds * self.slowdown

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        self.start = time.monotonic()
        self.start_progress = min(1.0, state.global_step / state.max_steps) if state.max_steps else 0.0

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        self._step_began = time.monotonic()

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        metrics = kwargs.get("metrics") or {}
        if metrics.get("eval_runtime") and metrics.get("eval_samples_per_second"):
            self.validation_seconds = metrics["eval_runtime"]
            self.seconds_per_block = 1 / metrics["eval_samples_per_second"]
            self._step_seconds_then, self._steps_since_validation = 0.0, 0
        self._cycle_began = None  # the validation is no part of a step

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        self._cycle_began = None  # nor is a checkpoint

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        # A step's time is the whole cycle from the previous step's end: fetching the batch and logging happen
        # outside on_step_begin..on_step_end, and on a loaded machine they can take longer than the step itself.
        now = time.monotonic()
        self._recent.append(now - (self._cycle_began if self._cycle_began is not None else self._step_began))
        self._cycle_began = now
        self.step_seconds = statistics.median(self._recent)  # a first step's warm-up or one slow step is no trend
        self._steps_since_validation += 1
        if not self._step_seconds_then and self._steps_since_validation >= RECENT_STEPS:
            self._step_seconds_then = self.step_seconds  # the step time that goes with the latest validation
        # The step the schedule gave its end value is the last (a slow one overruns by itself, no more).
        if state.global_step >= self.last_step and state.global_step < state.max_steps:
            self.cut_short = True
            end_training(args, control)


def end_training(args: TrainingArguments, control: TrainerControl) -> None:
    """Make this step the last, with what the Trainer gives a last step: a log, a validation and a checkpoint."""
    control.should_training_stop = True
    control.should_log = True
    control.should_evaluate = args.eval_strategy != "no"
    control.should_save = args.save_strategy != "no"  # a resumable checkpoint at the stopping point
