"""`document_masking` in a real run: the batches the model gets from the Trainer, in training and in evaluation."""

from __future__ import annotations

import pytest
import torch
from training_helpers import REPO, write_recipe

from hfscratch.core.recipes import parse_recipe
from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments
from hfscratch.training.collator import document_position_ids
from hfscratch.training.pretrain import build_trainer

KEYS = [ModelArguments, DataArguments, PretrainingArguments]


def batches_the_model_sees(tmp_path, packed_corpus, document_masking: bool) -> tuple[list[dict], int]:
    """The keyword arguments of every model call in a 2-step run with an evaluation after each step."""
    recipe = write_recipe(
        tmp_path / "recipe.yaml",
        packed_corpus,
        tmp_path / "model",
        max_steps=2,
        document_masking=document_masking,
        eval_strategy="steps",
        eval_steps=1,
        max_eval_samples=4,
        per_device_eval_batch_size=4,
    )
    trainer = build_trainer(*parse_recipe(KEYS, [str(recipe)], "t"))
    calls = []
    trainer.model.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append({**kwargs, "training": module.training}), with_kwargs=True
    )
    trainer.train()
    return calls, trainer.processing_class.eos_token_id


def test_batches_have_restarting_positions_and_no_attention_mask(tmp_path, packed_corpus):
    calls, eos = batches_the_model_sees(tmp_path, packed_corpus, document_masking=True)
    assert {call["training"] for call in calls} == {True, False}  # training steps and evaluations both checked
    for call in calls:
        assert call.get("attention_mask") is None
        ids, positions = call["input_ids"], call["position_ids"]
        after_eos = torch.zeros_like(ids, dtype=torch.bool)
        after_eos[:, 1:] = ids[:, :-1] == eos
        assert (positions[after_eos] == 0).all() and (positions[:, 0] == 0).all()
        inside = ~after_eos
        inside[:, 0] = False
        assert (positions[:, 1:][inside[:, 1:]] == positions[:, :-1][inside[:, 1:]] + 1).all()
    # the check saw documents start inside blocks: positions restarted in most rows
    restarted = torch.cat([(call["position_ids"][:, 1:] == 0).any(dim=-1) for call in calls])
    assert restarted.float().mean() > 0.5


def test_without_document_masking_blocks_run_as_one_sequence(tmp_path, packed_corpus):
    calls, _ = batches_the_model_sees(tmp_path, packed_corpus, document_masking=False)
    assert calls and all(call.get("position_ids") is None for call in calls)


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        ([[5, 6, 2, 7, 8, 2, 9]], [[0, 1, 2, 0, 1, 2, 0]]),
        ([[2, 2, 5]], [[0, 0, 0]]),
        ([[5, 6, 7], [2, 5, 6]], [[0, 1, 2], [0, 0, 1]]),
    ],
)
def test_document_position_ids(ids, expected):
    assert document_position_ids(torch.tensor(ids), eos_token_id=2).tolist() == expected


def test_the_shakespeare_benchmark_documents_are_its_paragraphs_and_lose_nothing():
    """benchmarks/shakespeare.py cuts the text after its blank lines and ends each piece with EOS (what document
    masking masks); the pieces join back into the text exactly, so bits per character count every character."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("shakespeare_benchmark", REPO / "benchmarks" / "shakespeare.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    text = "First Citizen:\nSpeak.\n\nAll:\nSpeak, speak.\n\n\nFirst Citizen:\nYou are all resolved"
    pieces = benchmark.documents(text)
    assert pieces == ["First Citizen:\nSpeak.\n\n", "All:\nSpeak, speak.\n\n\n", "First Citizen:\nYou are all resolved"]
    assert "".join(pieces) == text
