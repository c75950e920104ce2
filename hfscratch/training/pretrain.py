"""Step 3, the library: build the model, read the packed blocks, train with `PretrainTrainer`.

    accelerate launch --config_file recipes/accelerate/zero2.yaml -m hfscratch.training.pretrain RECIPE.yaml
    hfscratch pretrain RECIPE.yaml [--key value ...]          # one device

Both run `hfscratch.training.cli` (parse, call, print), which composes this module with callbacks of higher
layers (the in-training lm-eval harness). The output folder is an ordinary Hugging Face model folder (config,
model.safetensors, model code, tokenizer) with `checkpoint-N/` folders, `loss_curve.png`, TensorBoard logs,
`pretrain.log` (library messages) and `run_info.json` (how it was run; written last).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import platform
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from datasets import load_from_disk
from torch.utils.data import Subset
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    TrainerCallback,
    set_seed,
)

from hfscratch.core.artifacts import ArtifactError
from hfscratch.core.recipes import RecipeError
from hfscratch.models.kernels import apply_liger
from hfscratch.tokenization.artifacts import TokenizeStats
from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments
from hfscratch.training.batching import BatchRamp, gradient_accumulation_steps
from hfscratch.training.budget import TimeBudget
from hfscratch.training.callbacks import (
    LogLastStep,
    LossCurvePlot,
    StabilityGuard,
    ThroughputMeter,
    compute_dtype,
    device_peak,
)
from hfscratch.training.checkpoints import resolve_resume
from hfscratch.training.collator import PackedBlockCollator
from hfscratch.training.data_mixture import TOKENS_DIR, MixtureDataset, load_token_shards
from hfscratch.training.decay import decay_resume, decay_start
from hfscratch.training.fp8 import convert_to_fp8
from hfscratch.training.fsdp import local_numel, parameter_placements
from hfscratch.training.run_info import RECORDED_TRAINING_ARGS, RunInfo
from hfscratch.training.trainer import PretrainTrainer


def load_data(data: DataArguments, seed: int) -> tuple[PreTrainedTokenizerBase, dict[str, Any]]:
    """The tokenizer and {"train", "validation"} blocks of a tokenize output: packed Arrow blocks, or token
    shards mixed at load time by `data_mixture` (data_mixture.py)."""
    folder = Path(data.data_dir)
    if not (folder / "tokenizer").is_dir() or not ((folder / "packed").is_dir() or (folder / TOKENS_DIR).is_dir()):
        raise RecipeError(
            f"key 'data_dir': {folder} has no tokenizer/ and packed/ or tokens/ (expected a `hfscratch tokenize` "
            "output folder)"
        )
    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    if (folder / TOKENS_DIR).is_dir():
        stats = read_tokenize_stats(folder)
        blocks = load_token_shards(folder, stats.block_size, len(tokenizer), data.data_mixture, seed)
    else:
        if data.data_mixture is not None:
            raise RecipeError(
                f"key 'data_mixture': {folder}/packed was mixed when it was tokenized (its recipe's mixture); "
                "load-time mixtures need token shards (hfscratch tokenize --executor local)"
            )
        blocks = load_from_disk(str(folder / "packed"))
    if blocks.get("train") is None or len(blocks["train"]) == 0:
        raise RecipeError(f"key 'data_dir': {folder} has no training blocks")
    validation = blocks.get("validation")
    if data.max_eval_samples is not None and validation is not None:
        keep = range(min(data.max_eval_samples, len(validation)))
        blocks["validation"] = validation.select(keep) if hasattr(validation, "select") else Subset(validation, keep)
    return tokenizer, blocks


def read_tokenize_stats(folder: Path) -> TokenizeStats:
    try:
        return TokenizeStats.read(folder)
    except ArtifactError as exc:  # an unfinished tokenization (no stats.json yet) or an unreadable one
        raise RecipeError(f"key 'data_dir': {exc}") from None


def build_model(model_args: ModelArguments, tokenizer: PreTrainedTokenizerBase, seq_len: int) -> PreTrainedModel:
    """A fresh model from a preset (and overrides), or the model of `model_name_or_path` to continue training."""
    kwargs = {"attn_implementation": model_args.attn_implementation} if model_args.attn_implementation else {}
    if model_args.model_name_or_path:
        return AutoModelForCausalLM.from_pretrained(model_args.model_name_or_path, **kwargs)
    from hfscratch.models.hfscratch import HFScratchConfig

    special = {
        # The context the model is trained at is the context it has: evaluation (lm-eval's truncation, perplexity's
        # window) reads it from the config, and positions never trained would only be extrapolated.
        "max_position_embeddings": seq_len,
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    try:
        overrides = model_args.overrides()
        fields = HFScratchConfig().to_dict()
        # A config takes unknown keyword arguments silently: a typo would train the default instead.
        for key in overrides:
            if key not in fields:
                close = difflib.get_close_matches(key, fields, n=1)
                raise ValueError(
                    f"{key!r} is not a model config field" + (f" (did you mean {close[0]!r}?)" if close else "")
                )
        config = HFScratchConfig.from_preset(
            model_args.model_preset, size=model_args.model_size, **{**special, **overrides}
        )
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"model: {' '.join(str(exc).split())}") from None
    if seq_len > config.max_position_embeddings:
        raise RecipeError(
            f"the packed blocks have {seq_len} tokens, more than the model's max_position_embeddings "
            f"({config.max_position_embeddings}); set config_overrides: max_position_embeddings={seq_len}"
        )
    # from_config builds the weights under deepspeed.zero.Init when ZeRO-3 is on: no process holds them all.
    return AutoModelForCausalLM.from_config(config, **kwargs)


def launch_world_size() -> int:
    """Processes of this launch, from the launcher's environment (torchrun, accelerate, deepspeed set it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def fit_to_launch(args: PretrainingArguments, seq_len: int) -> PretrainingArguments:
    """Arguments completed from the launch: the DeepSpeed config an accelerate YAML names, and gradient
    accumulation (and max_steps) from the batch and budget in tokens.

    A new `PretrainingArguments` rather than an edited one, so that its validation and DeepSpeed's "auto"
    values see the final numbers.
    """
    changes: dict = {}
    if args.deepspeed is None and os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE"):
        changes["deepspeed"] = os.environ["ACCELERATE_DEEPSPEED_CONFIG_FILE"]
    if args.global_batch_tokens is not None:
        try:
            changes["gradient_accumulation_steps"] = gradient_accumulation_steps(
                args.global_batch_tokens, launch_world_size(), args.per_device_train_batch_size, seq_len
            )
        except ValueError as exc:
            raise RecipeError(str(exc)) from None
        if args.train_tokens and args.max_steps <= 0:  # an explicit max_steps (e.g. --max_steps 10) wins
            changes["max_steps"] = math.ceil(args.train_tokens / args.global_batch_tokens)
    return dataclasses.replace(args, **changes) if changes else args


