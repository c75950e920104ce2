"""Curation throughput: MB/s and documents/s per core, for each step alone and for the default recipe.

The fixed corpus is this environment's documentation (the default source) written once to JSON lines, so
that reading it costs the same for every measurement. Each step runs alone on one core over the whole
corpus; then the full default recipe (`recipes/curate/python-docs.yaml`, reading the JSONL instead of the
environment) runs end to end with datatrove's executor, process start-up and every dedup stage included.

    python benchmarks/curation_throughput.py [--workers 2] [--out runs/bench-curation]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import yaml
from datatrove.data import Document
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)

from hfscratch.core.formatting import format_table
from hfscratch.curation.blocks import LanguageIDFilter, RegexWordTokenizer, normalized_content, redact
from hfscratch.curation.pipeline import CurateArguments, run_curation
from hfscratch.curation.sources import PythonDocsReader

REPO = Path(__file__).resolve().parent.parent


def corpus(path: Path) -> list[Document]:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            for doc_id, _, load in PythonDocsReader().items():
                if text := load():
                    f.write(json.dumps({"id": doc_id, "text": text}) + "\n")
    return [Document(**json.loads(line)) for line in path.open(encoding="utf-8")]


def time_step(name: str, docs: list[Document], fn) -> tuple[str, float, float]:
    """Seconds for `fn` over every document on this core; returns (name, MB/s, documents/s)."""
    start = time.perf_counter()
    for doc in docs:
        fn(doc)
    seconds = time.perf_counter() - start
    megabytes = sum(len(d.text.encode()) for d in docs) / 1e6
    return name, megabytes / seconds, len(docs) / seconds


def minhash_signature(step: MinhashDedupSignature, text: str) -> list[list[int]] | None:
    shingles = step.get_shingles(text)
    return step.get_signature(shingles) if shingles.size else None  # the stage skips docs under n words too


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default="runs/bench-curation")
    args = parser.parse_args()
    out = Path(args.out)
    docs = corpus(out / "corpus.jsonl")
    megabytes = sum(len(d.text.encode()) for d in docs) / 1e6
    print(f"Fixed corpus: {len(docs):,} documents, {megabytes:.2f} MB (this environment's documentation)\n")

    regex, spacy = RegexWordTokenizer(), "en"
    minhash = MinhashDedupSignature(str(out / "sigs"), MinhashConfig(), language=regex)
    rows = [
        time_step("Language ID (py3langid)", docs, LanguageIDFilter(["en"]).filter),
        time_step("Gopher repetition, regex words", docs, GopherRepetitionFilter(language=regex).filter),
        time_step("Gopher quality, regex words", docs, GopherQualityFilter(language=regex).filter),
        time_step(
            "C4 quality, regex words", docs, C4QualityFilter(language=regex, filter_no_terminal_punct=False).filter
        ),
        time_step("FineWeb quality, regex words", docs, FineWebQualityFilter(language=regex).filter),
        time_step("Gopher quality, spaCy words", docs, GopherQualityFilter(language=spacy).filter),
        time_step("Exact-dedup normalisation", docs, normalized_content),
        time_step("MinHash signature", docs, lambda d: minhash_signature(minhash, d.text)),
        time_step("PII redaction", docs, lambda d: redact(d.text)),
    ]
    print(
        format_table([(n, f"{mbs:.2f}", f"{dps:,.0f}") for n, mbs, dps in rows], ["step (one core)", "MB/s", "docs/s"])
    )

    recipe = yaml.safe_load((REPO / "recipes" / "curate" / "python-docs.yaml").read_text())
    recipe |= {
        "output_dir": str(out / "run"),
        "sources": [{"type": "jsonl", "path": str(out / "corpus.jsonl"), "tag": "python-docs"}],
        "workers": args.workers,
        "tasks": max(recipe["tasks"], args.workers),
    }
    shutil.rmtree(out / "run", ignore_errors=True)
    start = time.perf_counter()
    stats = run_curation(CurateArguments(**recipe))
    wall = time.perf_counter() - start
    kept = sum(s["documents_kept"] for s in stats["sources"].values())
    print(
        f"\nDefault recipe end to end ({args.workers} workers, {len(stats['stages'])} datatrove stages): "
        f"{wall:.1f} s wall, {megabytes / wall / args.workers:.2f} MB/s and {len(docs) / wall / args.workers:,.0f} "
        f"documents/s per core; {kept:,} of {len(docs):,} documents kept"
    )


if __name__ == "__main__":
    main()
