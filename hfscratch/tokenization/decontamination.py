"""Benchmark decontamination: word n-gram overlap between training documents and benchmark test items.

As in GPT-3 (Brown et al. 2020, appendix C), text is compared as lower-cased words, ignoring punctuation and
whitespace, and a document is contaminated by a benchmark when it shares a 13-gram with one of its test
items. An item shorter than 13 words is matched whole if it has at least `min_item_words` words (GPT-3's
floor of 8, below which matches are mostly chance), so short questions (TruthfulQA, much of MMLU) are not
missed; shorter items are counted as unmatchable. An item is the text the model is prompted with, as
lm-eval's `doc_to_decontamination_query` has it: the question (ARC, MMLU, TruthfulQA) or the context
(HellaSwag).

`NgramIndex.matches(text)` works on any text, and `scan(documents, index)` on any iterable of documents;
`flag_documents(dataset, index)` runs it over a `datasets.Dataset` with `Dataset.map`.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hfscratch.core.recipes import RecipeError

if TYPE_CHECKING:
    from datasets import Dataset

WORD = re.compile(r"\w+")
HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd, so the rolling hash mod 2**64 keeps every word's bits


@dataclass(frozen=True)
class BenchmarkSource:
    path: str  # Hub id, and the folder under a local mirror
    config: str | None
    split: str  # the split lm-eval scores
    field: str  # the prompted text of an item


BENCHMARKS = {
    "arc_easy": BenchmarkSource("allenai/ai2_arc", "ARC-Easy", "test", "question"),
    "arc_challenge": BenchmarkSource("allenai/ai2_arc", "ARC-Challenge", "test", "question"),
    "hellaswag": BenchmarkSource("Rowan/hellaswag", None, "validation", "ctx"),
    "mmlu": BenchmarkSource("cais/mmlu", "all", "test", "question"),
    "truthfulqa": BenchmarkSource("truthfulqa/truthful_qa", "multiple_choice", "validation", "question"),
}


def word_hashes(text: str) -> np.ndarray:
    """One 32-bit hash per lower-cased word (crc32: the same in every process, unlike `hash()`)."""
    return np.fromiter((zlib.crc32(w.encode("utf-8")) for w in WORD.findall(text.lower())), dtype=np.uint64)


def window_hashes(words: np.ndarray, size: int) -> np.ndarray:
    """A 64-bit polynomial hash of every run of `size` consecutive words."""
    count = len(words) - size + 1
    hashes = np.zeros(max(count, 0), dtype=np.uint64)
    for offset in range(size if count > 0 else 0):
        hashes = hashes * HASH_MULTIPLIER + words[offset : offset + count]
    return hashes


@dataclass(frozen=True)
class Match:
    ngram_hits: int  # word windows of the document found in the benchmark
    items: list[int]  # row numbers of the benchmark items they belong to


@dataclass
class NgramIndex:
    """The n-grams of every item of some benchmarks, sorted by hash for a vectorised look-up."""

    benchmarks: list[str]
    hashes: np.ndarray  # sorted uint64
    benchmark_of: np.ndarray  # position in `benchmarks` of each hash's item
    item_of: np.ndarray  # row number of each hash's item in its benchmark
    window_sizes: list[int]  # ngram_size, and the length of each item matched whole
    items: dict[str, int]
    unmatchable_items: dict[str, int]  # shorter than min_item_words

    @classmethod
    def build(cls, items: Mapping[str, Sequence[str]], ngram_size: int = 13, min_item_words: int = 8) -> NgramIndex:
        hashes, benchmark_of, item_of = [], [], []
        window_sizes, unmatchable = {ngram_size}, {}
        for position, (name, texts) in enumerate(items.items()):
            unmatchable[name] = 0
            for row, text in enumerate(texts):
                words = word_hashes(text)
                if len(words) < min_item_words:
                    unmatchable[name] += 1
                    continue
                size = min(ngram_size, len(words))
                window_sizes.add(size)
                hashes.append(window_hashes(words, size))
                benchmark_of.append(np.full(len(hashes[-1]), position, dtype=np.int16))
                item_of.append(np.full(len(hashes[-1]), row, dtype=np.int32))
        flat = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
        order = np.argsort(flat, kind="stable")
        return cls(
            benchmarks=list(items),
            hashes=flat[order],
            benchmark_of=np.concatenate(benchmark_of)[order] if hashes else np.empty(0, dtype=np.int16),
            item_of=np.concatenate(item_of)[order] if hashes else np.empty(0, dtype=np.int32),
            window_sizes=sorted(window_sizes),
            items={name: len(texts) for name, texts in items.items()},
            unmatchable_items=unmatchable,
        )

    def matches(self, text: str) -> dict[str, Match]:
        """The benchmarks whose items share an n-gram with `text` (none: an empty dict)."""
        words = word_hashes(text)
        hits: dict[int, int] = defaultdict(int)
        found: dict[int, set[int]] = defaultdict(set)
        for size in self.window_sizes:
            windows = window_hashes(words, size)
            starts = np.searchsorted(self.hashes, windows, side="left")
            stops = np.searchsorted(self.hashes, windows, side="right")
            for start, stop in zip(starts[stops > starts], stops[stops > starts]):
                benchmarks = set()
                for entry in range(start, stop):  # the same n-gram may occur in several items
                    benchmarks.add(int(self.benchmark_of[entry]))
                    found[int(self.benchmark_of[entry])].add(int(self.item_of[entry]))
                for position in benchmarks:
                    hits[position] += 1
        return {self.benchmarks[p]: Match(hits[p], sorted(found[p])) for p in sorted(hits)}


@dataclass
class BenchmarkReport:
    items: int
    unmatchable_items: int
    documents_flagged: int = 0
    ngram_hits: int = 0
    items_found: set[int] = field(default_factory=set)
    document_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "items": self.items,
            "unmatchable_items": self.unmatchable_items,
            "documents_flagged": self.documents_flagged,
            "ngram_hits": self.ngram_hits,
            "items_found": len(self.items_found),
            "document_ids": self.document_ids,
        }


class ContaminationReport:
    """Per benchmark: documents flagged, n-gram hits, distinct items found."""

    def __init__(self, index: NgramIndex) -> None:
        self.documents = 0
        self.flagged: set[str] = set()
        self.benchmarks = {
            name: BenchmarkReport(index.items[name], index.unmatchable_items[name]) for name in index.benchmarks
        }

    def add(self, document_id: str, matches: Mapping[str, Match]) -> None:
        self.documents += 1
        if matches:
            self.flagged.add(document_id)
        for name, match in matches.items():
            report = self.benchmarks[name]
            report.documents_flagged += 1
            report.ngram_hits += match.ngram_hits
            report.items_found.update(match.items)
            report.document_ids.append(document_id)

    def to_dict(self) -> dict:
        return {
            "documents": self.documents,
            "documents_flagged": len(self.flagged),
            "benchmarks": {name: report.to_dict() for name, report in self.benchmarks.items()},
        }


def scan(documents: Iterable[str], index: NgramIndex) -> ContaminationReport:
    """Check any iterable of texts; documents are identified by their position, as strings."""
    report = ContaminationReport(index)
    for number, text in enumerate(documents):
        report.add(str(number), index.matches(text))
    return report


def load_benchmark_items(names: Sequence[str], benchmarks_dir: str | None) -> dict[str, list[str]]:
    """The prompted text of each test item, from a local mirror in Hub layout or from the Hub."""
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise RecipeError(f"key 'benchmarks': unknown {unknown}; choose from {', '.join(BENCHMARKS)}")
    items = {}
    for name in names:
        source = BENCHMARKS[name]
        location = str(Path(benchmarks_dir) / source.path) if benchmarks_dir else source.path
        from datasets import load_dataset

        try:
            dataset = load_dataset(location, source.config, split=source.split)
        except (OSError, ValueError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise RecipeError(f"key 'benchmarks': cannot load {name} from {location}: {reason}") from None
        items[name] = dataset[source.field]
    return items


def build_benchmark_index(
    names: Sequence[str], benchmarks_dir: str | None, ngram_size: int = 13, min_item_words: int = 8
) -> NgramIndex:
    return NgramIndex.build(load_benchmark_items(names, benchmarks_dir), ngram_size, min_item_words)


def flag_batch(batch: dict[str, list], index: NgramIndex) -> dict[str, list]:
    """`Dataset.map(batched=True)` body: each document's matches, as a list of {benchmark, hits, items}."""
    return {
        "contamination": [
            [{"benchmark": name, "ngram_hits": m.ngram_hits, "items": m.items} for name, m in index.matches(t).items()]
            for t in batch["text"]
        ]
    }


def flag_documents(
    documents: Dataset, index: NgramIndex, num_proc: int | None = None, batch_size: int = 1000
) -> tuple[Dataset, ContaminationReport]:
    """`scan` for a `Dataset` with `id` and `text` columns, in parallel: the dataset with a `contamination`
    column (empty lists for clean documents), and the report."""
    from datasets import Features, List, Value

    # The column this adds. Declared, not inferred: a batch without matches would infer a null type.
    contamination = List({"benchmark": Value("string"), "ngram_hits": Value("int64"), "items": List(Value("int32"))})
    flagged = documents.map(
        flag_batch,
        batched=True,
        batch_size=batch_size,
        num_proc=num_proc,
        features=Features({**documents.features, "contamination": contamination}),
        fn_kwargs={"index": index},
        desc="decontaminate",
    )
    report = ContaminationReport(index)
    for row in flagged.select_columns(["id", "contamination"]):
        report.add(row["id"], {m["benchmark"]: Match(m["ngram_hits"], m["items"]) for m in row["contamination"]})
    return flagged, report
