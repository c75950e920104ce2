"""LoRA supervised fine-tuning with PEFT (`hfscratch finetune`; its command line is `finetuning/cli.py`).

The Trainer runs a `PeftModel` over chat-formatted instruction data with labels on the response tokens only,
so its eval loss is the response-only loss; it is measured before the first step and after the last. The
output folder holds the adapter (adapter_config.json, adapter_model.safetensors), the tokenizer with its chat
template, `hfscratch_base.json` (which base the adapter belongs to), `finetune_results.json` and
`loss_curve.png`; `--merge` also writes a plain model folder with the update folded into the weights.

Why the Trainer and not TRL's `SFTTrainer`: TRL is not a dependency of the kit, and the two things SFTTrainer
would add here are already one call each in transformers: the response-only mask
(`apply_chat_template(..., return_assistant_tokens_mask=True)`, which SFTTrainer's `assistant_only_loss` uses
itself) and padding labels with -100 (`DataCollatorForSeq2Seq`). Packing, SFTTrainer's other feature, would
let examples attend to each other without a padding-free attention path in our model.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hfscratch.core.artifacts import write_json_atomic
from hfscratch.core.recipes import RecipeError
from hfscratch.finetuning.arguments import FinetuneDataArguments, FinetuneTrainingArguments, LoraArguments


def resolve_chat_template(tokenizer: Any, chat_template: str | None) -> str:
    """The template to train with: given (inline or a file), else the tokenizer's own if it marks the replies
    with {% generation %}, else ours. The mark is required: it is what makes the loss response-only."""
    from hfscratch.prompting.templates import CHAT_TEMPLATE

    if chat_template:
        path = Path(chat_template)
        template = path.read_text(encoding="utf-8") if path.suffix == ".jinja" and path.is_file() else chat_template
        if path.suffix == ".jinja" and not path.is_file():
            raise RecipeError(f"chat_template: file {chat_template} not found")
        if "generation" not in template:
            raise RecipeError(
                "chat_template: the template has no {% generation %} block around the assistant's reply, which "
                "the response-only loss needs (see hfscratch.prompting.CHAT_TEMPLATE)"
            )
        return template
    own = getattr(tokenizer, "chat_template", None)
    if isinstance(own, str) and "{% generation %}" in own.replace("{%-", "{%"):
        return own
    return CHAT_TEMPLATE


def check_quantization(load_in_4bit: bool) -> Any:
    """A `BitsAndBytesConfig` for QLoRA, or None; an error naming what is missing when 4-bit cannot run here."""
    if not load_in_4bit:
        return None
    import torch

    missing = []
    if importlib.util.find_spec("bitsandbytes") is None:
        missing.append("the bitsandbytes package (pip install bitsandbytes)")
    if not torch.cuda.is_available():
        missing.append("a CUDA GPU")
    if missing:
        raise RecipeError(
            f"load_in_4bit: QLoRA needs {' and '.join(missing)}; drop --load_in_4bit to train in full precision"
        )
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",  # QLoRA's NormalFloat4, with its double quantization of the scales
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def load_conversations(data: FinetuneDataArguments, output_dir: Path, seed: int) -> tuple[list, list]:
    """(train, validation) conversations from the recipe's files, or from the built-in python-docs set."""
    from hfscratch.finetuning.data import read_instruction_file, split_validation
    from hfscratch.finetuning.python_docs import BUILTIN_NAME, write_python_docs_instructions

    train_file = data.train_file
    if train_file == BUILTIN_NAME and not Path(train_file).exists():
        train_file = str(write_python_docs_instructions(output_dir / "data" / "python-docs.jsonl", seed=seed))
    train = read_instruction_file(train_file, data.system_prompt)
    if data.validation_file:
        validation = read_instruction_file(data.validation_file, data.system_prompt)
    else:
        if not 0.0 < data.validation_fraction < 1.0:
            raise RecipeError(f"validation_fraction: expected a share in (0, 1), got {data.validation_fraction}")
        train, validation = split_validation(train, data.validation_fraction, seed)
    if data.max_train_samples:
        train = train[: data.max_train_samples]
    return train, validation


def run_finetune(data: FinetuneDataArguments, lora: LoraArguments, args: FinetuneTrainingArguments) -> dict:
    """Train the adapter; returns what finetune_results.json records (eval loss before/after, parameter counts)."""
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer

    from hfscratch.finetuning.data import build_dataset
    from hfscratch.finetuning.lora import apply_lora, merge_adapter, record_base, trainable_share
    from hfscratch.models.loading import check_model_folder, load_model, load_tokenizer
    from hfscratch.training.callbacks import LossCurvePlot

    model_dir = Path(data.model_name_or_path)
    check_model_folder(model_dir)  # before the data is read: a folder that cannot load fails first
    quantization = check_quantization(lora.load_in_4bit)
    output_dir = Path(args.output_dir)
    started = time.perf_counter()

    tokenizer = load_tokenizer(model_dir)
    tokenizer.chat_template = resolve_chat_template(tokenizer, data.chat_template)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train_records, validation_records = load_conversations(data, output_dir, args.seed)
    train_set = build_dataset(tokenizer, train_records, data.max_seq_length)
    eval_set = build_dataset(tokenizer, validation_records, data.max_seq_length)
    print(f"records: train {len(train_set):,}, validation {len(eval_set):,} ({train_set.info.description})")

    extra = {"quantization_config": quantization} if quantization else {}
    model = load_model(model_dir, torch.float32, check=False, **extra)
    if quantization:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=args.gradient_checkpointing)
    elif args.gradient_checkpointing:
        model.enable_input_require_grads()  # frozen embeddings would otherwise cut the checkpointed graph
    model = apply_lora(model, lora.lora_r, lora.lora_alpha, lora.lora_dropout, lora.lora_target_modules)
    model.print_trainable_parameters()

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        # pads input_ids with the pad token and labels with -100, so padding never counts in the loss
        data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        processing_class=tokenizer,
        callbacks=[LossCurvePlot()],
    )
    before = trainer.evaluate()["eval_loss"]
    train_output = trainer.train()
    after = trainer.evaluate()["eval_loss"]
    trainer.save_model(str(output_dir))  # a PeftModel saves only the adapter; the tokenizer goes beside it
    record_base(output_dir, model_dir)

    results = {
        "base_model": str(model_dir.resolve()),
        "train_file": data.train_file,
        "train_records": len(train_set),
        "validation_records": len(eval_set),
        "eval_loss_before": before,
        "eval_loss_after": after,
        "train_loss": train_output.training_loss,
        "steps": train_output.global_step,
        "train_seconds": train_output.metrics["train_runtime"],
        **trainable_share(model),
        "lora": {k: v for k, v in asdict(lora).items() if k.startswith("lora_") or k == "load_in_4bit"},
        "device": str(next(model.parameters()).device),
        "dtype": str(torch.get_default_dtype()),
    }
    if lora.merge:
        del trainer, model
        merged = merge_adapter(model_dir, output_dir, lora.merged_dir or output_dir / "merged")
        results["merged_dir"] = str(merged)
    results["wall_seconds"] = time.perf_counter() - started
    write_json_atomic(output_dir / "finetune_results.json", results)  # last: its presence marks a finished run
    return results
