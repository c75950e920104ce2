"""The keys of a pretrain recipe (`recipes/pretrain/*.yaml`): the model, the data and `TrainingArguments`.

Model and data keys follow transformers' `run_clm.py` (`model_name_or_path`, `config_overrides`); the
training keys are `transformers.TrainingArguments` fields spelled as the Trainer spells them, with
pretraining defaults (cosine decay to 10% of the peak rate, AdamW betas (0.9, 0.95), weight decay 0.1,
clipping at 1.0, token counting) and a few keys of our own: the batch in tokens, its ramp, the stability
guard and the device peak for MFU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from transformers import TrainingArguments

from hfscratch.training.decay import apply_decay
from hfscratch.training.fp8 import fp8_unavailable
from hfscratch.training.run_info import requested_steps
from hfscratch.training.schedules import check_schedule


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A model folder to continue training from (instead of a preset)."}
    )
    model_preset: str = field(default="llama", metadata={"help": "gpt2, llama, vaswani, bloom or t5."})
    model_size: str = field(default="tiny", metadata={"help": "tiny, 125m, 350m, 1b or 7b."})
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "Config fields over the preset, e.g. 'hidden_size=256,num_hidden_layers=4,residual_dropout=0.1'."
        },
    )
    attn_implementation: str | None = field(default=None, metadata={"help": "sdpa (default), eager, ..."})

    def overrides(self) -> dict[str, Any]:
        """`config_overrides` as typed values: 'a=1,b=0.1,c=true,d=silu' -> {'a': 1, 'b': 0.1, 'c': True, ...}."""
        import yaml

        pairs = {}
        for item in filter(None, (self.config_overrides or "").split(",")):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"key 'config_overrides': expected key=value pairs separated by commas, got {item!r}")
            pairs[key.strip()] = yaml.safe_load(value.strip())  # YAML scalars: ints, floats, booleans, null
        return pairs


@dataclass
class DataArguments:
    data_dir: str = field(
        metadata={"help": "A `hfscratch tokenize` output folder: tokenizer/ and packed/ (or tokens/, token shards)."}
    )
    data_mixture: dict[str, float] | None = field(
        default=None,
        metadata={
            "help": "Recipe only, for token shards (tokenize with executor local/slurm): source tag -> share of the "
            "training blocks, e.g. {python-docs: 0.7, web: 0.3} (normalised; default: each source's own share)."
        },
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Evaluate on at most this many validation blocks (cheaper evaluations)."}
    )
    document_masking: bool = field(
        default=False,
        metadata={
            "help": "Each token attends only to its own document in a packed block: position ids restart after each "
            "EOS and no attention mask is passed (transformers' packed-sequence mask; FlashAttention varlen)."
        },
    )


@dataclass
class PretrainingArguments(TrainingArguments):
    """`TrainingArguments` with pretraining defaults and the keys the Trainer has no notion of."""

    lr_scheduler_type: str = field(
        default="cosine_with_min_lr", metadata={"help": "Linear warmup, then cosine decay to min_lr_rate x peak."}
    )
    lr_scheduler_kwargs: dict | str | None = field(
        default=None,
        metadata={
            "help": "Scheduler options, checked against the schedule's own (default: cosine_with_min_lr decays to "
            "10%, min_lr_rate 0.1). warmup_stable_decay needs num_decay_steps; decay_type, min_lr_ratio optional."
        },
    )
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay, on matrices only."})
    adam_beta2: float = field(default=0.95, metadata={"help": "AdamW beta2 (GPT-3, Llama)."})
    include_num_input_tokens_seen: str | bool = field(
        default=True, metadata={"help": "Count the tokens trained (for throughput and MFU)."}
    )
    restore_callback_states_from_checkpoint: bool = field(
        default=True, metadata={"help": "Resume the stability guard's running loss with the weights."}
    )
    report_to: None | str | list[str] = field(
        default="tensorboard", metadata={"help": "Loggers: tensorboard, wandb, mlflow, ... or none."}
    )
    eval_on_start: bool = field(
        default=True,
        metadata={"help": "Validate before the first step of a fresh run (not on resume): the curve's start."},
    )
    logging_first_step: bool = field(default=True, metadata={"help": "Log the first step's loss too."})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Start over: delete the previous run in output_dir (checkpoints included) instead of resuming "
            "it or leaving a finished one as it is."
        },
    )

    matrix_optimizer: Literal["adamw", "muon"] = field(
        default="adamw",
        metadata={
            "help": "muon: torch.optim.Muon (orthogonalised momentum) on the hidden matrices, AdamW on embeddings, "
            "head, norms and biases, at the same learning rate (Moonlight's RMS matching)."
        },
    )
    fp8: bool = field(
        default=False,
        metadata={
            "help": "torchao float8 training of the q/k/v/o/gate/up/down projections (needs a GPU with compute "
            "capability >= 8.9, torch_compile: true and torchao)."
        },
    )
    global_batch_tokens: int | None = field(
        default=None,
        metadata={"help": "Tokens per optimizer step; sets gradient_accumulation_steps from the world size."},
    )
    train_tokens: int | None = field(
        default=None,
        metadata={
            "help": "Tokens to train on: max_steps = train_tokens / global_batch_tokens, unless max_steps is set."
        },
    )
    batch_ramp_start_tokens: int | None = field(
        default=None, metadata={"help": "Batch-size ramp: the first step's batch in tokens (GPT-3: 32k)."}
    )
    batch_ramp_tokens: int = field(
        default=0, metadata={"help": "Batch-size ramp: tokens over which the batch grows to the full one."}
    )
    loss_spike_factor: float | None = field(
        default=3.0,
        metadata={"help": "Skip a step whose loss exceeds this multiple of the running loss (null: only NaN/inf)."},
    )
    max_bad_steps: int = field(
        default=3, metadata={"help": "Stop (with a checkpoint) after this many skipped steps in a row."}
    )
    peak_tflops_per_device: float | None = field(
        default=None,
        metadata={
            "help": "Device peak for MFU (default: a GPU's dense bf16 peak from `plan`'s table; a CPU's matmul peak, "
            "measured once by a short probe and cached)."
        },
    )
    decay_from: str | None = field(
        default=None,
        metadata={
            "help": "A checkpoint-K folder of a warmup_stable_decay run's stable phase: resume it and run only the "
            "decay (decay_tokens long) into this run's own output_dir."
        },
    )
    decay_tokens: int | None = field(
        default=None, metadata={"help": "With decay_from: the tokens to decay over, whole global batches."}
    )
    eval_harness_tasks: list[str] = field(
        default_factory=list,
        metadata={"help": "lm-eval tasks run every eval_harness_steps steps during training (e.g. arc_easy)."},
    )
    eval_harness_steps: int = field(default=500, metadata={"help": "Steps between in-training lm-eval runs."})
    eval_harness_limit: float | None = field(
        default=100, metadata={"help": "Items per task of each in-training lm-eval run (null: all)."}
    )
    eval_harness_data_dir: str | None = field(
        default=None, metadata={"help": "Local benchmark mirror (Hub layout) for the in-training lm-eval runs."}
    )

    def __post_init__(self) -> None:
        check_ranges(self)
        super().__post_init__()
        self.eval_on_start = self.eval_on_start and self.eval_strategy != "no"  # nothing to validate on otherwise
        apply_decay(self)  # a decay run: max_steps and num_decay_steps from its checkpoint and decay_tokens
        check_schedule(self, requested_steps(self))
        if self.train_tokens is not None and self.global_batch_tokens is None:
            raise ValueError("key 'train_tokens' needs 'global_batch_tokens' to turn tokens into steps")
        if self.matrix_optimizer == "muon" and self.deepspeed:
            raise ValueError("key 'matrix_optimizer': muon does not run under DeepSpeed here (use adamw)")
        if self.fp8 and (why := fp8_unavailable(self)):
            raise ValueError(why)
        if self.batch_ramp_start_tokens is not None and self.global_batch_tokens is None:
            raise ValueError("the batch-size ramp needs 'global_batch_tokens' (the batch it ramps to)")
        if (
            self.batch_ramp_start_tokens is not None
            and not 0 < self.batch_ramp_start_tokens <= self.global_batch_tokens
        ):
            raise ValueError(
                f"key 'batch_ramp_start_tokens' must be in (0, global_batch_tokens], got {self.batch_ramp_start_tokens}"
            )
        if self.loss_spike_factor is not None and self.loss_spike_factor <= 1:
            raise ValueError(f"key 'loss_spike_factor' must exceed 1, got {self.loss_spike_factor}")
        if self.eval_harness_tasks and self.eval_harness_steps < 1:
            raise ValueError(f"key 'eval_harness_steps' must be at least 1, got {self.eval_harness_steps}")
        if self.max_bad_steps < 1:
            raise ValueError(f"key 'max_bad_steps' must be at least 1, got {self.max_bad_steps}")


# Numeric keys whose value must lie in a range: (lowest, lowest allowed?, highest, highest allowed?); None: open.
RANGES: dict[str, tuple[float | None, bool, float | None, bool]] = {
    "learning_rate": (0, False, None, False),
    "weight_decay": (0, True, None, False),
    "adam_beta1": (0, True, 1, False),
    "adam_beta2": (0, True, 1, False),
    "adam_epsilon": (0, False, None, False),
    "max_grad_norm": (0, True, None, False),
    "warmup_steps": (0, True, None, False),
    "per_device_train_batch_size": (1, True, None, False),
    "per_device_eval_batch_size": (1, True, None, False),
    "global_batch_tokens": (1, True, None, False),
    "train_tokens": (1, True, None, False),
    "batch_ramp_tokens": (0, True, None, False),
    "decay_tokens": (1, True, None, False),
}


def check_ranges(args: PretrainingArguments) -> None:
    """A value out of its range is a `ValueError` naming the key (the recipe parser makes it a one-line error),
    raised when the arguments are parsed: before any data or model is loaded."""
    for key, (low, low_ok, high, high_ok) in RANGES.items():
        value = getattr(args, key)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        too_low = low is not None and (value < low or (value == low and not low_ok))
        too_high = high is not None and (value > high or (value == high and not high_ok))
        if too_low or too_high:
            raise ValueError(f"key {key!r} must be {describe_range(low, low_ok, high, high_ok)}, got {value}")


def describe_range(low: float | None, low_ok: bool, high: float | None, high_ok: bool) -> str:
    """(0, False, None, False) -> 'a number above 0'; (0, True, 1, False) -> 'a number in [0, 1)'."""
    if low is not None and high is not None:
        return f"a number in {'[' if low_ok else '('}{low}, {high}{']' if high_ok else ')'}"
    if low is not None:
        return f"a number of at least {low}" if low_ok else f"a number above {low}"
    return f"a number of at most {high}" if high_ok else f"a number below {high}"
