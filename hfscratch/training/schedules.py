"""The learning-rate schedule's options, checked when the recipe is parsed against transformers' own schedules.

The Trainer hands `lr_scheduler_kwargs` to the schedule function `transformers.get_scheduler` picks for
`lr_scheduler_type`; a key that function does not take is a `TypeError` at the first step, after the data and
the model are loaded, and for some types (`constant`, `constant_with_warmup`) the keys are dropped without a
word. So the keys are checked here against that function's signature, before anything is loaded. A recipe that
names no options gets the defaults of its type: `cosine_with_min_lr` decays to 10% of the peak (`min_lr_rate`
0.1), the others take transformers' own.

`warmup_stable_decay` (WSD, as SmolLM3 and nanochat train): linear warmup, the peak held, then a decay over the
last `num_decay_steps` steps (`decay_type` linear, cosine or 1-sqrt, down to `min_lr_ratio` of the peak). The
stable phase is what `--decay_from` decays from (`hfscratch.training.decay`). Under a time budget (`--minutes`)
the schedule runs on progress like the others: the decay takes the last num_decay_steps / max_steps of it.
"""

from __future__ import annotations

import inspect
from typing import Any

from transformers import SchedulerType
from transformers.optimization import TYPE_TO_SCHEDULER_FUNCTION

DEFAULT_KWARGS: dict[str, dict[str, Any]] = {SchedulerType.COSINE_WITH_MIN_LR.value: {"min_lr_rate": 0.1}}
# What `get_scheduler` passes itself; `last_epoch` is the Trainer's business (resuming restores the step).
PASSED_BY_THE_TRAINER = {"optimizer", "num_warmup_steps", "num_training_steps", "last_epoch"}
# Types whose function `get_scheduler` calls without lr_scheduler_kwargs (it would drop them silently).
TAKES_NO_KWARGS = {SchedulerType.CONSTANT.value, SchedulerType.CONSTANT_WITH_WARMUP.value}
NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def scheduler_name(args: Any) -> str:
    kind = args.lr_scheduler_type
    return kind.value if isinstance(kind, SchedulerType) else str(kind)


def scheduler_options(kind: str) -> tuple[set[str] | None, set[str]]:
    """The `lr_scheduler_kwargs` keys schedule `kind` takes (None: any, for a function of **kwargs), and those
    of them it requires."""
    if kind in TAKES_NO_KWARGS:
        return set(), set()
    parameters = inspect.signature(TYPE_TO_SCHEDULER_FUNCTION[SchedulerType(kind)]).parameters
    options = {name: p for name, p in parameters.items() if name not in PASSED_BY_THE_TRAINER}
    required = {name for name, p in options.items() if p.default is p.empty and p.kind in NAMED}
    if any(p.kind is p.VAR_KEYWORD for p in options.values()):
        return None, required
    return {name for name, p in options.items() if p.kind in NAMED}, required


def check_schedule(args: Any, steps: int | None) -> None:
    """Fill in the defaults of `lr_scheduler_type` when the recipe gives no `lr_scheduler_kwargs`, and raise a
    `ValueError` naming the key for an option the schedule does not take or lacks, or (when the run's `steps`
    are known) a WSD whose warmup and decay do not fit in the run. Called from the arguments' `__post_init__`."""
    kind = scheduler_name(args)
    if args.lr_scheduler_kwargs is None:
        args.lr_scheduler_kwargs = dict(DEFAULT_KWARGS.get(kind, {}))
    kwargs = args.lr_scheduler_kwargs
    accepted, required = scheduler_options(kind)
    unknown = sorted(set(kwargs) - accepted) if accepted is not None else []
    if unknown:
        takes = f"takes {', '.join(sorted(accepted))}" if accepted else "takes no options"
        raise ValueError(f"key 'lr_scheduler_kwargs': {kind} {takes}, not {unknown[0]!r}")
    missing = sorted(required - set(kwargs))
    if missing:
        example = ' (e.g. {"num_decay_steps": 100})' if kind == SchedulerType.WARMUP_STABLE_DECAY.value else ""
        raise ValueError(f"key 'lr_scheduler_kwargs': {kind} needs {missing[0]!r}{example}")
    if kind == SchedulerType.WARMUP_STABLE_DECAY.value:
        check_wsd(args, steps)


def check_wsd(args: Any, steps: int | None) -> None:
    decay = args.lr_scheduler_kwargs["num_decay_steps"]
    if isinstance(decay, bool) or not isinstance(decay, int) or decay < 1:
        raise ValueError(f"key 'lr_scheduler_kwargs': num_decay_steps must be a whole number >= 1, got {decay!r}")
    if "num_stable_steps" in args.lr_scheduler_kwargs:  # transformers would warn and let it override max_steps
        raise ValueError(
            "key 'lr_scheduler_kwargs': give num_decay_steps only; the stable phase is what max_steps leaves"
        )
    if steps is not None:
        warmup = args.get_warmup_steps(steps)
        if warmup + decay > steps:
            raise ValueError(
                f"key 'lr_scheduler_kwargs': warmup ({warmup}) + num_decay_steps ({decay}) exceed the run's {steps} "
                "steps (no stable phase is left)"
            )


def wsd_decay_start(args: Any, steps: int) -> int:
    """The first step (0-based) of a WSD run's decay: what its warmup and stable phase leave of `steps`."""
    return steps - args.lr_scheduler_kwargs["num_decay_steps"]
