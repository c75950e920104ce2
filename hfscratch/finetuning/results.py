"""`finetune_results.json`: what a fine-tune measured, written last (its presence marks a finished run)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from hfscratch.core.artifacts import Artifact


@dataclass
class FinetuneResults(Artifact):
    """Held-out figures before the first step and after the last, with what produced them.

    SFT (`full`, `lora`): `eval_loss_*` is the loss on the held-out records' assistant tokens. DPO: `eval_loss_*`
    is the DPO loss, and `eval_margin_*` the mean reward margin beta * (log-ratio of chosen - log-ratio of rejected)
    over held-out pairs, `eval_reward_accuracy_*` the share of pairs where the chosen answer's reward is higher.
    """

    FILE: ClassVar[str] = "finetune_results.json"
    SCHEMA_VERSION: ClassVar[int] = 2  # 1: LoRA SFT with a hand-built loop around the Trainer, no `method`

    method: str
    base_model: str
    train_file: str
    train_records: int
    validation_records: int
    eval_loss_before: float
    eval_loss_after: float
    train_loss: float
    steps: int
    train_seconds: float
    wall_seconds: float
    trainable_params: int
    all_params: int
    trainable_percent: float
    packing: bool = False
    z_loss_weight: float = 0.0  # z-loss in the fine-tuning loss (SFT: the model's own loss then)
    eval_margin_before: float | None = None
    eval_margin_after: float | None = None
    eval_reward_accuracy_before: float | None = None
    eval_reward_accuracy_after: float | None = None
    lora: dict[str, Any] | None = None
    merged_dir: str | None = None
    device: str = "cpu"
    dtype: str = "float32"
    log_history: list[dict[str, Any]] = field(default_factory=list)
