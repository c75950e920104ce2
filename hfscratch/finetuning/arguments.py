"""The keys of a finetune recipe (`recipes/finetune/*.yaml`): the model and data, LoRA, and `TrainingArguments`."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

# Every attention and MLP projection of our Llama-named blocks, as QLoRA recommends (adapting all linear layers,
# not just q and v, closes most of the gap to full fine-tuning); `lora.present_target_modules` keeps those a
# model has (a plain MLP has no gate_proj).
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class FinetuneDataArguments:
    model_name_or_path: str = field(metadata={"help": "The base model: a model folder (e.g. a pretrain output)."})
    train_file: str = field(
        default="python-docs",
        metadata={
            "help": "JSONL (or JSON list) of Alpaca records {instruction, input, output} or chat records "
            "{messages}; or 'python-docs', a set made offline from the standard library's documentation."
        },
    )
    validation_file: str | None = field(
        default=None, metadata={"help": "Held-out records in the same format (default: validation_fraction of train)."}
    )
    validation_fraction: float = field(default=0.1, metadata={"help": "Share of train_file held out when no file."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use at most this many training records."})
    max_seq_length: int = field(default=256, metadata={"help": "Tokens per example; longer ones are cut."})
    chat_template: str | None = field(
        default=None,
        metadata={"help": "A Jinja chat template (inline or a .jinja path) with {% generation %} around replies; "
                  "default: the tokenizer's if it marks replies, else hfscratch.prompting.CHAT_TEMPLATE."},
    )  # fmt: skip
    system_prompt: str | None = field(default=None, metadata={"help": "A system message put before Alpaca records."})


@dataclass
class LoraArguments:
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


@dataclass
class FinetuneTrainingArguments(TrainingArguments):
    """`TrainingArguments` with LoRA-sized defaults: a higher learning rate than full fine-tuning, no checkpoints."""

    output_dir: str = field(default="runs/finetune", metadata={"help": "Adapter, tokenizer and results go here."})
    learning_rate: float = field(default=2e-4, metadata={"help": "Peak learning rate (LoRA: 1e-4 to 1e-3)."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Passes over the training records."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Examples per device and step."})
    per_device_eval_batch_size: int = field(default=16, metadata={"help": "Examples per device in evaluation."})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "Learning-rate schedule after warmup."})
    warmup_steps: float = field(default=0.03, metadata={"help": "Warmup steps, or a fraction of all steps if < 1."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to compute the response-only eval loss."})
    save_strategy: str = field(
        default="no", metadata={"help": "Checkpoints during training (the adapter is saved at the end)."}
    )
    logging_steps: float = field(default=10, metadata={"help": "Log the training loss every this many steps."})
    report_to: None | str | list[str] = field(
        default="none", metadata={"help": "Loggers: tensorboard, wandb, ... or none."}
    )
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep the labels column as tokenized."})
