"""Token-based batch arithmetic: the global batch is given in tokens, the rest follows from the launch.

A recipe says how many tokens one optimizer step sees (GPT-3 and Llama report batches in tokens); the
launch decides the world size, and the recipe the micro-batch and sequence length that fit in memory.
Gradient accumulation makes up the difference, and must be a whole number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def gradient_accumulation_steps(global_batch_tokens: int, world_size: int, micro_batch_size: int, seq_len: int) -> int:
    """Micro-batches each process accumulates so that one optimizer step sees `global_batch_tokens` tokens.

    Raises `ValueError` naming the numbers when they do not divide.
    """
    tokens_per_micro_step = world_size * micro_batch_size * seq_len
    steps, remainder = divmod(global_batch_tokens, tokens_per_micro_step)
    if remainder or steps == 0:
        raise ValueError(
            f"key 'global_batch_tokens' is {global_batch_tokens:,}, not a multiple of world size {world_size} x "
            f"per_device_train_batch_size {micro_batch_size} x sequence length {seq_len} = {tokens_per_micro_step:,} "
            f"tokens; use e.g. {max(1, round(global_batch_tokens / tokens_per_micro_step)) * tokens_per_micro_step:,}"
        )
    return steps


@dataclass
class BatchRamp:
    """GPT-3's batch-size warm-up: each optimizer step sees a batch that grows linearly, in tokens trained,
    from `start_tokens` to the full batch over the first `ramp_tokens` tokens.

    The batch shrinks by training on the first rows of each micro-batch only (the others are skipped, not
    re-queued): the number of optimizer steps and the data order stay those of the full run, so the
    learning-rate schedule, checkpoints and resume work unchanged. Rows per micro-batch for a step are a pure
    function of the step, so a resumed run ramps exactly as an uninterrupted one.
    """

    start_tokens: int
    ramp_tokens: int
    rows: int  # rows of a full micro-batch on one process
    tokens_per_row: int  # sequence length x micro-batches per step x processes: one row everywhere
    _table: list[int] = field(default_factory=list, repr=False)  # rows for steps 0, 1, ... while ramping
    _trained: int = field(default=0, repr=False)  # tokens the steps in the table train

    def rows_at(self, step: int) -> int:
        """Rows per micro-batch of optimizer step `step` (0-based)."""
        while len(self._table) <= step and self._trained < self.ramp_tokens:
            progress = self._trained / self.ramp_tokens
            full = self.rows * self.tokens_per_row
            target = self.start_tokens + (full - self.start_tokens) * progress
            rows = min(self.rows, max(1, math.ceil(target / self.tokens_per_row)))
            self._table.append(rows)
            self._trained += rows * self.tokens_per_row
        return self._table[step] if step < len(self._table) else self.rows
