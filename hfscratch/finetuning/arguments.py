"""The keys of a finetune recipe (`recipes/finetune/*.yaml`): the method, model and data, LoRA, and TRL's config.

`method` picks the trainer and so the class of the training keys: `full` and `lora` are TRL's `SFTTrainer`
(keys of `SFTConfig`: `packing`, `max_length`, `assistant_only_loss`, ...), `dpo` is TRL's `DPOTrainer` (keys of
`DPOConfig`: `beta`, `loss_type`, ...). Both configs are `transformers.TrainingArguments`, so every Trainer key
works too. `training_arguments_class` gives the class for a method; the CLI reads the method first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from trl.trainer.dpo_config import DPOConfig
from trl.trainer.sft_config import SFTConfig

Method = Literal["full", "lora", "dpo"]
METHODS: tuple[str, ...] = ("full", "lora", "dpo")
DEFAULT_METHOD = "lora"

# Every attention and MLP projection of our Llama-named blocks, as QLoRA recommends (adapting all linear layers,
# not just q and v, closes most of the gap to full fine-tuning); `lora.present_target_modules` keeps those a
# model has (a plain MLP has no gate_proj).
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class FinetuneDataArguments:
    model_name_or_path: str = field(metadata={"help": "The base model: a model folder (e.g. a pretrain output)."})
    method: Method = field(
        default=DEFAULT_METHOD,
        metadata={
            "help": "full: SFT of every weight; lora: SFT of a LoRA adapter; dpo: DPO of a LoRA adapter on "
            "preference pairs (TRL's SFTTrainer / DPOTrainer). `--method dpo --help` lists DPO's keys."
        },
    )
    train_file: str = field(
        default="python-docs",
        metadata={
            "help": "SFT: JSONL (or a JSON list) of Alpaca records {instruction, input, output} or chat records "
            "{messages}; DPO: JSONL of {prompt, chosen, rejected}. 'python-docs': a set made offline from the "
            "standard library's documentation (instructions for SFT, preference pairs for DPO)."
        },
    )
    validation_file: str | None = field(
        default=None, metadata={"help": "Held-out records in the same format (default: validation_fraction of train)."}
    )
    validation_fraction: float = field(default=0.1, metadata={"help": "Share of train_file held out when no file."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use at most this many training records."})
    chat_template: str | None = field(
        default=None,
        metadata={"help": "A Jinja chat template (inline or a .jinja path) with {% generation %} around replies; "
                  "default: the tokenizer's if it marks replies, else hfscratch.prompting.CHAT_TEMPLATE."},
    )  # fmt: skip
    system_prompt: str | None = field(default=None, metadata={"help": "A system message put before Alpaca records."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Train again into an output_dir that holds a finished fine-tune."}
    )
    z_loss_weight: float | None = field(
        default=None,
        metadata={"help": "z-loss during fine-tuning (default: the base's own z_loss_weight). SFT applies it through "
                  "the model's loss; DPO has no such term, so a base with z-loss needs 0 here to run DPO."},
    )  # fmt: skip


@dataclass
class LoraArguments:
    """LoRA keys: for `--method lora` and `dpo`; setting one with `--method full` is an error."""

    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: float = field(default=16.0, metadata={"help": "LoRA scaling numerator (the update is alpha/r * BA)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA branch's input."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: list(DEFAULT_TARGET_MODULES),
        metadata={"help": "Module names to adapt (default: every attention and MLP projection)."},
    )
    load_in_4bit: bool = field(
        default=False, metadata={"help": "QLoRA: load the base in 4-bit NF4 (needs bitsandbytes and a CUDA GPU)."}
    )
    merge: bool = field(default=False, metadata={"help": "Also write a merged model folder (merge_and_unload)."})
    merged_dir: str | None = field(
        default=None, metadata={"help": "Where --merge writes (default: OUTPUT_DIR/merged)."}
    )


def _default(value: Any, help: str) -> Any:
    return field(default=value, metadata={"help": help})


# Where the kit's defaults differ from TRL's, in both configs: fp32 and no gradient checkpointing (TRL's bf16 and
# checkpointing make a small model on a CPU slower), no checkpoints, no loggers, a cosine schedule.
OUTPUT_HELP = "Adapter or model folder, tokenizer and results go here."
BF16_HELP = "bf16 mixed precision (fp32 unless asked)."
CHECKPOINTING_HELP = "Deprecated alias of activation_checkpointing (off unless asked: TRL turns it on)."
SAVE_HELP = "Checkpoints during training (the result is saved at the end)."


@dataclass
class FinetuneSFTConfig(SFTConfig):
    """TRL's `SFTConfig` with the kit's defaults: packing (padding-free, per-document positions) and the loss on
    the assistant's tokens only, as a chat model is tuned."""

    output_dir: str = _default("runs/finetune", OUTPUT_HELP)
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak learning rate (LoRA: 1e-4 to 1e-3)."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Passes over the training records."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Rows (packed: blocks) per step."})
    per_device_eval_batch_size: int = field(default=16, metadata={"help": "Rows per device in evaluation."})
    lr_scheduler_type: str = _default("cosine", "Learning-rate schedule after warmup.")
    warmup_steps: float = _default(0.03, "Warmup steps, or a fraction of all steps if < 1.")
    eval_strategy: str = _default("epoch", "When to evaluate on the held-out records.")
    save_strategy: str = _default("no", SAVE_HELP)
    report_to: None | str | list[str] = _default("none", "Loggers: tensorboard, wandb, ... or none.")
    bf16: bool | None = _default(False, BF16_HELP)
    gradient_checkpointing: bool | None = _default(None, CHECKPOINTING_HELP)
    max_length: int | None = field(
        default=512, metadata={"help": "Tokens per example; with packing, per packed block (longer examples are cut)."}
    )
    packing: bool = field(
        default=True,
        metadata={"help": "Pack examples into blocks of max_length, padding-free: positions restart per example and "
                  "attention stays within it (the same per-token loss as unpacked)."},
    )  # fmt: skip
    assistant_only_loss: bool = field(
        default=True, metadata={"help": "Loss on the assistant's tokens only (the {% generation %} block)."}
    )


@dataclass
class FinetuneDPOConfig(DPOConfig):
    """TRL's `DPOConfig` with the kit's defaults; the reference model is the base (the adapter switched off)."""

    output_dir: str = _default("runs/finetune", OUTPUT_HELP)
    learning_rate: float = field(default=5e-5, metadata={"help": "Peak learning rate (LoRA DPO: 5e-6 to 5e-4)."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Passes over the training pairs."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Preference pairs per step."})
    per_device_eval_batch_size: int = field(default=16, metadata={"help": "Pairs per device in evaluation."})
    lr_scheduler_type: str = _default("cosine", "Learning-rate schedule after warmup.")
    warmup_steps: float = _default(0.03, "Warmup steps, or a fraction of all steps if < 1.")
    eval_strategy: str = _default("epoch", "When to evaluate on the held-out records.")
    save_strategy: str = _default("no", SAVE_HELP)
    report_to: None | str | list[str] = _default("none", "Loggers: tensorboard, wandb, ... or none.")
    bf16: bool | None = _default(False, BF16_HELP)
    gradient_checkpointing: bool | None = _default(None, CHECKPOINTING_HELP)
    max_length: int | None = field(default=512, metadata={"help": "Tokens of prompt + answer; longer are cut."})


def training_arguments_class(method: str) -> type:
    """The training keys' class for `method` (an unknown method gets SFT's; parsing then rejects the value)."""
    return FinetuneDPOConfig if method == "dpo" else FinetuneSFTConfig
