"""Curation throughput: MB/s and documents/s per core, for each step alone, for the default quality chain and
MinHash stage 1 (datatrove's classes against the kit's faster ones), and for the default recipe.

The fixed corpus is this environment's documentation (the default source) written once to JSON lines, so
that reading it costs the same for every measurement. Each step runs alone on one core over the whole
corpus. Then the default quality chain (language ID, Gopher repetition, Gopher quality, C4, FineWeb, with the
recipe's options) runs as datatrove pipeline steps, documents dropped by one filter never reaching the next:
once with datatrove's filter classes one after the other, once as `build_stages` builds it (blocks.py's
fast subclasses); likewise MinHash stage 1's shingles and signatures with datatrove's
`MinhashDedupSignature` and the kit's `FastMinhashSignature` (dedup.py). Both pairs also check that the old
and the new path decide the same. Last, the full default recipe (`recipes/curate/python-docs.yaml`,
reading the JSONL) runs end to end with datatrove's executor, process start-up and every dedup stage included.

On a shared machine wall time depends on what else runs: every figure is also given per CPU-second of this
process (time.process_time), and old/new measurements alternate, `--repeats` times, keeping each one's best.

    python benchmarks/curation_throughput.py [--workers 2] [--repeats 3] [--skip-steps] [--skip-recipe]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
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
from hfscratch.curation.blocks import (
    FastC4QualityFilter,
    FastFineWebQualityFilter,
    FastGopherQualityFilter,
    FastGopherRepetitionFilter,
    LanguageIDFilter,
    RegexWordTokenizer,
    normalized_content,
    redact,
)
from hfscratch.curation.dedup import FastMinhashSignature
from hfscratch.curation.pipeline import CurateArguments, heuristic_filters, run_curation
from hfscratch.curation.sources import PythonDocsReader

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "recipes" / "curate" / "python-docs.yaml"


def corpus(path: Path) -> list[Document]:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            for doc_id, _, load in PythonDocsReader().items():
                if text := load():
                    f.write(json.dumps({"id": doc_id, "text": text}) + "\n")
    return [Document(**json.loads(line)) for line in path.open(encoding="utf-8")]


def load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def timed(fn: Callable[[], object]) -> tuple[object, float, float]:
    """fn's result, wall seconds and CPU seconds of this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def time_step(name: str, docs: list[Document], fn: Callable) -> tuple[str, str, str, str]:
    """`fn` over every document on this core: (name, MB/s, MB per CPU-second, documents/s)."""
    megabytes = sum(len(d.text.encode()) for d in docs) / 1e6
    _, wall, cpu = timed(lambda: [fn(doc) for doc in docs])
    return name, f"{megabytes / wall:.2f}", f"{megabytes / cpu:.2f}", f"{len(docs) / wall:,.0f}"


def minhash_signature(step: MinhashDedupSignature, text: str) -> list[list[int]] | None:
    shingles = step.get_shingles(text)
    return step.get_signature(shingles) if shingles.size else None  # the stage skips docs under n words too


def copies(docs: list[Document]) -> Iterable[Document]:
    """Fresh documents for each run (C4 rewrites the text, language ID writes metadata)."""
    return (Document(text=d.text, id=d.id) for d in docs)


def run_chain(steps: list, docs: list[Document]) -> tuple[list[tuple[str, str]], list[dict]]:
    """The steps as a datatrove pipeline over the documents: the kept (id, text) and each step's counters."""
    data: Iterable[Document] = copies(docs)
    for step in steps:
        data = step.run(data)
    kept = [(doc.id, doc.text) for doc in data]
    return kept, [step.stats.stats.to_dict() for step in steps]


