"""`PretrainTrainer`: `transformers.Trainer` with three pretraining hooks and nothing else changed.

- weight decay on matrices only (`optim.decay_parameter_names`, through `get_decay_parameter_names`), and
  optionally Muon on the hidden matrices (`matrix_optimizer: muon`);
- each micro-batch's loss handed to the `StabilityGuard` callback, which may skip the optimizer step;
- the batch-size ramp, by trimming the micro-batches of a step before the Trainer counts their tokens;
- a `TimeBudget` callback, when given, drives the learning-rate schedule by elapsed time as well as steps;
- a run resumed from its final checkpoint trains nothing (the Trainer would train one step more);
- a checkpoint's trainer_state.json is written only after every rank saved its RNG state;
- under `torch_compile`, evaluation runs the compiled model too (the Trainer evaluates the uncompiled one);
- throughput/MFU, validation perplexity and any callback's `pop_metrics()` (e.g. in-training lm-eval scores)
  added to the logs every logger (TensorBoard, ...) receives.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch._dynamo.eval_frame import OptimizedModule
from torch.optim.lr_scheduler import LambdaLR, LRScheduler
from transformers import Trainer, TrainerCallback

from hfscratch.core.recipes import RecipeError
from hfscratch.training.batching import BatchRamp
from hfscratch.training.budget import TimeBudget
from hfscratch.training.callbacks import StabilityGuard, ThroughputMeter
from hfscratch.training.fsdp import is_sharded_state_dict, model_class_unsharded, shard_on_cpus
from hfscratch.training.optim import MuonWithAdamW, decay_parameter_names


class PretrainTrainer(Trainer):
    def __init__(self, *args: Any, batch_ramp: BatchRamp | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.batch_ramp = batch_ramp

    def create_accelerator_and_postprocess(self) -> None:
        super().create_accelerator_and_postprocess()
        if shard_on_cpus(self.accelerator, self.args):  # accelerate alone would train FSDP as DDP on CPUs
            self.is_fsdp_enabled = True

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        # Under FSDP with sharded checkpoints the Trainer saves no weights at all (a checkpoint's are in its
        # pytorch_model_fsdp_0/). The model folder gets one model.safetensors: the full state dict, gathered
        # by accelerate onto rank 0 and saved with the config and code by `save_pretrained`.
        if _internal_call or not (self.is_fsdp_enabled and is_sharded_state_dict(self.accelerator)):
            super().save_model(output_dir, _internal_call)
            return
        state_dict = self.accelerator.get_state_dict(self.model)  # a collective: every rank takes part
        with model_class_unsharded(self.model):  # the model's own code is saved with it, not torch's FSDP code
            self._save(output_dir or self.args.output_dir, state_dict=state_dict)

    def _wrap_model(self, model: nn.Module, training: bool = True, dataloader: Any = None) -> nn.Module:
        # transformers 5.24 evaluates `self.model` during and after training, not the compiled `model_wrapped`
        # that accelerate made for training: evaluation gets the compiled module too (dynamo compiles a graph of
        # its own for eval mode and the evaluation batch). Only where the compiled module wraps the model itself:
        # under DDP, FSDP or DeepSpeed the Trainer's own choice stands.
        wrapped = super()._wrap_model(model, training, dataloader)
        compiled = self.model_wrapped
        if not training and wrapped is self.model and isinstance(compiled, OptimizedModule):
            if compiled._orig_mod is self.model:
                return compiled
        return wrapped

    def get_decay_parameter_names(self, model: nn.Module) -> list[str]:
        return decay_parameter_names(model)

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        if self.args.matrix_optimizer != "muon" or self.optimizer is not None:
            return super().create_optimizer(model)
        args = self.args
        betas = (args.adam_beta1, args.adam_beta2)
        self.optimizer = MuonWithAdamW(
            model if model is not None else self.model, args.learning_rate, args.weight_decay, betas, args.adam_epsilon
        )
        return self.optimizer

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None) -> LRScheduler:
        created = self.lr_scheduler is None
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        budget = self.callback(TimeBudget)
        if created and budget is not None:
            if not isinstance(scheduler, LambdaLR):
                raise RecipeError(
                    f"key 'lr_scheduler_type': {self.args.lr_scheduler_type} cannot follow a time budget "
                    "(a step-function schedule such as cosine_with_min_lr or linear can)"
                )
            scheduler.lr_lambdas = [budget.follow(f, num_training_steps) for f in scheduler.lr_lambdas]
        return scheduler

    def _save_rng_state(self, output_dir: str) -> None:
        # Each rank saves its own rng_state_N.pth, then rank 0 writes trainer_state.json with no barrier in
        # between; `resume_from_checkpoint: auto` takes a readable trainer_state.json to mean the checkpoint is
        # complete, and a rank resumed without its RNG state only logs it. Wait for every rank's file first.
        super()._save_rng_state(output_dir)
        self.accelerator.wait_for_everyone()

    def _run_epoch(self, *args: Any, **kwargs: Any) -> Any:
        # The Trainer checks max_steps only after a step (DefaultFlowCallback.on_step_end), so a run resumed from
        # its final checkpoint would train one step past max_steps, and each rerun one more.
        if self.state.global_step >= self.state.max_steps:
            self.control.should_training_stop = True
            return None
        return super()._run_epoch(*args, **kwargs)

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token: the model's own count (6N plus attention, as `plan` counts it), else the
        Trainer's (6 x the non-embedding parameters, for a model from elsewhere). MFU and `total_flos` use it."""
        if hasattr(self.model, "flops_per_token"):
            return self.model.flops_per_token(seq_len)
        return super().floating_point_ops({"input_ids": torch.empty(1, seq_len)}) / seq_len

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        ids = inputs.get(getattr(self.model, "main_input_name", "input_ids"))
        if ids is None or not hasattr(self.model, "flops_per_token"):
            return super().floating_point_ops(inputs)
        return int(self.flops_per_token(ids.shape[-1]) * ids.numel())

    def callback(self, kind: type[TrainerCallback]) -> Any:
        """The callback of type `kind` (looked up each time: resuming replaces stateful callbacks)."""
        return next((c for c in self.callback_handler.callbacks if isinstance(c, kind)), None)

    def training_step(
        self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        loss = super().training_step(model, inputs, num_items_in_batch)
        guard = self.callback(StabilityGuard)
        if guard is not None:
            guard.add_loss(loss)
        return loss

    def get_batch_samples(self, epoch_iterator: Iterator, num_batches: int, device: torch.device) -> tuple[list, Any]:
        if self.batch_ramp is not None:
            rows = self.batch_ramp.rows_at(self.state.global_step)
            epoch_iterator = ({key: value[:rows] for key, value in batch.items()} for batch in epoch_iterator)
        return super().get_batch_samples(epoch_iterator, num_batches, device)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        meter = self.callback(ThroughputMeter)
        if "loss" in logs and meter is not None:
            logs.update(meter.measure(self.state.num_input_tokens_seen))
        if "eval_loss" in logs:
            logs["eval_perplexity"] = math.exp(logs["eval_loss"])
        for callback in self.callback_handler.callbacks:  # metrics a callback measured between two logs
            if hasattr(callback, "pop_metrics"):
                logs.update(callback.pop_metrics())
        super().log(logs, start_time)
