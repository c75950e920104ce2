"""Corpora with planted ground truth for the curation tests, built from text every machine has: the
standard library's reference topics (English) and spaCy's example sentences (66 other languages)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import random
import re
from pathlib import Path

from hfscratch.curation.planted import add_boilerplate
from hfscratch.curation.planted import swap_paragraphs as reorder_paragraphs


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def english_documents(min_chars: int = 800, max_chars: int = 12000, max_overlap: float = 0.1) -> dict[str, str]:
    """Reference topics of the standard library that share (almost) no 5-grams: truly distinct documents."""
    from pydoc_data.topics import topics

    chosen: dict[str, str] = {}
    kept_shingles: list[set] = []
    for name in sorted(topics):
        text = topics[name].strip()
        if not min_chars <= len(text) <= max_chars or text.count("\n\n") < 3:
            continue
        s = shingles(text)
        if all(len(s & k) / max(1, min(len(s), len(k))) < max_overlap for k in kept_shingles):
            chosen[f"topic-{name}"] = text
            kept_shingles.append(s)
    return chosen


def change_words(text: str, rng: random.Random, n: int = 3) -> str:
    words = text.split(" ")
    for i in rng.sample(range(len(words)), n):
        words[i] = rng.choice(["quickly", "however", "always", "never", "many", "several"])
    return " ".join(words)


def dedup_corpus(seed: int = 0) -> tuple[list[dict], dict[str, list[str]]]:
    """Distinct documents, exact copies (also differing in case and spacing) and near duplicates.

    Returns the records and the clusters: each cluster's first id is its original, the rest are copies.
    """
    rng = random.Random(seed)
    originals = english_documents()
    records, clusters = [], {}
    for i, (doc_id, text) in enumerate(originals.items()):
        variants = {doc_id: text}
        kind = i % 4
        if kind == 0:
            variants[f"{doc_id}/exact"] = text
            variants[f"{doc_id}/exact-normalised"] = re.sub(r"[ ]+", "  ", text.upper())
        elif kind == 1:
            variants[f"{doc_id}/words-changed"] = change_words(text, rng)
        elif kind == 2:
            variants[f"{doc_id}/reordered"] = reorder_paragraphs(text, rng)
        else:
            variants[f"{doc_id}/boilerplate"] = add_boilerplate(text)
        clusters[doc_id] = list(variants)
        records += [{"id": k, "text": v} for k, v in variants.items()]
    rng.shuffle(records)
    return records, clusters


def other_language_documents() -> dict[str, str]:
    """spaCy's example sentences, one document per language (two where it has many sentences)."""
    import spacy.lang

    docs = {}
    for module in pkgutil.iter_modules(spacy.lang.__path__):
        if module.name in ("en", "xx"):
            continue
        try:
            sentences = importlib.import_module(f"spacy.lang.{module.name}.examples").sentences
        except (ImportError, AttributeError):
            continue
        halves = [sentences] if len(sentences) < 10 else [sentences[::2], sentences[1::2]]
        for i, part in enumerate(halves):
            docs[f"{module.name}-{i}"] = " ".join(part)
    return docs


SPAM_PRODUCTS = [
    "phone case",
    "running shoes",
    "vpn",
    "casino bonus",
    "weight loss pills",
    "crypto wallet",
    "car insurance",
]
SPAM_TEMPLATES = [
    "Best {p} deals {y}! Buy {p} online at the lowest price.",
    "Click here to get your free {p} now!!!",
    "Top 10 {p} reviews - you won't believe number 7.",
    "Limited offer: {p} with 90% discount, free shipping worldwide.",
    "{p} {p} {p} cheap {p} best {p} online",
    "Sign up today and win a {p}. Terms apply.",
    "Home | Shop | {p} | Contact | Login",
]


def spam(rng: random.Random) -> str:
    """Templated keyword spam, as found in raw web crawls."""
    return " ".join(
        rng.choice(SPAM_TEMPLATES).format(p=rng.choice(SPAM_PRODUCTS), y=rng.randint(2015, 2026))
        for _ in range(rng.randint(8, 30))
    )


def word_salad(text: str, rng: random.Random) -> str:
    """The words of a real document in random order, like broken extraction or generated filler."""
    words = text.split()
    rng.shuffle(words)
    return " ".join(words)


def write_jsonl(records: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def read_output(run_dir: Path) -> list[dict]:
    return [json.loads(line) for f in sorted((run_dir / "documents").glob("*.jsonl")) for line in f.open()]


# Every optional curation step off: tests switch on only the steps they test.
ALL_STEPS_OFF = {
    "url_filter": False,
    "language_filter": False,
    "gopher_repetition": False,
    "gopher_quality": False,
    "c4_quality": False,
    "fineweb_quality": False,
    "exact_dedup": False,
    "minhash_dedup": False,
    "pii_redaction": False,
}
