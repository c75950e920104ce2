"""`PretrainTrainer`: `transformers.Trainer` with three pretraining hooks and nothing else changed.

- weight decay on matrices only (`optim.decay_parameter_names`, through `get_decay_parameter_names`), and
  optionally Muon on the hidden matrices (`matrix_optimizer: muon`);
- each micro-batch's loss handed to the `StabilityGuard` callback, which may skip the optimizer step;
- the batch-size ramp, by trimming the micro-batches of a step before the Trainer counts their tokens;
- throughput/MFU and validation perplexity added to the logs every logger (TensorBoard, ...) receives.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainerCallback

from hfscratch.training.batching import BatchRamp
from hfscratch.training.callbacks import StabilityGuard, ThroughputMeter
from hfscratch.training.optim import MuonWithAdamW, decay_parameter_names


class PretrainTrainer(Trainer):
    def __init__(self, *args: Any, batch_ramp: BatchRamp | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.batch_ramp = batch_ramp

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
        if getattr(self.args, "eval_harness_tasks", None):  # in-training lm-eval scores go to every logger too
            from hfscratch.evaluation.callback import EvalHarnessCallback

            harness = self.callback(EvalHarnessCallback)
            if harness is not None:
                logs.update(harness.pop_metrics())
        super().log(logs, start_time)
