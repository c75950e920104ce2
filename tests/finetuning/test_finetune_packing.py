"""Packed, padding-free SFT gives each example the per-token loss it has alone, in every position layout.

TRL's padding-free collator concatenates the examples of a batch into one row, with position ids that restart at
each example and no attention mask; our model hands the position ids to transformers' `create_causal_mask`,
which then builds a block-diagonal mask (no example sees another). The comparison runs through the trainer's own
path: its packed dataset, its collator, and the fused LM head it patches onto the model.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from finetuning_helpers import grammar_task

from hfscratch.finetuning.arguments import FinetuneSFTConfig
from hfscratch.prompting.templates import messages_from_record

LAYOUTS = [
    {"position_embedding_type": "rope"},  # the default
    {"position_embedding_type": "learned"},
    {"position_embedding_type": "sinusoidal"},
    {"position_embedding_type": "alibi"},
    {"position_embedding_type": "relative"},
    {"position_embedding_type": "rope", "sliding_window": 16},
    {"position_embedding_type": "rope", "attn_implementation": "eager"},
]


def sft_trainer(model, tokenizer, records: list, packing: bool):
    from datasets import Dataset
    from trl import SFTTrainer

    args = FinetuneSFTConfig(output_dir="unused", use_cpu=True, packing=packing, max_length=200, eval_strategy="no")
    dataset = Dataset.from_list([{"messages": messages_from_record(r)} for r in records])
    return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)


def per_token_nll(trainer, rows: list[dict]) -> torch.Tensor:
    """-log p of every next token of the collated `rows`, through the trainer's fused LM head (0 where masked)."""
    batch = trainer.data_collator(rows)
    with torch.no_grad():
        return -trainer.model(**batch, fused_lm_head=True).log_probs


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: "-".join(map(str, layout.values())))
def test_packed_loss_per_token_equals_each_example_alone(layout: dict, tiny_base_model: Path) -> None:
    from hfscratch import HFScratchConfig, HFScratchForCausalLM
    from hfscratch.finetuning.train import resolve_chat_template
    from hfscratch.models.loading import load_tokenizer

    tokenizer = load_tokenizer(tiny_base_model)
    tokenizer.chat_template = resolve_chat_template(tokenizer, None)
    rng = random.Random(0)
    records = [grammar_task(rng) for _ in range(12)]
    torch.manual_seed(0)
    config = HFScratchConfig.from_preset(
        "llama", size="tiny", hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
        intermediate_size=64, vocab_size=len(tokenizer), max_position_embeddings=256, **layout,
    )  # fmt: skip
    model = HFScratchForCausalLM(config).eval()

    packed = sft_trainer(model, tokenizer, records, packing=True)
    assert packed.padding_free and len(packed.train_dataset) < len(records)  # several examples share a block
    alone = sft_trainer(model, tokenizer, records, packing=False)
    expected = {}
    for row in alone.train_dataset:
        nll = per_token_nll(alone, [row])[0]
        expected[tuple(row["input_ids"])] = nll[: len(row["input_ids"]) - 1]

    compared = 0
    for block in packed.train_dataset:
        nll = per_token_nll(packed, [block])[0]
        start = 0
        for length in block["seq_lengths"]:
            ids = tuple(block["input_ids"][start : start + length])
            got = nll[start : start + length - 1]
            assert (got - expected[ids]).abs().max().item() < 1e-4, f"example at {start} of a block"
            start += length
            compared += 1
    assert compared == len(records)
