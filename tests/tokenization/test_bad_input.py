"""Bad input is one clear `RecipeError` each (the CLI prints it and exits 2), raised before any long work."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from tokenization_helpers import make_documents, step_argv, write_curated

from hfscratch.core.artifacts import ArtifactError
from hfscratch.core.recipes import RecipeError, parse_recipe
from hfscratch.tokenization.arguments import TokenizeArguments
from hfscratch.tokenization.artifacts import TokenizeStats
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


@pytest.mark.parametrize(
    "recipe", sorted((Path(__file__).parents[2] / "hfscratch" / "recipes" / "tokenize").glob("*.yaml"))
)
def test_shipped_recipes_parse(recipe):
    (args,) = parse_recipe([TokenizeArguments], [str(recipe)], prog="hfscratch tokenize")
    assert args.corpus and args.block_size > 0


def test_malformed_records_are_skipped_counted_and_named(tmp_path, capsys):
    """A JSONL with a broken line, a non-object line and an empty text tokenizes the rest, and stats.json counts
    each skipped record by reason with FILE:LINE examples (as curation does), instead of a traceback."""
    corpus = tmp_path / "corpus.jsonl"
    good = [json.dumps(r) for r in make_documents("web", 30, seed=3)]
    lines = good[:10] + ['{"text": "cut off in the mid'] + good[10:20] + ["[1, 2]", '{"text": ""}'] + good[20:]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(step_argv(corpus, tmp_path / "out")) == 0
    stats = TokenizeStats.read(tmp_path / "out")
    assert stats.documents == 30
    assert stats.skipped == {"not valid JSON": 1, "not a JSON object": 1, "empty text": 1}
    assert stats.skipped_examples[0].startswith(f"{corpus}:11: not valid JSON")
    assert f"{corpus}:22: not a JSON object" in stats.skipped_examples[1]
    assert "skipped: 1 empty text, 1 not a JSON object, 1 not valid JSON" in capsys.readouterr().out


def test_ids_are_kept_as_given(tmp_path):
    """An id of 0 (falsy) or "" is an id too; only a record without one gets STEM/N."""
    corpus = tmp_path / "docs.jsonl"
    records = make_documents("web", 12, seed=4)
    for record, given in zip(records, [0, "0", "a/b", None]):
        record["id"] = given
    corpus.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    from hfscratch.tokenization.corpus import load_documents

    documents = load_documents(corpus, "paragraph", tmp_path / "cache", 1).documents
    assert documents["id"][:4] == ["0", "0", "a/b", "docs/3"]


def test_rerun_on_finished_output_changes_nothing(corpus, tmp_path):
    """A second run with the same settings leaves every file byte-identical; other settings are refused."""
    out = tmp_path / "out"
    assert main(step_argv(corpus, out)) == 0
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert main(step_argv(corpus, out)) == 0
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before
    fails(step_argv(corpus, out, vocab_size=320), r"key 'out': .* other settings \(vocab_size\); .*--overwrite")
    assert main(step_argv(corpus, out, vocab_size=320, overwrite="true")) == 0
    assert TokenizeStats.read(out).settings["vocab_size"] == 320


def test_stats_is_a_typed_artifact_written_last(corpus, tmp_path):
    out = tmp_path / "out"
    assert main(step_argv(corpus, out)) == 0
    stats = TokenizeStats.read(out)
    assert stats.schema_version == TokenizeStats.SCHEMA_VERSION and stats.train["blocks"] > 0
    newest = max((p for p in out.rglob("*") if p.is_file()), key=lambda p: p.stat().st_mtime_ns)
    assert newest.name == "stats.json"
    data = json.loads((out / "stats.json").read_text())
    data["train_blocks"] = data.pop("train")  # a renamed key is an error that names it, not a silent gap
    (out / "stats.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match=r"stats.json: unknown key 'train_blocks'"):
        TokenizeStats.read(out)