def batch_ramp(args: PretrainingArguments, seq_len: int) -> BatchRamp | None:
    if args.batch_ramp_start_tokens is None or args.batch_ramp_tokens <= 0:
        return None
    return BatchRamp(
        start_tokens=args.batch_ramp_start_tokens,
        ramp_tokens=args.batch_ramp_tokens,
        rows=args.per_device_train_batch_size,
        tokens_per_row=seq_len * args.gradient_accumulation_steps * launch_world_size(),
    )


def init_distributed(args: PretrainingArguments) -> None:
    """Under a launcher, DeepSpeed's communication layer must know the process group before the model is built
    (ZeRO-3 partitions it as it is created, and sees one process otherwise); on CPU the backend is gloo. It
    adopts a torch process group that exists already."""
    if args.deepspeed and launch_world_size() > 1:
        import deepspeed

        deepspeed.init_distributed(dist_backend="gloo" if args.use_cpu else "nccl")


def build_trainer(
    model_args: ModelArguments,
    data_args: DataArguments,
    args: PretrainingArguments,
    callbacks: Sequence[TrainerCallback] = (),
) -> PretrainTrainer:
    """The Trainer of a pretraining run; `callbacks` come from the caller (e.g. a `TimeBudget`, the lm-eval
    harness of `hfscratch.evaluation`), after the run's own and before the last-step log and the plot."""
    tokenizer, blocks = load_data(data_args, args.data_seed if args.data_seed is not None else args.seed)
    seq_len = len(blocks["train"][0]["input_ids"])
    if isinstance(blocks["train"], MixtureDataset):
        # The blended order is already a seeded shuffle whose every prefix holds the mixture: keep it.
        args = dataclasses.replace(args, train_sampling_strategy="sequential")
    args = fit_to_launch(args, seq_len)
    init_distributed(args)
    validation = blocks.get("validation")
    if args.eval_strategy != "no" and (validation is None or len(validation) == 0):
        raise RecipeError(
            f"eval_strategy is {args.eval_strategy!r} but {data_args.data_dir}/packed has no validation blocks"
        )
    set_seed(args.seed)  # the weights' initialisation, before the Trainer seeds the data order
    model = build_model(model_args, tokenizer, seq_len)
    if args.use_liger_kernel:  # Liger knows no `hfscratch` model type: the Trainer alone would patch nothing
        apply_liger(model, args.liger_kernel_config)
    if args.fp8:  # before the Trainer compiles the model (torch.compile fuses the float8 casts into the kernels)
        convert_to_fp8(model)
    run_callbacks = [
        ThroughputMeter(None, device_peak(args.peak_tflops_per_device, compute_dtype(args)), args.world_size),
        StabilityGuard(args.loss_spike_factor, args.max_bad_steps, can_skip=not args.deepspeed),
        *callbacks,
        LogLastStep(),
        LossCurvePlot(),
    ]
    trainer = PretrainTrainer(
        model=model,
        args=args,
        train_dataset=blocks["train"],
        eval_dataset=validation if args.eval_strategy != "no" else None,
        # Causal LM labels are the inputs (the model shifts them); pad ids in a last partial block become -100.
        data_collator=PackedBlockCollator(tokenizer, document_masking=data_args.document_masking),
        processing_class=tokenizer,
        callbacks=run_callbacks,
        batch_ramp=batch_ramp(args, seq_len),
    )
    trainer.callback(ThroughputMeter).flops_per_token = trainer.flops_per_token(seq_len)
    return trainer


