"""`run_info.json`: how a pretraining run ran, written last, so that its presence means the run finished.

The model card (hfscratch.hub.lineage, hfscratch.hub.facts) reads its keys; `finished_run` reads it to leave a
finished output folder as it is when the same command runs again. Light imports only: the CLI calls
`finished_run` before it imports the Trainer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from hfscratch.core.artifacts import Artifact, ArtifactError
from hfscratch.core.recipes import RecipeError
from hfscratch.training.checkpoints import last_complete_checkpoint
from hfscratch.training.decay import DecayStart

# `TrainingArguments` fields recorded in plain JSON (training_args.bin is a pickle: nothing should need to load it).
RECORDED_TRAINING_ARGS = (
    "learning_rate",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "warmup_steps",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "max_grad_norm",
    "matrix_optimizer",
    "bf16",
    "fp16",
    "seed",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "global_batch_tokens",
    "train_tokens",
    "num_train_epochs",
)


@dataclass
class RunInfo(Artifact):
    """How the run was parallelised, as it actually ran (a misconfigured launch can exit 0 doing less), what it
    trained, and where its data came from (`data_dir`'s stats.json leads on to the curated corpus)."""

    FILE: ClassVar[str] = "run_info.json"
    SCHEMA_VERSION: ClassVar[int] = 1

    world_size: int
    distributed_type: str
    deepspeed: bool
    zero_stage: int | None
    gradient_accumulation_steps: int
    parameters: int
    parameters_on_rank0: int
    max_steps: int  # the steps the run was asked for
    global_step: int  # the steps it trained (fewer when a time budget ended it)
    stopped_by: str  # "max_steps" or "time budget"
    training_args: dict[str, Any]
    train_tokens: int | None
    data_dir: str | None
    device: str
    num_devices: int
    train_runtime_s: float
    # Device-hours of this invocation (a resumed run counts only its own part): what plan's energy model prices.
    device_hours: float
    # The trained parameters' layout, counted (fsdp.parameter_placements): {"Shard(dim=0)": N} under FSDP2.
    parameter_placements: dict[str, int] | None = None
    # The FLOP/s of one device MFU divided by, and where it came from (recipe, GPU table, CPU probe).
    peak_flops_per_device: float | None = None
    peak_source: str | None = None
    decayed_from: DecayStart | None = None  # a `--decay_from` run: the stable checkpoint it decayed from
    # A load-time mixture of token shards (data_mixture.py): per source, its weight and share of the blocks trained.
    data_mixture: dict[str, dict[str, float]] | None = None


def requested_steps(args: Any) -> int | None:
    """The optimizer steps a pretraining run is asked for, when the arguments alone say (max_steps, or
    train_tokens in global_batch_tokens batches); None for a run counted in epochs."""
    if args.max_steps > 0:
        return args.max_steps
    if args.train_tokens and args.global_batch_tokens:
        return math.ceil(args.train_tokens / args.global_batch_tokens)
    return None


def finished_run(args: Any) -> str | None:
    """One line saying that `args.output_dir` holds a finished run of at least the steps asked for, and how to go
    on; None when there is something to train (no run_info.json yet, more steps asked for, or
    `overwrite_output_dir`). A run_info.json that does not read is a `RecipeError`."""
    output_dir = Path(args.output_dir)
    if args.overwrite_output_dir:
        return None
    try:
        info = RunInfo.read_or_none(output_dir)
    except ArtifactError as exc:
        raise RecipeError(f"{exc}; pass --overwrite_output_dir true to train this folder from the start") from None
    if info is None:
        return None
    asked = requested_steps(args)
    if info.decayed_from is not None:  # a decay's schedule ends where it ends: it is not trained further
        if asked != info.max_steps:
            raise RecipeError(
                f"{output_dir} holds a decay to step {info.max_steps}, not {asked}: pass another --output_dir for "
                "another decay, or --overwrite_output_dir true to replace this one"
            )
        return f"{output_dir} holds a finished decay (to step {info.max_steps}), left unchanged"
    if asked is None:  # epochs: finished when no more epochs are asked for than the run had
        if args.num_train_epochs > info.training_args.get("num_train_epochs", math.inf):
            return None
    elif asked > info.max_steps:
        return None
    checkpoint = last_complete_checkpoint(output_dir)
    at_end = checkpoint is not None and checkpoint.name == f"checkpoint-{info.global_step}"
    how = f"continues from {checkpoint.name}" if at_end else "starts over: there is no final checkpoint"
    ended = f"{info.global_step} steps"
    if info.stopped_by == "time budget":
        ended = f"stopped by its time budget at step {info.global_step} of {info.max_steps}"
    return (
        f"{output_dir} holds a finished run ({ended}), left unchanged; raise --max_steps or --train_tokens to train "
        f"further ({how}), or pass --overwrite_output_dir true to start over"
    )
