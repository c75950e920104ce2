"""`--decay_from CHECKPOINT --decay_tokens N`: only the decay of a warmup-stable-decay run, from a checkpoint
taken in its stable phase (the scaling-ladder workflow: one stable run serves several token budgets).

A WSD schedule holds the peak learning rate until its last `num_decay_steps` steps, so up to then a run is the
same whatever its length: a stable-phase checkpoint K is the start of every decay from K. Decaying from it over
D = N / global_batch_tokens steps is therefore the run of K + D steps whose decay starts at K (`max_steps` K + D,
`num_decay_steps` D: the recipe completed here, in the arguments' `__post_init__`), resumed from K: the Trainer
restores weights, optimizer, scheduler step, RNG and the place in the data order, so the decay steps are those of
a run that decayed at K directly (bitwise: tests/training/test_decay_from.py). The decay writes its own output
folder, never the source run's, and run_info.json records where it started (`decayed_from`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import SchedulerType

from hfscratch.core.recipes import RecipeError
from hfscratch.training.checkpoints import CHECKPOINT

WSD = SchedulerType.WARMUP_STABLE_DECAY.value


@dataclass
class DecayStart:
    """Where a decay run started: recorded in its run_info.json."""

    checkpoint: str  # the stable-phase checkpoint, resolved
    step: int  # its global step K: the decay runs steps K+1 .. K+decay_steps
    decay_tokens: int
    decay_steps: int


def decay_start(args: Any) -> DecayStart | None:
    """The decay a run's arguments ask for (None: an ordinary run), or a `ValueError` naming the key: a folder
    that is not a checkpoint, a schedule that is not WSD, tokens that are no whole number of batches, an output
    folder inside the source run, a batch other than the checkpoint's. Reads only trainer_state.json."""
    if args.decay_from is None:
        if args.decay_tokens is not None:
            raise ValueError("key 'decay_tokens' needs 'decay_from' (the stable-phase checkpoint to decay from)")
        return None
    folder = Path(args.decay_from)
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        step = int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(
            f"key 'decay_from': {folder} is not a checkpoint folder (no readable trainer_state.json)"
        ) from None
    if args.decay_tokens is None:
        raise ValueError("key 'decay_from' needs 'decay_tokens' (the tokens to decay over)")
    kind = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    if kind != WSD:
        raise ValueError(f"key 'decay_from' needs lr_scheduler_type {WSD} (the run's schedule), got {kind}")
    batch = args.global_batch_tokens
    if not batch:
        raise ValueError("key 'decay_tokens' needs 'global_batch_tokens' to turn tokens into steps")
    if args.decay_tokens < 1 or args.decay_tokens % batch:
        raise ValueError(
            f"key 'decay_tokens': {args.decay_tokens:,} is not a positive multiple of global_batch_tokens ({batch:,}): "
            "a decay is a whole number of steps"
        )
    if args.resume_from_checkpoint not in (None, "auto"):
        raise ValueError("keys 'decay_from' and 'resume_from_checkpoint' (a path) exclude each other: use auto or null")
    source_run, output_dir = folder.resolve().parent, Path(args.output_dir).resolve()
    if output_dir == source_run or source_run in output_dir.parents:
        raise ValueError(
            f"key 'output_dir': {args.output_dir} is inside the run decay_from comes from ({source_run}); a decay "
            f"writes a folder of its own, e.g. --output_dir {source_run}-decay{step}"
        )
    tokens = state.get("num_input_tokens_seen") or 0
    ramp = args.batch_ramp_start_tokens is not None and args.batch_ramp_tokens > 0
    if tokens and not ramp and tokens != step * batch:
        raise ValueError(
            f"key 'global_batch_tokens': {batch:,}, but {folder.name} trained {tokens:,} tokens in {step} steps: "
            "decay with the batch the run was trained with"
        )
    return DecayStart(str(folder.resolve()), step, args.decay_tokens, args.decay_tokens // batch)


def apply_decay(args: Any) -> None:
    """Complete a decay run's arguments (called from `PretrainingArguments.__post_init__`; running it twice changes
    nothing): max_steps K + D and num_decay_steps D, after checking that checkpoint K is in its stable phase."""
    start = decay_start(args)
    if start is None:
        return
    args.max_steps = start.step + start.decay_steps
    args.lr_scheduler_kwargs = {**(args.lr_scheduler_kwargs or {}), "num_decay_steps": start.decay_steps}
    check_stable_phase(args, start)


def check_stable_phase(args: Any, start: DecayStart) -> None:
    """Checkpoint K must hold the peak learning rate, the recipe's: after its warmup, before its decay. The
    checkpoint's scheduler state says what its next step's rate is (the Trainer restores it, and its peak, on
    resume, so a recipe with another learning_rate would be overridden without a word)."""
    import torch

    name = Path(start.checkpoint).name
    try:  # plain tensors, floats and ints: the restricted unpickler reads it, no code runs
        scheduler = torch.load(Path(start.checkpoint, "scheduler.pt"), weights_only=True)
        peaks, rates = scheduler["base_lrs"], scheduler["_last_lr"]
    except (OSError, RuntimeError, KeyError, TypeError) as exc:
        raise ValueError(f"key 'decay_from': {start.checkpoint} has no readable scheduler.pt ({exc})") from None
    if not all(math.isclose(peak, args.learning_rate, rel_tol=1e-9) for peak in peaks):
        raise ValueError(
            f"key 'learning_rate': {args.learning_rate}, but {name} was trained at a peak of {peaks[0]}: decay with "
            "the run's own learning_rate"
        )
    warmup = args.get_warmup_steps(args.max_steps)
    if start.step < warmup:
        raise ValueError(f"key 'decay_from': {name} is in its warmup (warmup_steps {warmup}): not yet stable")
    fraction = min(rate / peak for rate, peak in zip(rates, peaks))
    if not math.isclose(fraction, 1.0, rel_tol=1e-9):
        raise ValueError(
            f"key 'decay_from': {name} is past its stable phase (its learning rate is {fraction:.3g} of the peak); "
            "decay from a checkpoint taken before the run's decay began"
        )


def decay_resume(args: Any, own_checkpoint: str | None) -> str | None:
    """The checkpoint a run resumes from: for a decay run, its own latest one when it got past the start (a killed
    decay goes on where it stopped), else the stable checkpoint it decays from; for any other run `own_checkpoint`."""
    start = decay_start(args)
    if start is None:
        return own_checkpoint
    match = CHECKPOINT.match(Path(own_checkpoint).name) if own_checkpoint else None
    if match and int(match[1]) > start.step:
        state = json.loads(Path(own_checkpoint, "trainer_state.json").read_text(encoding="utf-8"))
        if state.get("max_steps") != args.max_steps:  # another decay's checkpoint: its schedule is not this one
            raise RecipeError(
                f"{args.output_dir} holds a decay to step {state.get('max_steps')}, not {args.max_steps}: pass another "
                "--output_dir for another decay, or --overwrite_output_dir true to replace this one"
            )
        return own_checkpoint
    steps = f"steps {start.step + 1}-{start.step + start.decay_steps}"
    print(
        f"decaying from {start.checkpoint} (step {start.step}, at the stable learning rate) over "
        f"{start.decay_tokens:,} tokens: {steps} into {args.output_dir}",
        flush=True,
    )
    return start.checkpoint
