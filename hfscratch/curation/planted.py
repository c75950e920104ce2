"""Planted duplicate sets: real prose with exact and near copies whose ground truth is known.

De-duplication is measured, not assumed: `planted_set(documents)` turns distinct documents into groups of an
original and one copy of a known kind, and `score_dedup` says, from the ids that survived, how many copies of
each kind were removed and how many distinct documents were lost with them. The tests build the set from one
corpus (Shakespeare), the recipe's MinHash settings were tuned on another (the standard library's reference
topics), and `benchmarks/near_dedup.py` prints both.

Kinds of copy, one per group, in turn:

    distinct     no copy: the original must survive
    exact        the same text
    words        about 3% of the words replaced by other words of the corpus
    swapped      paragraphs in another order
    boilerplate  a site header and footer around the text
    mixed        all three of the above
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

KINDS = ("distinct", "exact", "words", "swapped", "boilerplate", "mixed")
NEAR_KINDS = ("words", "swapped", "boilerplate", "mixed")
BOILERPLATE_HEADER = "Home | Products | Blog | About us | Contact\nSign in to your account to continue."
BOILERPLATE_FOOTER = "Copyright 2024 Example Media Group. All rights reserved. Privacy policy | Terms of use"
_WORDS = re.compile(r"\w+")


def shingle_set(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word n-grams of the lower-cased words: what "sharing text" means for choosing distinct documents."""
    words = _WORDS.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def prose_chunks(text: str, target_chars: int = 2500, min_paragraphs: int = 4) -> list[str]:
    """A long text cut at paragraph breaks (blank lines) into documents of about `target_chars`."""
    chunks, current, size = [], [], 0
    for paragraph in (p.strip() for p in text.split("\n\n")):
        if not paragraph:
            continue
        current.append(paragraph)
        size += len(paragraph) + 2
        if size >= target_chars and len(current) >= min_paragraphs:
            chunks.append("\n\n".join(current))
            current, size = [], 0
    return chunks


def distinct_documents(candidates: Iterable[str], max_overlap: float = 0.05, min_paragraphs: int = 4) -> list[str]:
    """The candidates that share at most `max_overlap` of their 5-word shingles with every one kept before
    (overlap relative to the smaller set), and have paragraphs to reorder: really different documents."""
    kept: list[str] = []
    index: dict[tuple[str, ...], list[int]] = {}  # shingle -> the kept documents that have it
    kept_shingles: list[set] = []
    for text in candidates:
        if text.count("\n\n") + 1 < min_paragraphs:
            continue
        shingles = shingle_set(text)
        if not shingles:
            continue
        shared = Counter(i for s in shingles for i in index.get(s, ()))
        if any(n / min(len(shingles), len(kept_shingles[i])) > max_overlap for i, n in shared.items()):
            continue
        for s in shingles:
            index.setdefault(s, []).append(len(kept))
        kept_shingles.append(shingles)
        kept.append(text)
    return kept


def reference_topics() -> list[str]:
    """The standard library's reference topics (`pydoc_data.topics`), cut into distinct documents: the corpus
    the MinHash settings were tuned on."""
    from pydoc_data.topics import topics

    return distinct_documents(prose_chunks("\n\n".join(text for _, text in sorted(topics.items()))))


def text_file_documents(path: str) -> list[str]:
    """A long text file (a book, a play) cut into distinct documents."""
    with open(path, encoding="utf-8") as f:
        return distinct_documents(prose_chunks(f.read()))


def replace_words(text: str, rng: random.Random, vocabulary: list[str], fraction: float = 0.03) -> str:
    """Replace `fraction` of the words (whitespace-separated, line breaks kept) by words of `vocabulary`."""
    tokens = re.split(r"(\s+)", text)
    positions = [i for i, t in enumerate(tokens) if t and not t.isspace()]
    for i in rng.sample(positions, max(1, round(fraction * len(positions)))):
        tokens[i] = rng.choice(vocabulary)
    return "".join(tokens)


