"""Fine-tuning through TRL (`hfscratch finetune`; its command line is `finetuning/cli.py`).

`--method full` and `lora` run TRL's `SFTTrainer` on chat-formatted instruction data: packed padding-free by
default (examples share a block, positions restart at each one and attention stays within it, which our model
derives from the position ids), the loss on the assistant's tokens only (`assistant_only_loss`, from the chat
template's {% generation %} block). `--method dpo` runs TRL's `DPOTrainer` on preference pairs with a LoRA
adapter, its reference model being the base (the adapter switched off). Held-out figures are measured before the
first step and after the last.

The output folder holds, for `lora` and `dpo`, the adapter (adapter_config.json, adapter_model.safetensors) with
`hfscratch_base.json` (which base it belongs to); for `full`, a plain model folder (config.json with auto_map,
model.safetensors, the code files); in every case the tokenizer with its chat template, `loss_curve.png`, and
`finetune_results.json`, written last. `--merge` (lora, dpo) also writes a merged model folder.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from hfscratch.core.recipes import RecipeError
from hfscratch.finetuning.arguments import FinetuneDataArguments, LoraArguments
from hfscratch.finetuning.results import FinetuneResults


def resolve_chat_template(tokenizer: Any, chat_template: str | None) -> str:
    """The template to train with: given (inline or a file), else the tokenizer's own if it marks the replies
    with {% generation %}, else ours. The mark is required: it is what makes the loss assistant-only."""
    from hfscratch.prompting.templates import CHAT_TEMPLATE

    if chat_template:
        path = Path(chat_template)
        template = path.read_text(encoding="utf-8") if path.suffix == ".jinja" and path.is_file() else chat_template
        if path.suffix == ".jinja" and not path.is_file():
            raise RecipeError(f"chat_template: file {chat_template} not found")
        if "generation" not in template:
            raise RecipeError(
                "chat_template: the template has no {% generation %} block around the assistant's reply, which "
                "the assistant-only loss needs (see hfscratch.prompting.CHAT_TEMPLATE)"
            )
        return template
    own = getattr(tokenizer, "chat_template", None)
    if isinstance(own, str) and "{% generation %}" in own.replace("{%-", "{%"):
        return own
    return CHAT_TEMPLATE


def check_method_keys(method: str, lora: LoraArguments) -> None:
    """LoRA keys (QLoRA and --merge included) belong to `lora` and `dpo`: with `full` they would be silently ignored."""
    if method != "full":
        return
    defaults = LoraArguments()
    for f in fields(LoraArguments):
        if getattr(lora, f.name) != getattr(defaults, f.name):
            raise RecipeError(
                f"{f.name}: applies to an adapter (--method lora or dpo); --method full trains every weight"
            )


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


def check_model_for_trl(config: Any) -> None:
    """Refuse what TRL's fused LM head would train differently from how the model runs: it computes the
    log-probabilities from the hidden states and `lm_head.weight` itself, and reads no `logit_softcap` of ours."""
    if getattr(config, "logit_softcap", None) is not None:
        raise RecipeError(
            f"logit_softcap: the base model soft-caps its logits ({config.logit_softcap}), which TRL's fused LM head "
            "does not apply, so fine-tuning would train other logits than the model computes"
        )


def check_unfinished(output_dir: Path, overwrite: bool) -> None:
    """Rerunning on a finished fine-tune never changes it, unless asked to start over."""
    if FinetuneResults.path(output_dir).is_file() and not overwrite:
        raise RecipeError(
            f"{output_dir}: holds a finished fine-tune ({FinetuneResults.FILE}); pass --overwrite_output_dir true "
            "to train it again"
        )
    if overwrite:
        FinetuneResults.path(output_dir).unlink(missing_ok=True)  # the marker goes first


def load_records(data: FinetuneDataArguments, output_dir: Path, seed: int) -> tuple[list, list]:
    """(train, validation) records of the method's kind, from the recipe's files or the built-in python-docs set."""
    from hfscratch.finetuning import python_docs
    from hfscratch.finetuning.data import read_instruction_file, read_preference_file, split_validation

    dpo = data.method == "dpo"
    read = read_preference_file if dpo else read_instruction_file
    train_file = data.train_file
    if train_file == python_docs.BUILTIN_NAME and not Path(train_file).exists():
        write = python_docs.write_python_docs_preferences if dpo else python_docs.write_python_docs_instructions
        train_file = str(write(output_dir / "data" / f"python-docs{'-preferences' if dpo else ''}.jsonl", seed=seed))
    train = read(train_file, data.system_prompt)
    if data.validation_file:
        validation = read(data.validation_file, data.system_prompt)
    else:
        if not 0.0 < data.validation_fraction < 1.0:
            raise RecipeError(f"validation_fraction: expected a share in (0, 1), got {data.validation_fraction}")
        train, validation = split_validation(train, data.validation_fraction, seed)
    if data.max_train_samples:
        train = train[: data.max_train_samples]
    return train, validation


def _as_dataset(records: list, dpo: bool) -> Any:
    from datasets import Dataset

    return Dataset.from_list(records if dpo else [{"messages": messages} for messages in records])


def parameter_counts(model: Any) -> dict[str, float]:
    """Trainable and total parameters (PEFT's own count for an adapter) and the share in %."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
    else:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
    return {"trainable_params": trainable, "all_params": total, "trainable_percent": 100.0 * trainable / total}


def build_trainer(method: str, model: Any, tokenizer: Any, args: Any, train_set: Any, eval_set: Any, peft: Any):
    """TRL's trainer for `method`, with the loss-curve callback."""
    from hfscratch.training.callbacks import LossCurvePlot

    common = {
        "model": model,
        "args": args,
        "train_dataset": train_set,
        "eval_dataset": eval_set,
        "processing_class": tokenizer,
        "peft_config": peft,
        "callbacks": [LossCurvePlot()],
    }
    if method == "dpo":
        from trl import DPOTrainer

        return DPOTrainer(**common)
    from trl import SFTTrainer

    if peft is not None and not args.label_names:
        args.label_names = ["labels"]  # PeftModel's forward hides `labels` from the Trainer's signature check
    return SFTTrainer(**common)


def run_finetune(data: FinetuneDataArguments, lora: LoraArguments, args: Any) -> FinetuneResults:
    """Train as `data.method` says; returns (and writes, last) the results."""
    import torch

    from hfscratch.finetuning.lora import lora_config, merge_adapter, record_base, save_model_folder
    from hfscratch.models.loading import check_model_folder, load_model, load_tokenizer

    method, dpo = data.method, data.method == "dpo"
    check_method_keys(method, lora)
    model_dir, output_dir = Path(data.model_name_or_path), Path(args.output_dir)
    check_model_folder(model_dir)  # before the data is read: a folder that cannot load fails first
    check_unfinished(output_dir, data.overwrite_output_dir)
    quantization = check_quantization(lora.load_in_4bit)
    started = time.perf_counter()

    tokenizer = load_tokenizer(model_dir)
    tokenizer.chat_template = resolve_chat_template(tokenizer, data.chat_template)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train_records, validation_records = load_records(data, output_dir, args.seed)
    extra = {"quantization_config": quantization} if quantization else {}
    model = load_model(model_dir, torch.float32, check=False, **extra)
    check_model_for_trl(model.config)
    if quantization:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=bool(args.gradient_checkpointing))
    peft = None
    if method != "full":
        peft = lora_config(model, lora.lora_r, lora.lora_alpha, lora.lora_dropout, lora.lora_target_modules)

    trainer = build_trainer(
        method, model, tokenizer, args, _as_dataset(train_records, dpo), _as_dataset(validation_records, dpo), peft
    )
    packing = bool(not dpo and args.packing)
    rows = f"{len(trainer.train_dataset):,} {'packed blocks' if packing else 'rows'}"
    print(f"{method}: train {len(train_records):,} records ({rows}), validation {len(validation_records):,}")
    before = trainer.evaluate()
    train_output = trainer.train()
    after = trainer.evaluate()

    if method == "full":
        save_model_folder(trainer.model, tokenizer, model_dir, output_dir)
    else:
        trainer.save_model(str(output_dir))  # a PeftModel saves only the adapter; the tokenizer goes beside it
        record_base(output_dir, model_dir)
    results = FinetuneResults(
        method=method,
        base_model=str(model_dir.resolve()),
        train_file=data.train_file,
        train_records=len(train_records),
        validation_records=len(validation_records),
        eval_loss_before=before["eval_loss"],
        eval_loss_after=after["eval_loss"],
        train_loss=train_output.training_loss,
        steps=train_output.global_step,
        train_seconds=train_output.metrics["train_runtime"],
        wall_seconds=0.0,
        packing=packing,
        eval_margin_before=before.get("eval_rewards/margins"),
        eval_margin_after=after.get("eval_rewards/margins"),
        eval_reward_accuracy_before=before.get("eval_rewards/accuracies"),
        eval_reward_accuracy_after=after.get("eval_rewards/accuracies"),
        lora=None if peft is None else {k: v for k, v in asdict(lora).items() if k not in ("merge", "merged_dir")},
        device=str(next(trainer.model.parameters()).device),
        dtype=str(next(trainer.model.parameters()).dtype).removeprefix("torch."),
        log_history=trainer.state.log_history,
        **parameter_counts(trainer.model),
    )
    if lora.merge:
        del trainer, model
        results.merged_dir = str(merge_adapter(model_dir, output_dir, lora.merged_dir or output_dir / "merged"))
    results.wall_seconds = time.perf_counter() - started
    results.write(output_dir)  # last: its presence marks a finished run
    return results
