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


def check_model_for_trl(config: Any, method: str, z_loss_weight: float | None, args: Any) -> float:
    """Refuse what TRL would train differently from how the model runs; returns the z-loss weight to train with.
    TRL's loss computes the log-probabilities from the hidden states and `lm_head.weight` itself."""
    check_soft_cap(config)
    return z_loss_to_train_with(config, method, z_loss_weight, args)


def check_soft_cap(config: Any) -> None:
    """TRL applies the soft-cap it reads as `final_logit_softcapping`, the same cap * tanh(logits / cap) as our
    model; our configuration exposes `logit_softcap` under that name, which a folder saved with older
    configuration code (loaded as its own remote code) lacks."""
    cap = getattr(config, "logit_softcap", None)
    if cap is not None and getattr(config, "final_logit_softcapping", None) != cap:
        raise RecipeError(
            f"logit_softcap: the base model soft-caps its logits ({cap}) but its configuration code does not expose "
            "the cap as final_logit_softcapping, which TRL's loss reads, so fine-tuning would train uncapped logits; "
            "load and re-save the model with this hfscratch"
        )


def z_loss_to_train_with(config: Any, method: str, z_loss_weight: float | None, args: Any) -> float:
    """The recipe's `z_loss_weight`, else the base's. TRL's loss adds no z-loss: SFT then trains on the model's own
    loss (`ModelLossSFTTrainer`), which replaces only TRL's plain cross-entropy; DPO's loss has no such term."""
    base = float(getattr(config, "z_loss_weight", 0.0) or 0.0)
    weight = base if z_loss_weight is None else z_loss_weight
    if weight < 0:
        raise RecipeError(f"z_loss_weight: expected a weight >= 0, got {weight}")
    if weight and not hasattr(config, "z_loss_weight"):
        raise RecipeError(f"z_loss_weight: the base model ({config.model_type}) has no z-loss to weight")
    if weight and method == "dpo":
        source = f"the base model trains with z-loss ({base})" if z_loss_weight is None else f"z-loss ({weight})"
        raise RecipeError(
            f"z_loss_weight: {source}, which DPO's loss has no term for; pass --z_loss_weight 0 to run DPO without it"
        )
    if weight and (args.loss_type != "nll" or args.label_smoothing_factor):
        raise RecipeError(
            f"z_loss_weight: z-loss ({weight}) comes with the model's own cross-entropy, not with "
            f"loss_type={args.loss_type!r} or label_smoothing_factor={args.label_smoothing_factor}; pass "
            "--z_loss_weight 0 to train without it"
        )
    return weight


def _model_config(model_dir: Path) -> Any:
    """The base's configuration as `load_model` will build it (the folder's own code where it has some)."""
    from transformers import AutoConfig

    import hfscratch.models.hfscratch  # noqa: F401  (registers our classes with the Auto classes)

    return AutoConfig.from_pretrained(str(model_dir), trust_remote_code=True)


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
    """(train, validation) records of the method's kind, from the recipe's files or the built-in python-docs set
    (whose own held-out questions are the validation records unless a validation_file is given)."""
    from hfscratch.finetuning import python_docs
    from hfscratch.finetuning.data import (
        read_instruction_file,
        read_preference_file,
        split_preferences,
        split_validation,
    )

    dpo = data.method == "dpo"
    read = read_preference_file if dpo else read_instruction_file
    train_file, validation_file = data.train_file, data.validation_file
    if (validation_file is None or train_file == python_docs.BUILTIN_NAME) and not 0.0 < data.validation_fraction < 1.0:
        raise RecipeError(f"validation_fraction: expected a share in (0, 1), got {data.validation_fraction}")
    if train_file == python_docs.BUILTIN_NAME and not Path(train_file).exists():
        train_path, held_out_path = python_docs.write_python_docs_split(
            output_dir / "data", dpo, data.validation_fraction, seed
        )
        train_file, validation_file = str(train_path), validation_file or str(held_out_path)
    train = read(train_file, data.system_prompt)
    if validation_file:
        validation = read(validation_file, data.system_prompt)
    else:
        train, validation = (split_preferences if dpo else split_validation)(train, data.validation_fraction, seed)
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
    if getattr(model.config, "z_loss_weight", 0.0):  # TRL's fused loss has no z-loss: take the model's own
        from hfscratch.finetuning.trainers import ModelLossSFTTrainer

        return ModelLossSFTTrainer(**common)
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
    z_loss_weight = check_model_for_trl(_model_config(model_dir), method, data.z_loss_weight, args)
    started = time.perf_counter()

    tokenizer = load_tokenizer(model_dir)
    tokenizer.chat_template = resolve_chat_template(tokenizer, data.chat_template)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train_records, validation_records = load_records(data, output_dir, args.seed)
    extra = {"quantization_config": quantization} if quantization else {}
    model = load_model(model_dir, torch.float32, check=False, **extra)
    if hasattr(model.config, "z_loss_weight"):
        model.config.z_loss_weight = z_loss_weight  # the model's own loss (SFT with z-loss) reads it
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
        z_loss_weight=z_loss_weight,
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
