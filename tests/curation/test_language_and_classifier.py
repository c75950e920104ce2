"""Language identification and the quality classifier, on labelled text every machine has."""

import json
import random

from curation_corpora import (
    english_documents,
    other_language_documents,
    read_output,
    spam,
    word_salad,
    write_jsonl,
)

from hfscratch.curation.classifier import ClassifierArguments, train_classifier


def test_language_filter_removes_other_languages_and_keeps_english(tmp_path, curate):
    english = english_documents(min_chars=300, max_chars=100_000, max_overlap=1.0)
    others = other_language_documents()
    records = [{"id": f"en/{k}", "text": v} for k, v in english.items()]
    records += [{"id": f"xx/{k}", "text": v} for k, v in others.items()]
    out, _ = curate(
        [{"type": "jsonl", "path": str(write_jsonl(records, tmp_path / "mixed.jsonl"))}], language_filter=True
    )
    kept = {r["id"] for r in read_output(out)}
    english_removed = sum(f"en/{k}" not in kept for k in english) / len(english)
    others_removed = sum(f"xx/{k}" not in kept for k in others) / len(others)
    print(f"removed: English {english_removed:.1%} of {len(english)}, others {others_removed:.1%} of {len(others)}")
    assert others_removed >= 0.95
    assert english_removed < 0.02
    for record in read_output(out):
        assert record["metadata"]["language"] == "en" and record["metadata"]["language_score"] >= 0.65


def test_classifier_trains_and_reaches_its_held_out_accuracy(tmp_path, curate):
    """Reference documentation against a raw pool of keyword spam and word salad."""
    rng = random.Random(0)
    english = list(english_documents(min_chars=300, max_chars=100_000, max_overlap=1.0).values())
    positive, negative = tmp_path / "positive", tmp_path / "negative"
    positive.mkdir()
    negative.mkdir()
    for i, text in enumerate(english):
        (positive / f"{i}.txt").write_text(text)
        (negative / f"salad-{i}.txt").write_text(word_salad(text, rng))
        (negative / f"spam-{i}.txt").write_text(spam(rng))
    result = train_classifier(
        ClassifierArguments(positive=str(positive), negative=str(negative), output=str(tmp_path / "quality.bin"))
    )
    print(json.dumps(result))
    assert result["test_examples"] >= 60 and result["test_accuracy"] >= 0.9

    # The pipeline applies it: unseen reference text passes, unseen spam does not.
    from pydoc_data.topics import topics

    unseen = [t for k, t in sorted(topics.items()) if 300 <= len(t) and t not in english][:20]
    records = [{"id": f"good/{i}", "text": t} for i, t in enumerate(unseen)]
    records += [{"id": f"spam/{i}", "text": spam(rng)} for i in range(20)]
    path = write_jsonl(records, tmp_path / "unseen.jsonl")
    out, stats = curate([{"type": "jsonl", "path": str(path)}], quality_classifier=result["model"])
    kept = {r["id"] for r in read_output(out)}
    assert sum(k.startswith("good/") for k in kept) >= 0.8 * len(unseen)
    assert not any(k.startswith("spam/") for k in kept)
    assert any("classifier" in row["step"].lower() for row in stats["funnel"])
