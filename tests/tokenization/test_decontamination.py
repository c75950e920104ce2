"""Decontamination: planted benchmark items are found, a clean corpus is not flagged, the step removes them."""

from __future__ import annotations

import json
import pydoc_data.topics
import random

import pytest
from datasets import Dataset, load_from_disk
from tokenization_helpers import make_documents, step_argv, write_curated
from transformers import AutoTokenizer

from hfscratch.tokenization.cli import main
from hfscratch.tokenization.decontamination import (
    BENCHMARKS,
    WORD,
    NgramIndex,
    flag_documents,
    load_benchmark_items,
    scan,
)

# Items in the style of the benchmarks: long ones are matched by 13-grams, short ones (8-12 words) whole.
QUESTIONS = [
    "Which of these processes is most responsible for the weathering of granite boulders in a desert climate?",
    "A student mixes baking soda and vinegar in a sealed bag and observes that the bag inflates quickly. "
    "Which gas was most likely produced by the reaction?",
    "What happens to the average kinetic energy of water molecules when ice melts at constant pressure?",
    "Why do the planets of the solar system orbit the sun in nearly the same plane?",
    "What is the smallest positive integer that is divisible by every integer from one to ten?",
    "Who was the first person to walk on the surface of the moon?",
    "What did the ancient Romans use to sweeten their wine?",
    "A man is standing on a ladder painting the side of a house. He dips the brush into the can and then",
]
SURROUNDINGS = "Here is some unrelated prose about gardening, the weather and the price of bread in the market."


def lightly_edited(text: str, rng: random.Random) -> str:
    """What a scraped copy might look like: other case and punctuation, and one word changed mid-way."""
    words = text.replace("?", "").replace(",", ";").split()
    middle = len(words) // 2
    words[middle] = "something"
    return " ".join(words).upper() if rng.random() < 0.5 else " ".join(words).lower()


def plant(items: list[str], seed: int) -> tuple[list[str], list[str]]:
    """Documents holding each item verbatim, and documents holding a lightly edited copy."""
    rng = random.Random(seed)
    verbatim = [f"{SURROUNDINGS} {item} {SURROUNDINGS}" for item in items]
    edited = [f"{SURROUNDINGS} {lightly_edited(item, rng)} {SURROUNDINGS}" for item in items]
    return verbatim, edited


def recall(report, benchmark: str, documents: int) -> float:
    return report.to_dict()["benchmarks"][benchmark]["documents_flagged"] / documents


def test_planted_items_found_verbatim_and_case_or_punctuation_changes_ignored():
    index = NgramIndex.build({"quiz": QUESTIONS})
    verbatim, _ = plant(QUESTIONS, seed=0)
    restyled = [doc.upper().replace("?", " ?!") for doc in verbatim]
    for documents in (verbatim, restyled):
        report = scan(documents, index).to_dict()["benchmarks"]["quiz"]
        assert report["documents_flagged"] == len(QUESTIONS)
        assert report["items_found"] == len(QUESTIONS)
        assert report["document_ids"] == [str(i) for i in range(len(QUESTIONS))]


