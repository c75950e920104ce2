"""Batches of packed blocks for causal-LM pretraining, with or without document masking.

A packed block holds the end of one document, EOS, the next document, EOS, ... With `document_masking` the
collator gives each token its position inside its document (0 at the block's start and after every EOS) and passes
no attention mask: from such position ids transformers builds the per-document (block-diagonal) mask for SDPA,
eager and flex attention, and the FlashAttention path goes varlen, as for `DataCollatorWithFlattening`'s batches.

Labels are the same either way: the inputs, pads masked. The EOS that ends a document keeps the next document's
first token as its label: with masking it sees only its own document, so this is the model's guess at how a
document opens (the only place it learns one, as the blocks have no BOS), and the loss counts the same tokens with
masking on and off, which keeps the two comparable.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerBase


def document_position_ids(input_ids: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """(B, T) position of each token in its document: counting from 0 at the row's start and after each EOS.

    [[a, b, EOS, c, d, EOS, e]] -> [[0, 1, 2, 0, 1, 2, 0]]"""
    index = torch.arange(input_ids.shape[-1], device=input_ids.device).expand_as(input_ids)
    starts = torch.zeros_like(input_ids, dtype=torch.bool)
    starts[:, 1:] = input_ids[:, :-1] == eos_token_id
    document_start = torch.where(starts, index, 0).cummax(dim=-1).values  # index of the latest document start
    return index - document_start


class PackedBlockCollator(DataCollatorForLanguageModeling):
    """`DataCollatorForLanguageModeling(mlm=False)` over packed blocks, plus, with `document_masking`, per-document
    `position_ids` and no `attention_mask`."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, document_masking: bool = False):
        super().__init__(tokenizer, mlm=False)
        if document_masking and tokenizer.eos_token_id is None:
            raise ValueError("key 'document_masking': the tokenizer has no eos_token to find document boundaries")
        self.document_masking = document_masking

    def torch_call(self, examples: list[Any]) -> dict[str, Any]:
        batch = super().torch_call(examples)
        if self.document_masking:
            # Pads sit only at the end of the last block, after every real token: causally, no real token sees them.
            batch.pop("attention_mask", None)
            batch["position_ids"] = document_position_ids(batch["input_ids"], self.tokenizer.eos_token_id)
        return batch