def swap_paragraphs(text: str, rng: random.Random) -> str:
    """The same paragraphs in another order."""
    paragraphs = text.split("\n\n")
    order = list(range(len(paragraphs)))
    while order == sorted(order):
        rng.shuffle(order)
    return "\n\n".join(paragraphs[i] for i in order)


def add_boilerplate(text: str) -> str:
    return f"{BOILERPLATE_HEADER}\n\n{text}\n\n{BOILERPLATE_FOOTER}"


def make_copy(kind: str, text: str, rng: random.Random, vocabulary: list[str]) -> str | None:
    if kind == "distinct":
        return None
    if kind == "exact":
        return text
    if kind == "words":
        return replace_words(text, rng, vocabulary)
    if kind == "swapped":
        return swap_paragraphs(text, rng)
    if kind == "boilerplate":
        return add_boilerplate(text)
    return add_boilerplate(swap_paragraphs(replace_words(text, rng, vocabulary), rng))  # mixed


@dataclass
class PlantedSet:
    """Records `{"id", "text"}` in shuffled order, and each group's kind and member ids (original first)."""

    records: list[dict] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)


def planted_set(originals: list[str], seed: int = 0, prefix: str = "doc") -> PlantedSet:
    """One group per original: the original and one copy of kind KINDS[i % 6]."""
    rng = random.Random(seed)
    vocabulary = sorted({w for text in originals for w in _WORDS.findall(text) if len(w) > 2})
    planted = PlantedSet()
    for i, text in enumerate(originals):
        group, kind = f"{prefix}-{i:04d}", KINDS[i % len(KINDS)]
        members = {group: text}
        copy = make_copy(kind, text, rng, vocabulary)
        if copy is not None:
            members[f"{group}/{kind}"] = copy
        planted.groups[group], planted.kinds[group] = list(members), kind
        planted.records += [{"id": k, "text": v} for k, v in members.items()]
    rng.shuffle(planted.records)
    return planted


@dataclass
class DedupScore:
    """What de-duplication did to a planted set: copies removed per kind, and distinct documents lost."""

    removed: dict[str, int]  # kind -> copies removed
    planted: dict[str, int]  # kind -> copies planted
    distinct_removed: int  # groups of which no document survived (a distinct document wrongly removed)
    groups: int

    def recall(self, kind: str) -> float:
        return self.removed[kind] / self.planted[kind] if self.planted[kind] else 1.0

    @property
    def near_recall(self) -> float:
        return sum(self.removed[k] for k in NEAR_KINDS) / max(1, sum(self.planted[k] for k in NEAR_KINDS))

    def table_rows(self) -> list[tuple[str, str, str]]:
        rows = [(k, f"{self.removed[k]}/{self.planted[k]}", f"{self.recall(k):.1%}") for k in KINDS[1:]]
        near_removed, near_planted = (sum(d[k] for k in NEAR_KINDS) for d in (self.removed, self.planted))
        rows.append(("all near copies", f"{near_removed}/{near_planted}", f"{self.near_recall:.1%}"))
        rows.append(("distinct documents removed", f"{self.distinct_removed}/{self.groups}", ""))
        return rows


def score_dedup(planted: PlantedSet, kept_ids: set[str]) -> DedupScore:
    """A group of an original and its copy keeps one document; a copy left beside it is a miss, and a group
    with no survivor lost a distinct document (merged with another group)."""
    removed = dict.fromkeys(KINDS[1:], 0)
    counts = dict.fromkeys(KINDS[1:], 0)
    lost = 0
    for group, members in planted.groups.items():
        kind, survivors = planted.kinds[group], sum(m in kept_ids for m in members)
        lost += survivors == 0
        if kind != "distinct":
            counts[kind] += 1
            removed[kind] += survivors <= 1
    return DedupScore(removed=removed, planted=counts, distinct_removed=lost, groups=len(planted.groups))
