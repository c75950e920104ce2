"""Bad input is one clear `RecipeError` each (the CLI prints it and exits 2), raised before any long work."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from tokenization_helpers import make_documents, step_argv, write_curated

from hfscratch.core.recipes import RecipeError, parse_recipe
from hfscratch.tokenization.arguments import TokenizeArguments
from hfscratch.tokenization.cli import main


@pytest.fixture
def corpus(tmp_path):
    return write_curated(tmp_path / "curated", make_documents("web", 20, seed=0))


def fails(argv: list[str], match: str, out=None) -> None:
    with pytest.raises(RecipeError, match=match) as error:
        main(argv)
    assert "\n" not in str(error.value)
    if out is not None:
        assert not (out / "tokenizer").exists() and not (out / "packed").exists()


def test_empty_corpus(tmp_path):
    (tmp_path / "none" / "documents").mkdir(parents=True)
    fails(step_argv(tmp_path / "none", tmp_path / "out"), r"empty corpus, .*documents holds no document files")
    (tmp_path / "blank" / "documents").mkdir(parents=True)
    with gzip.open(tmp_path / "blank" / "documents" / "00000.jsonl.gz", "wt") as f:
        f.write(json.dumps({"text": "  \n", "id": "0", "metadata": {"source": "web"}}) + "\n")
    fails(step_argv(tmp_path / "blank", tmp_path / "out"), r"empty corpus, no non-empty documents", tmp_path / "out")


def test_missing_corpus(tmp_path):
    fails(step_argv(tmp_path / "nowhere", tmp_path / "out"), r"key 'corpus': .*nowhere does not exist")


def test_vocabulary_smaller_than_bytes_plus_specials(corpus, tmp_path):
    fails(step_argv(corpus, tmp_path / "out", vocab_size=259), r"'vocab_size' is 259, .*byte alphabet \(256\) plus 4")


def test_block_size_larger_than_the_model_positions(corpus, tmp_path):
    argv = step_argv(corpus, tmp_path / "out", block_size=2048, max_position_embeddings=1024)
    fails(argv, r"'block_size' is 2048, larger than the model's max_position_embeddings \(1024\)", tmp_path / "out")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "hfscratch", "max_position_embeddings": 256}))
    argv = step_argv(corpus, tmp_path / "out", block_size=512, model_config=model)
    fails(argv, r"'block_size' is 512, larger than the model's max_position_embeddings \(256\)", tmp_path / "out")


def test_missing_tokenizer(corpus, tmp_path):
    fails(step_argv(corpus, tmp_path / "out", tokenizer=tmp_path / "no-tokenizer"), r"key 'tokenizer': cannot load")


def test_unknown_benchmark(corpus, tmp_path):
    argv = step_argv(corpus, tmp_path / "out", decontaminate="report", benchmarks="arc", benchmarks_dir=tmp_path)
    fails(argv, r"key 'benchmarks': unknown \['arc'\]; choose from arc_easy", tmp_path / "out")


@pytest.mark.parametrize("recipe", sorted((Path(__file__).parents[2] / "recipes" / "tokenize").glob("*.yaml")))
def test_shipped_recipes_parse(recipe):
    (args,) = parse_recipe([TokenizeArguments], [str(recipe)], prog="hfscratch tokenize")
    assert args.corpus and args.block_size > 0
