"""TRL's trainers as fine-tuning runs them: `SFTTrainer` with the model's own loss, where TRL's would differ.

TRL computes the SFT loss itself, from the hidden states and `lm_head.weight` (its fused LM head), so an
auxiliary loss that our model adds in its forward, z-loss (`z_loss_weight`), would be dropped. `ModelLossSFTTrainer`
takes the loss from the model's forward with the labels, as the Trainer does and as pretraining did: the same
cross-entropy (soft-cap included) plus z-loss, at the cost of the (tokens, vocab) logits and TRL's token-accuracy
and entropy logs.
"""

from __future__ import annotations

from typing import Any

from transformers import Trainer
from trl import SFTTrainer


class ModelLossSFTTrainer(SFTTrainer):
    """`SFTTrainer` whose training and evaluation loss is the model's own (`model(**inputs).loss`)."""

    def compute_loss(self, model: Any, inputs: dict, return_outputs: bool = False, num_items_in_batch: Any = None):
        inputs["use_cache"] = False  # as TRL's own compute_loss: no cache in training
        return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)
