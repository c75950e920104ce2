"""The batch-size ramp in a real run: each step trains on the rows its ramp gives, then on full batches."""

from __future__ import annotations

import pytest
from training_helpers import logged, write_recipe

from hfscratch.core.recipes import parse_recipe
from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments
from hfscratch.training.pretrain import build_trainer, train


@pytest.mark.slow
def test_ramp_trains_fewer_tokens_early_and_full_batches_after(tmp_path, packed_corpus):
    # Full batch: 4 rows x 64 tokens x 2 micro-batches = 512 tokens; one row everywhere = 128 tokens.
    # Ramp from 128 tokens over 1,000 tokens: rows ceil((128 + 384 * trained / 1000) / 128) = 1, 2, 3, 4, ...
    recipe = write_recipe(
        tmp_path / "ramp.yaml",
        packed_corpus,
        tmp_path / "model",
        max_steps=6,
        global_batch_tokens=512,
        batch_ramp_start_tokens=128,
        batch_ramp_tokens=1000,
    )
    trainer = build_trainer(*parse_recipe([ModelArguments, DataArguments, PretrainingArguments], [str(recipe)], "t"))
    assert train(trainer) == 0
    seen = logged(tmp_path / "model", "num_input_tokens_seen")
    per_step = [seen[1]] + [seen[step] - seen[step - 1] for step in range(2, 7)]
    # trained 0 -> 1 row (128 tokens); 128 -> 1.38 -> 2 rows; 384 -> 2.15 -> 3; 768 -> 3.3 -> 4; then full.
    assert per_step == [128, 256, 384, 512, 512, 512]