def compare(
    name: str, old: Callable[[], object], new: Callable[[], object], megabytes: float, repeats: int
) -> list[tuple[str, str, str, str]]:
    """Alternate old and new `repeats` times; each one's best wall and CPU time; their results must agree."""
    best = {"old": [float("inf"), float("inf")], "new": [float("inf"), float("inf")]}
    results = {}
    for _ in range(repeats):
        for label, fn in (("old", old), ("new", new)):
            results[label], wall, cpu = timed(fn)
            best[label] = [min(best[label][0], wall), min(best[label][1], cpu)]
    if results["old"] != results["new"]:
        raise SystemExit(f"{name}: the new path decided differently from datatrove's")
    (old_wall, old_cpu), (new_wall, new_cpu) = best["old"], best["new"]
    return [
        (f"{name}, datatrove", f"{megabytes / old_wall:.2f}", f"{megabytes / old_cpu:.2f}", ""),
        (f"{name}, kit", f"{megabytes / new_wall:.2f}", f"{megabytes / new_cpu:.2f}", f"{old_cpu / new_cpu:.2f}x"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default="runs/bench-curation")
    parser.add_argument("--repeats", type=int, default=3, help="Old/new alternations; the best of each counts.")
    parser.add_argument("--skip-steps", action="store_true", help="No table of steps alone.")
    parser.add_argument("--skip-recipe", action="store_true", help="No end-to-end run of the default recipe.")
    args = parser.parse_args()
    out = Path(args.out)
    docs = corpus(out / "corpus.jsonl")
    megabytes = sum(len(d.text.encode()) for d in docs) / 1e6
    print(f"Fixed corpus: {len(docs):,} documents, {megabytes:.2f} MB (this environment's documentation)")
    print(f"{os.cpu_count()} cores, {load()}\n")
    headers = ["step (one core)", "MB/s", "MB/CPU-s", "docs/s"]

    recipe = yaml.safe_load(RECIPE.read_text())
    options = recipe["filter_options"]
    regex = RegexWordTokenizer()
    minhash_config = MinhashConfig(
        n_grams=recipe["minhash_ngrams"],
        num_buckets=recipe["minhash_buckets"],
        hashes_per_bucket=recipe["minhash_hashes_per_bucket"],
    )
    old_minhash = MinhashDedupSignature(str(out / "sigs"), minhash_config, language=regex)
    new_minhash = FastMinhashSignature(str(out / "sigs"), minhash_config, language=regex)

    if not args.skip_steps:
        rows = [time_step("Language ID (py3langid)", docs, LanguageIDFilter(["en"]).filter)]
        for label, old_class, new_class, key in (
            ("Gopher repetition", GopherRepetitionFilter, FastGopherRepetitionFilter, "gopher_repetition"),
            ("Gopher quality", GopherQualityFilter, FastGopherQualityFilter, "gopher_quality"),
            ("C4 quality", C4QualityFilter, FastC4QualityFilter, "c4_quality"),
            ("FineWeb quality", FineWebQualityFilter, FastFineWebQualityFilter, "fineweb_quality"),
        ):
            for kind, step_class in (("datatrove", old_class), ("kit", new_class)):
                step = step_class(language=regex, **options[key])  # fresh copies: C4 rewrites the text
                rows.append(time_step(f"{label}, regex words, {kind}", list(copies(docs)), step.filter))
        rows += [
            time_step("Gopher quality, spaCy words, datatrove", docs, GopherQualityFilter(language="en").filter),
            time_step("Exact-dedup normalisation", docs, normalized_content),
            time_step("MinHash signature, datatrove", docs, lambda d: minhash_signature(old_minhash, d.text)),
            time_step("MinHash signature, kit", docs, lambda d: minhash_signature(new_minhash, d.text)),
            time_step("PII redaction", docs, lambda d: redact(d.text)),
        ]
        print(format_table(rows, headers))
        print(f"({load()})\n")

    # The recipe's chain: language ID, then the heuristic filters with the recipe's options.
    curate = CurateArguments(**{k: v for k, v in recipe.items() if k != "sources"})
    warm = LanguageIDFilter(curate.languages, curate.language_threshold)

    def language_filter() -> LanguageIDFilter:
        step = LanguageIDFilter(curate.languages, curate.language_threshold)  # fresh counters, loaded model
        step._identifier = warm.identifier
        return step

    def old_chain() -> object:
        stock = {
            "gopher_repetition": GopherRepetitionFilter,
            "gopher_quality": GopherQualityFilter,
            "c4_quality": C4QualityFilter,
            "fineweb_quality": FineWebQualityFilter,
        }
        filters = [cls(language=regex, **curate.filter_options.get(key, {})) for key, cls in stock.items()]
        return run_chain([language_filter(), *filters], docs)

    def new_chain() -> object:
        return run_chain([language_filter(), *heuristic_filters(curate)], docs)

    rows = [(*time_step("Language ID alone (first in both chains)", docs, language_filter().filter)[:3], "")]
    rows += compare("Quality chain", old_chain, new_chain, megabytes, args.repeats)
    rows += compare(
        "MinHash signature",
        lambda: [minhash_signature(old_minhash, d.text) for d in docs],
        lambda: [minhash_signature(new_minhash, d.text) for d in docs],
        megabytes,
        args.repeats,
    )
    print(format_table(rows, [*headers[:3], "CPU speed-up"]))
    print(f"(best of {args.repeats}, old and new alternating; same decisions and signatures; {load()})")

    if args.skip_recipe:
        return
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
        f"documents/s per core; {kept:,} of {len(docs):,} documents kept ({load()})"
    )


if __name__ == "__main__":
    main()
