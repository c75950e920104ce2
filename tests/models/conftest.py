"""Fixtures for the model tests: tiny configurations (width 32, 2 layers, vocab 97) and a short training loop."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from collections.abc import Callable

import pytest
import torch

from hfscratch.models.hfscratch import HFScratchConfig, HFScratchForCausalLM

VOCAB = 97


@pytest.fixture
def make_config() -> Callable[..., HFScratchConfig]:
    """Two layers of width 32 with GQA (4 query heads, 2 key/value heads), any field overridden. A wider
    initialisation than the default 0.02 gives peaked logits, so a wrong cache or mask changes greedy tokens
    instead of hiding in a near-uniform distribution."""

    def make(**overrides) -> HFScratchConfig:
        fields = dict(
            vocab_size=VOCAB,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            initializer_range=0.2,
            relative_attention_num_buckets=8,
            relative_attention_max_distance=16,
            pad_token_id=0,
        )
        return HFScratchConfig(**{**fields, **overrides})

    return make


@pytest.fixture
def make_model(make_config) -> Callable[..., HFScratchForCausalLM]:
    """A seeded tiny model in eval mode."""

    def make(seed: int = 0, **overrides) -> HFScratchForCausalLM:
        torch.manual_seed(seed)
        return HFScratchForCausalLM(make_config(**overrides)).eval()

    return make


@pytest.fixture
def train_steps() -> Callable[[HFScratchForCausalLM, torch.Tensor, int], list[float]]:
    """AdamW on one fixed batch; returns the loss of every step."""

    def train(model: HFScratchForCausalLM, input_ids: torch.Tensor, steps: int = 8) -> list[float]:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        losses = []
        for _ in range(steps):
            loss = model(input_ids, labels=input_ids).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
        return losses

    return train


@pytest.fixture
def input_ids() -> torch.Tensor:
    """(2, 12) tokens, never the pad id 0."""
    return torch.randint(1, VOCAB, (2, 12), generator=torch.Generator().manual_seed(1))
