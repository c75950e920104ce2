"""`hfscratch tokenize` end to end on small corpora: outputs, round trip, exactly-once packing, split, mixture."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import load_from_disk
from tokenization_helpers import UNICODE_SAMPLES, make_documents, step_argv, write_curated
from transformers import AutoTokenizer, DataCollatorForLanguageModeling

from hfscratch.tokenization.cli import main
from hfscratch.tokenization.packing import is_validation


def documents_in_blocks(blocks: list[list[int]], tokenizer) -> list[str]:
    """Decode the concatenated blocks and cut at EOS: the documents, in packing order."""
    stream = [t for block in blocks for t in block if t != tokenizer.pad_token_id]
    texts, start = [], 0
    for end in (i for i, t in enumerate(stream) if t == tokenizer.eos_token_id):
        texts.append(tokenizer.decode(stream[start:end]))
        start = end + 1
    assert start == len(stream), "the stream must end with a document's EOS"
    return texts


@pytest.fixture(scope="module")
def unicode_run(tmp_path_factory) -> tuple[Path, list[dict]]:
    """One run on a two-source corpus that mixes plain and Unicode-heavy documents."""
    root = tmp_path_factory.mktemp("unicode")
    records = make_documents("web", 150, seed=1) + make_documents("books", 100, seed=2)
    records += [
        {"text": text * (1 + i % 3), "id": f"uni-{i}", "metadata": {"source": "web"}}
        for i, text in enumerate(UNICODE_SAMPLES * 3)
    ]
    corpus = write_curated(root / "curated", records)
    assert main(step_argv(corpus, root / "out")) == 0
    return root / "out", records


def test_outputs_load_offline_with_the_standard_classes(unicode_run):
    out, _ = unicode_run
    tokenizer = AutoTokenizer.from_pretrained(out / "tokenizer")
    assert tokenizer.is_fast
    assert [tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token, tokenizer.unk_token] == [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|pad|>",
        "<|unk|>",
    ]
    packed = load_from_disk(str(out / "packed"))
    assert set(packed) == {"train", "validation"}
    for split in packed.values():
        assert split.column_names == ["input_ids"]
        assert {len(ids) for ids in split["input_ids"]} == {32}
    stats = json.loads((out / "stats.json").read_text())
    assert set(stats["sources"]) == {"web", "books"}
    assert stats["sources"]["web"]["characters_per_token"] > 1.5  # the BPE merges compress
    assert (out / "doc_lengths.png").stat().st_size > 10_000
    assert not list(out.glob(".cache-*")), "the temporary Arrow files must be removed"


def test_round_trip_gives_back_every_document_exactly(unicode_run):
    out, records = unicode_run
    tokenizer = AutoTokenizer.from_pretrained(out / "tokenizer")
    packed = load_from_disk(str(out / "packed"))
    decoded = documents_in_blocks(packed["train"]["input_ids"], tokenizer)
    decoded += documents_in_blocks(packed["validation"]["input_ids"], tokenizer)
    assert Counter(decoded) == Counter(r["text"] for r in records)
    assert set(UNICODE_SAMPLES) <= set(decoded)


def test_every_training_token_is_in_exactly_one_block(unicode_run):
    out, records = unicode_run
    tokenizer = AutoTokenizer.from_pretrained(out / "tokenizer")
    packed = load_from_disk(str(out / "packed"))
    train_texts = [r["text"] for r in records if not is_validation(r["id"], 0.2)]
    assert Counter(documents_in_blocks(packed["train"]["input_ids"], tokenizer)) == Counter(train_texts)

    stats = json.loads((out / "stats.json").read_text())
    expected_tokens = sum(
        len(tokenizer(t, add_special_tokens=False, split_special_tokens=True).input_ids) + 1 for t in train_texts
    )
    blocks = np.array(packed["train"]["input_ids"])
    assert stats["train"]["tokens"] == expected_tokens == (blocks != tokenizer.pad_token_id).sum()
    assert stats["train"]["blocks"] * 32 == expected_tokens + stats["train"]["padding_tokens"]
    assert (blocks[:-1] != tokenizer.pad_token_id).all(), "only the last block may hold padding"


def test_the_lm_collator_masks_the_padding_of_the_last_block(unicode_run):
    out, _ = unicode_run
    tokenizer = AutoTokenizer.from_pretrained(out / "tokenizer")
    last = load_from_disk(str(out / "packed"))["train"][-1]
    batch = DataCollatorForLanguageModeling(tokenizer, mlm=False)([last])
    padding = np.array(last["input_ids"]) == tokenizer.pad_token_id
    assert padding.any()
    assert (batch["labels"][0].numpy()[padding] == -100).all()
    assert (batch["labels"][0].numpy()[~padding] == np.array(last["input_ids"])[~padding]).all()


def test_split_is_by_document_and_identical_across_runs(unicode_run, tmp_path):
    out, records = unicode_run
    corpus = out.parent / "curated"
    assert main(step_argv(corpus, tmp_path / "again")) == 0
    first, second = load_from_disk(str(out / "packed")), load_from_disk(str(tmp_path / "again" / "packed"))
    for split in ("train", "validation"):
        assert first[split]["input_ids"] == second[split]["input_ids"]
    held_out = [r for r in records if is_validation(r["id"], 0.2)]
    assert 0.1 < len(held_out) / len(records) < 0.3
    stats = json.loads((out / "stats.json").read_text())
    assert stats["validation"]["documents"] == len(held_out)


def test_mixture_weights_give_the_requested_token_shares(tmp_path):
    records = (
        make_documents("web", 300, seed=3) + make_documents("code", 200, seed=4) + make_documents("books", 200, seed=5)
    )
    corpus = write_curated(tmp_path / "curated", records, weights={"web": 0.5, "books": 3.0})
    recipe = tmp_path / "mix.yaml"
    recipe.write_text("mixture: {code: 2.0}\n")  # code from the recipe; web and books from stats.json
    assert main([str(recipe), *step_argv(corpus, tmp_path / "out", validation_fraction=0.1, last_block="drop")]) == 0
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    sources = stats["sources"]
    assert {tag: s["weight"] for tag, s in sources.items()} == {"web": 0.5, "code": 2.0, "books": 3.0}
    natural = {tag: s["train_tokens"] for tag, s in sources.items()}
    total = sum(sources[tag]["weight"] * natural[tag] for tag in sources)
    for tag, source in sources.items():
        requested = source["weight"] * natural[tag] / total
        assert source["requested_share"] == pytest.approx(requested, rel=1e-4)
        assert source["realised_share"] == pytest.approx(requested, rel=0.01), tag
    assert sources["code"]["epoch_tokens"] == 2 * natural["code"]  # whole weights repeat every document
    assert stats["train"]["tokens"] == sum(s["epoch_tokens"] for s in sources.values())
    assert stats["train"]["blocks"] * 32 == stats["train"]["tokens"] - stats["train"]["dropped_tokens"]


@pytest.mark.parametrize("layout", ["parquet", "txt-folder", "jsonl-file"])
def test_reads_parquet_text_folders_and_single_files(tmp_path, layout):
    records = make_documents("alpha", 40, seed=6) + make_documents("beta", 40, seed=7)
    if layout == "parquet":
        (tmp_path / "curated" / "documents").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(records), tmp_path / "curated" / "documents" / "000.parquet")
        corpus = tmp_path / "curated"
    elif layout == "txt-folder":  # one source per file, one document per paragraph
        corpus = tmp_path / "texts"
        corpus.mkdir()
        for tag in ("alpha", "beta"):
            texts = [r["text"] for r in records if r["metadata"]["source"] == tag]
            (corpus / f"{tag}.txt").write_text("\n\n".join(texts), encoding="utf-8")
    else:  # no source tags: the file stem is the tag
        corpus = tmp_path / "notes.jsonl"
        corpus.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in records))
    assert main(step_argv(corpus, tmp_path / "out")) == 0
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    expected = {"alpha": 40, "beta": 40} if layout != "jsonl-file" else {"notes": 80}
    assert {tag: s["documents"] for tag, s in stats["sources"].items()} == expected


def test_existing_tokenizer_is_used_as_is_with_an_inline_chat_template(unicode_run, tmp_path):
    out, _ = unicode_run
    corpus = write_curated(tmp_path / "curated", make_documents("web", 30, seed=8))
    template = "{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}"
    argv = step_argv(corpus, tmp_path / "out", tokenizer=out / "tokenizer", vocab_size=10, chat_template=template)
    assert main(argv) == 0  # vocab_size is not checked: nothing is trained
    reused = json.loads((tmp_path / "out" / "tokenizer" / "tokenizer.json").read_text())
    assert reused["model"] == json.loads((out / "tokenizer" / "tokenizer.json").read_text())["model"]
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out" / "tokenizer")
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False) == "hi<|end_of_text|>"


def test_chat_template_is_saved_with_the_tokenizer(tmp_path):
    corpus = write_curated(tmp_path / "curated", make_documents("web", 30, seed=9))
    template = tmp_path / "chat.jinja"
    template.write_text(
        "{% for m in messages %}<|begin_of_text|>{{ m.role }}: {{ m.content }}<|end_of_text|>{% endfor %}"
    )
    assert main(step_argv(corpus, tmp_path / "out", chat_template=template)) == 0
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out" / "tokenizer")
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert text == "<|begin_of_text|>user: hi<|end_of_text|>"


def test_unigram_tokenizer_trains_and_loads(tmp_path):
    corpus = write_curated(tmp_path / "curated", make_documents("web", 60, seed=10))
    assert main(step_argv(corpus, tmp_path / "out", tokenizer_type="unigram", vocab_size=300)) == 0
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out" / "tokenizer")
    assert tokenizer.backend_tokenizer.model.__class__.__name__ == "Unigram"
    text = "the model reads tokens"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False).input_ids) == text


def test_large_outputs_are_saved_in_shards_that_load_as_one_dataset(tmp_path):
    corpus = write_curated(tmp_path / "curated", make_documents("web", 200, seed=11))
    assert main(step_argv(corpus, tmp_path / "out", max_shard_size="8KB", validation_fraction=0.0)) == 0
    shards = sorted((tmp_path / "out" / "packed" / "train").glob("*.arrow"))
    train = load_from_disk(str(tmp_path / "out" / "packed"))["train"]
    assert len(shards) == math.ceil(train.data.nbytes / 8192) > 1
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert len(train) == stats["train"]["blocks"]
    assert len(load_from_disk(str(tmp_path / "out" / "packed"))["validation"]) == 0
