"""Load-time mixtures of token shards: `data_mixture` in the pretraining recipe, no new tokenization.

The realised shares must hold within 1% over a run (every prefix, since a run may stop at any step), each
source's blocks must be its own, and the run must record the mixture it trained on.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from training_helpers import pretrain_command, run, sentence, write_recipe

from hfscratch.core.recipes import RecipeError
from hfscratch.tokenization.arguments import TokenizeArguments
from hfscratch.tokenization.pipeline import run_tokenize
from hfscratch.training.data_mixture import blend_order, block_counts, load_token_shards, source_blocks


@pytest.fixture(scope="module")
def token_shards(tmp_path_factory) -> Path:
    """Two sources of unequal size tokenized into per-source shards by the datatrove stages."""
    root = tmp_path_factory.mktemp("mixture")
    rng = random.Random(0)
    with (root / "corpus.jsonl").open("w") as f:
        for i in range(600):
            source = "web" if i % 4 else "books"  # books: a quarter of the documents
            text = " ".join(sentence(rng) for _ in range(rng.randint(2, 6)))
            f.write(json.dumps({"text": text, "id": f"d{i}", "source": source}) + "\n")
    out = root / "tokenized"
    run_tokenize(
        TokenizeArguments(
            corpus=str(root / "corpus.jsonl"),
            out=str(out),
            vocab_size=300,
            block_size=64,
            validation_fraction=0.1,
            executor="local",
            tasks=2,
            num_proc=2,
        )
    )
    return out


def test_block_counts_add_up_and_every_prefix_holds_the_shares():
    counts = block_counts({"a": 0.7, "b": 0.2, "c": 0.1}, 1003)
    assert sum(counts.values()) == 1003 and counts == {"a": 702, "b": 201, "c": 100}
    sources, _ = blend_order(counts)
    order = [list(counts)[i] for i in sources]
    for n in range(10, 1004):
        prefix = order[:n]
        for tag, weight in (("a", 0.7), ("b", 0.2), ("c", 0.1)):
            assert abs(prefix.count(tag) - weight * n) <= 1.0, (tag, n)
    assert block_counts({"a": 1.0, "b": 0.0}, 10) == {"a": 10}


def test_the_mixture_is_chosen_at_load_time_within_one_percent(token_shards):
    natural = load_token_shards(token_shards, 64, 300, None, seed=1)["train"]
    assert natural.counts["web"] > 2 * natural.counts["books"]  # the corpus's own shares
    for weights in ({"web": 0.3, "books": 0.7}, {"web": 0.5, "books": 0.5}):
        mixture = load_token_shards(token_shards, 64, 300, weights, seed=1)["train"]
        assert len(mixture) == len(natural)  # one epoch of the corpus's size, however it is mixed
        for first in (50, 200, len(mixture)):
            shares = mixture.shares(first)
            assert all(abs(shares[tag] - w) <= 0.01 for tag, w in weights.items()), (first, shares)


def test_each_block_is_a_block_of_its_own_source_and_repeats_come_last(token_shards):
    mixture = load_token_shards(token_shards, 64, 300, {"web": 0.2, "books": 0.8}, seed=3)["train"]
    books = source_blocks(token_shards / "tokens" / "train" / "books", 64, 300)
    own = {tuple(books[i]["input_ids"].tolist()) for i in range(len(books))}
    books_at = [i for i in range(len(mixture)) if mixture.tags[mixture.source_of[i]] == "books"]
    drawn = [tuple(mixture[i]["input_ids"].tolist()) for i in books_at]
    assert len(drawn) > len(books)  # oversampled: more than one pass over the source
    assert set(drawn) == own and len(set(drawn[: len(books)])) == len(books)  # every block once before repeats
    assert all(len(block) == 64 for block in drawn)
    again = load_token_shards(token_shards, 64, 300, {"web": 0.2, "books": 0.8}, seed=3)["train"]
    assert all(torch.equal(mixture[i]["input_ids"], again[i]["input_ids"]) for i in range(0, len(mixture), 7))


def test_unknown_sources_and_packed_blocks_are_refused(token_shards, packed_corpus):
    with pytest.raises(RecipeError, match=r"key 'data_mixture': no training blocks of source\(s\) \['news'\]"):
        load_token_shards(token_shards, 64, 300, {"news": 1.0}, seed=1)
    with pytest.raises(RecipeError, match="key 'data_mixture': every weight is 0"):
        load_token_shards(token_shards, 64, 300, {"web": 0.0}, seed=1)
    from hfscratch.training.arguments import DataArguments
    from hfscratch.training.pretrain import load_data

    with pytest.raises(RecipeError, match="key 'data_mixture'.*token shards"):
        load_data(DataArguments(data_dir=str(packed_corpus), data_mixture={"text": 1.0}), seed=1)


def test_pretraining_on_a_mixture_records_the_shares_it_trained_on(token_shards, tmp_path):
    weights = {"web": 0.25, "books": 0.75}
    recipe = write_recipe(
        tmp_path / "recipe.yaml", token_shards, tmp_path / "out", data_mixture=weights, max_steps=25, eval_strategy="no"
    )
    run(pretrain_command([str(recipe)]))
    info = json.loads((tmp_path / "out" / "run_info.json").read_text())
    assert info["train_tokens"] == 25 * 4 * 64
    mixture = info["data_mixture"]
    assert {tag: m["weight"] for tag, m in mixture.items()} == weights
    assert all(abs(mixture[tag]["share_of_blocks"] - w) <= 0.01 for tag, w in weights.items()), mixture
    from hfscratch.hub.card import write_model_card

    card = write_model_card(tmp_path / "out", repo_id="my-org/mixed").read_text()
    assert "mixture chosen at load time by the pretraining recipe's data_mixture" in card
    for tag, weight in weights.items():
        share = f"{mixture[tag]['share_of_blocks']:.1%}"
        assert any(row.startswith(f"| {tag} |") and f"| {weight:.3g} | {share} |" in row for row in card.splitlines())