def test_one_changed_word_is_found_only_where_13_words_stay_intact():
    index = NgramIndex.build({"quiz": QUESTIONS})
    _, edited = plant(QUESTIONS, seed=0)
    found = [bool(index.matches(doc)) for doc in edited]
    long_enough = [len(q.split()) // 2 >= 13 or len(q.split()) - len(q.split()) // 2 - 1 >= 13 for q in QUESTIONS]
    assert found == long_enough
    assert 0 < sum(found) < len(QUESTIONS)


def test_clean_corpus_and_short_items_are_not_flagged():
    index = NgramIndex.build({"quiz": QUESTIONS, "tiny": ["Is the sky blue?", "What is two plus two?"]})
    clean = [r["text"] for r in make_documents("web", 300, seed=0)] + [SURROUNDINGS * 3]
    assert scan(clean, index).to_dict()["documents_flagged"] == 0
    assert index.unmatchable_items == {"quiz": 0, "tiny": 2}  # under 8 words: too short to tell from chance
    assert not index.matches("Is the sky blue? What is two plus two?")


def test_flag_documents_on_a_dataset_whose_first_batches_are_clean():
    texts = [SURROUNDINGS] * 5 + [f"{SURROUNDINGS} {QUESTIONS[0]}", SURROUNDINGS, QUESTIONS[3]]
    documents = Dataset.from_dict({"text": texts, "id": [f"d{i}" for i in range(len(texts))]})
    flagged, report = flag_documents(documents, NgramIndex.build({"quiz": QUESTIONS}), batch_size=2)
    assert [bool(c) for c in flagged["contamination"]] == [False] * 5 + [True, False, True]
    assert flagged["contamination"][5] == [{"benchmark": "quiz", "ngram_hits": 5, "items": [0]}]
    assert report.to_dict()["benchmarks"]["quiz"]["document_ids"] == ["d5", "d7"]
    assert report.to_dict()["documents"] == len(texts)


def test_step_reports_and_removes_contaminated_documents(tmp_path):
    mirror = tmp_path / "benchmarks" / BENCHMARKS["truthfulqa"].path
    (mirror / "multiple_choice").mkdir(parents=True)
    (mirror / "README.md").write_text(
        "---\nconfigs:\n- config_name: multiple_choice\n  data_files:\n  - split: validation\n"
        "    path: multiple_choice/validation.jsonl\n---\n"
    )
    (mirror / "multiple_choice" / "validation.jsonl").write_text(
        "".join(json.dumps({"question": q}) + "\n" for q in QUESTIONS)
    )
    records = make_documents("web", 60, seed=1)
    for i in (5, 17, 42):
        records[i]["text"] += " " + QUESTIONS[i % len(QUESTIONS)]
    corpus = write_curated(tmp_path / "curated", records)
    options = {"decontaminate": "remove", "benchmarks": "truthfulqa", "benchmarks_dir": tmp_path / "benchmarks"}
    assert main(step_argv(corpus, tmp_path / "out", validation_fraction=0.0, **options)) == 0

    report = json.loads((tmp_path / "out" / "stats.json").read_text())["decontamination"]
    assert report["action"] == "remove"
    assert report["benchmarks"]["truthfulqa"]["documents_flagged"] == 3
    assert sorted(report["benchmarks"]["truthfulqa"]["document_ids"]) == ["web-17", "web-42", "web-5"]
    assert json.loads((tmp_path / "out" / "decontamination.json").read_text()) == report
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out" / "tokenizer")
    packed_text = tokenizer.decode(
        [t for block in load_from_disk(str(tmp_path / "out" / "packed"))["train"]["input_ids"] for t in block]
    )
    assert not any(q in packed_text for q in QUESTIONS)
    assert records[6]["text"] in packed_text


@pytest.mark.slow
def test_real_benchmark_items_planted_in_a_corpus(shared_benchmarks, capsys):
    """Every benchmark of the mirrors: 100% recall on verbatim items, the rate on edited ones, no false flags."""
    items = load_benchmark_items(list(BENCHMARKS), str(shared_benchmarks))
    index = NgramIndex.build(items)
    rates = {}
    for name, texts in items.items():
        matchable = [text for text in texts if len(WORD.findall(text)) >= 8]  # shorter ones are not checked
        sample = random.Random(0).sample(matchable, 200)
        verbatim, edited = plant(sample, seed=1)
        assert recall(scan(verbatim, index), name, len(sample)) == 1.0, name
        rates[name] = recall(scan(edited, index), name, len(sample))
    clean = [r["text"] for r in make_documents("web", 300, seed=2)] + list(pydoc_data.topics.topics.values())
    assert scan(clean, index).to_dict()["documents_flagged"] == 0  # the Python reference: real, clean prose
    with capsys.disabled():
        print("\nrecall on lightly edited items (case, punctuation, one word changed):", rates)