def device_name() -> str:
    """What one training device is, in words: the GPU's marketing name, or the CPU's model name."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    cpuinfo = Path("/proc/cpuinfo")
    names = [
        line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
    ]
    return f"CPU ({names[0] if names else platform.processor() or 'unknown'}, {torch.get_num_threads()} threads)"


def run_info(trainer: PretrainTrainer, data_dir: str | None, runtime_s: float) -> RunInfo:
    """The run as it actually ran, from the Trainer: world size, engine, parameters (sharded or not), steps."""
    args, model = trainer.args, trainer.model
    # Under ZeRO-3 a parameter outside forward is an empty placeholder (its shard is `ds_tensor`); under FSDP2 a
    # DTensor whose local shard is this rank's part.
    local = sum(local_numel(p) for p in model.parameters())
    total = sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel() for p in model.parameters())
    zero_stage = trainer.accelerator.state.deepspeed_plugin.zero_stage if trainer.is_deepspeed_enabled else None
    budget, meter = trainer.callback(TimeBudget), trainer.callback(ThroughputMeter)
    return RunInfo(
        world_size=args.world_size,
        distributed_type=str(trainer.accelerator.distributed_type.value),
        deepspeed=trainer.is_deepspeed_enabled,
        zero_stage=zero_stage,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        parameters=total,
        parameters_on_rank0=local,
        parameter_placements=parameter_placements(model),
        peak_flops_per_device=meter.peak_flops,
        peak_source=meter.peak.source if meter.peak else None,
        decayed_from=decay_start(args),
        max_steps=trainer.state.max_steps,
        global_step=trainer.state.global_step,
        stopped_by="time budget" if budget is not None and budget.cut_short else "max_steps",
        training_args={key: getattr(args, key) for key in RECORDED_TRAINING_ARGS},
        train_tokens=trainer.state.num_input_tokens_seen or None,
        data_mixture=mixture_trained(trainer),
        data_dir=str(Path(data_dir).resolve()) if data_dir else None,
        device=device_name(),
        num_devices=args.world_size,
        train_runtime_s=round(runtime_s, 1),
        device_hours=round(runtime_s * args.world_size / 3600, 4),
    )


def mixture_trained(trainer: PretrainTrainer) -> dict[str, dict[str, float]] | None:
    """Per source of a load-time mixture: its weight (normalised), and its share of the blocks the run
    trained on (a whole number of passes: the mixture's own shares; part of one: the shares of that prefix)."""
    train = trainer.train_dataset
    if not isinstance(train, MixtureDataset):
        return None
    seq_len = len(train[0]["input_ids"])
    trained = (trainer.state.num_input_tokens_seen or 0) // seq_len % len(train)
    shares = train.shares(trained or None)
    total = sum(train.weights.values())
    return {
        tag: {"weight": round(train.weights[tag] / total, 6), "share_of_blocks": round(shares[tag], 6)}
        for tag in sorted(train.sources)
    }


def start_over(output_dir: str | Path) -> None:
    """`overwrite_output_dir`: delete the previous run in `output_dir`, its completion marker first (a crash
    half-way leaves a folder that no longer claims to hold a finished run), before anything of the new run is
    written there (the CLI calls it first, on rank 0). A folder that holds no pretraining run is left alone: the
    Trainer writes over what it writes."""
    folder = Path(output_dir)
    RunInfo.path(folder).unlink(missing_ok=True)
    if any(folder.glob("checkpoint-*")) or (folder / "trainer_state.json").exists():
        shutil.rmtree(folder)


def train(trainer: PretrainTrainer, data_dir: str | None = None) -> int:
    """Train (resuming if asked), save the final model, and tell how it went; 1 if the guard stopped it.

    run_info.json is written last, and only when the run ended well: its presence means the run finished."""
    args = trainer.args
    resume = None if args.overwrite_output_dir else resolve_resume(args.resume_from_checkpoint, args.output_dir)
    resume = decay_resume(args, resume)  # a decay run starts from the stable checkpoint it decays from
    # A validation before the first step gives the loss curve its start; a resumed run has it in its history.
    args.eval_on_start = args.eval_on_start and args.eval_strategy != "no" and resume is None
    try:
        result = trainer.train(resume_from_checkpoint=resume)
        guard = trainer.callback(StabilityGuard)
        if guard.failure is None:
            trainer.save_model()  # under ZeRO-3, gathers the 16-bit weights into one model.safetensors
        metrics = {**result.metrics, "skipped_steps": guard.skipped_steps}
        trainer.save_state()  # trainer_state.json: the log history, beside the model
        if trainer.is_world_process_zero():
            trainer.save_metrics("train", metrics)
            if guard.failure is None:
                run_info(trainer, data_dir, result.metrics["train_runtime"]).write(args.output_dir)
    finally:
        if dist.is_initialized():
            dist.barrier()  # no rank leaves while another still saves; without it exits abort about 1 in 3
            dist.destroy_process_group()
    if guard.failure is not None:
        saved = f"the last good weights are in {args.output_dir}/checkpoint-{trainer.state.global_step}"
        print(
            f"hfscratch pretrain: {guard.failure}; {saved if guard.can_skip else 'no checkpoint saved'}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":  # `accelerate launch -m hfscratch.training.pretrain RECIPE.yaml`: the CLI's own code
    from hfscratch.training.cli import run_as_script

    run_as_script(sys.argv[1:])
