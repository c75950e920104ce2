"""Step 1a: a recipe becomes a chain of datatrove pipelines, run locally or on Slurm.

    filter     sources -> size -> URL -> language -> Gopher repetition/quality -> C4 -> FineWeb -> classifier
    exact-*    normalised-content hashes (3 stages: signatures, duplicates, filter)
    minhash-*  near duplicates (signatures, buckets, candidate check, clusters, filter): dedup.py
    final      PII redaction -> documents/ (JSONL or Parquet shards)

De-duplication runs before redaction, so documents that differ only in their (redacted) PII are still
found. Every stage is a datatrove executor with its own logging folder under `logs/`: a run started again
skips the tasks that completed and redoes the rest, and the chain is the same on one machine and on Slurm.
Locally, the console shows one progress bar and one result line per stage (progress.py); datatrove's logs
go to `logs/`.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hfscratch.core.allocator import PRELOAD
from hfscratch.core.recipes import RecipeError
from hfscratch.curation.executors import SlurmOptions, Stage, chain_executors

# The heuristic filters a recipe can switch on and configure (`filter_options: {c4_quality: {...}}`).
HEURISTIC_FILTERS = ("gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality")


@dataclass
class CurateArguments(SlurmOptions):
    """A curation run: sources, steps and how to execute them (the `slurm_*` keys: executors.py)."""

    output_dir: str = field(default="runs/curate", metadata={"help": "Run folder: documents/, stats.json, report."})
    sources: list[dict] = field(
        default_factory=lambda: [{"type": "python-docs"}],
        metadata={
            "help": "Sources (YAML list): {type: text|jsonl|parquet|warc|wet|hf|python-docs, path, tag, weight}; "
            "`html: true` extracts HTML pages with Trafilatura, as from WARC."
        },
    )
    output_format: Literal["jsonl", "parquet"] = field(default="jsonl", metadata={"help": "Curated shard format."})
    # Execution.
    executor: Literal["local", "slurm"] = field(default="local", metadata={"help": "datatrove executor."})
    tasks: int = field(
        default=4,
        metadata={"help": "Tasks (shards) per stage; each source is split between them by bytes, large files too."},
    )
    workers: int = field(default=-1, metadata={"help": "Tasks run at once (local: processes); -1 for all."})
    # Reading.
    max_doc_bytes: int = field(
        default=5_000_000, metadata={"help": "Text files and records larger than this (UTF-8) are skipped."}
    )
    extraction_memory_mb: int | None = field(
        default=512,
        metadata={"help": "HTML pages whose extraction needs more memory than this are skipped (null: no bound)."},
    )
    min_doc_chars: int = field(default=50, metadata={"help": "Shorter documents are dropped."})
    max_doc_chars: int = field(default=1_000_000, metadata={"help": "Longer documents are dropped."})
    # Filters.
    url_filter: bool = field(default=True, metadata={"help": "Block-listed domains and URL words (web only)."})
    language_filter: bool = field(default=True, metadata={"help": "Keep --languages only (py3langid)."})
    languages: list[str] = field(default_factory=lambda: ["en"], metadata={"help": "ISO 639-1 codes to keep."})
    language_threshold: float = field(default=0.65, metadata={"help": "Minimum language probability."})
    word_tokenizer: Literal["regex", "spacy"] = field(
        default="regex", metadata={"help": "Word tokenizer of the heuristic filters and MinHash (regex is ~7x faster)."}
    )
    gopher_repetition: bool = field(default=True, metadata={"help": "Gopher repetition filter."})
    gopher_quality: bool = field(default=True, metadata={"help": "Gopher quality filter."})
    c4_quality: bool = field(default=True, metadata={"help": "C4 quality filter (line-level cleaning too)."})
    fineweb_quality: bool = field(default=True, metadata={"help": "FineWeb quality filter."})
    filter_options: dict = field(
        default_factory=dict, metadata={"help": "Keyword arguments per heuristic filter, e.g. {c4_quality: {...}}."}
    )
    quality_classifier: str | None = field(
        default=None, metadata={"help": "fastText model from `hfscratch curate train-classifier`."}
    )
    quality_threshold: float = field(default=0.5, metadata={"help": "Minimum classifier probability of quality."})
    # De-duplication, then redaction.
    exact_dedup: bool = field(default=True, metadata={"help": "Drop documents with identical normalised text."})
    minhash_dedup: bool = field(default=True, metadata={"help": "Drop near duplicates (MinHash LSH)."})
    # Tuned on planted near copies of the standard library's reference text (benchmarks/near_dedup.py): two
    # documents are duplicates when their 3-word shingle sets have Jaccard similarity >= 0.5; 3 rows per band
    # and the fewest bands that make such a pair a candidate with 99% probability, 1 - (1 - 0.5^3)^35 = 0.991.
    minhash_threshold: float = field(
        default=0.5,
        metadata={
            "help": "Jaccard similarity of shingle sets that makes a duplicate, checked exactly for every LSH "
            "candidate pair; 0 trusts LSH alone."
        },
    )
    minhash_ngrams: int = field(default=3, metadata={"help": "Words per MinHash shingle."})
    minhash_buckets: int = field(default=35, metadata={"help": "MinHash LSH bands."})
    minhash_hashes_per_bucket: int = field(default=3, metadata={"help": "MinHash rows per band."})
    pii_redaction: bool = field(default=True, metadata={"help": "Redact e-mails, IPs, phones, cards, IBANs, secrets."})

    def __post_init__(self) -> None:
        from hfscratch.curation.sources import SourceSpec

        if not self.sources:
            raise RecipeError("sources: give at least one source, e.g. [{type: python-docs}]")
        self.source_specs = [SourceSpec.from_recipe(s, f"sources[{i}]") for i, s in enumerate(self.sources)]
        tags = [s.tag for s in self.source_specs]
        if len(set(tags)) != len(tags):
            raise RecipeError(f"sources: tags must be unique (set `tag:`), got {tags}")
        if self.tasks < 1:
            raise RecipeError(f"tasks: expected at least 1, got {self.tasks}")
        if self.executor == "slurm" and not self.slurm_partition:
            raise RecipeError("slurm_partition: the slurm executor needs a partition")
        for name, options in self.filter_options.items():
            if name not in HEURISTIC_FILTERS or not isinstance(options, dict):
                raise RecipeError(
                    f"filter_options.{name}: expected one of {', '.join(HEURISTIC_FILTERS)} mapped to keyword arguments"
                )
        if not 0 <= self.minhash_threshold < 1:
            raise RecipeError(f"minhash_threshold: expected a similarity in [0, 1), got {self.minhash_threshold}")
        if self.max_doc_bytes < 1:
            raise RecipeError(f"max_doc_bytes: expected at least 1, got {self.max_doc_bytes}")
        if self.extraction_memory_mb is not None and self.extraction_memory_mb < 16:
            raise RecipeError(
                f"extraction_memory_mb: expected at least 16 (MB an extraction may add) or null, "
                f"got {self.extraction_memory_mb}"
            )
        for key in ("minhash_ngrams", "minhash_buckets", "minhash_hashes_per_bucket"):
            if getattr(self, key) < 1:
                raise RecipeError(f"{key}: expected at least 1, got {getattr(self, key)}")
        if self.quality_classifier and not Path(self.quality_classifier).is_file():
            raise RecipeError(f"quality_classifier: {self.quality_classifier} does not exist")


def word_tokenizer(args: CurateArguments) -> Any:
    from hfscratch.curation.blocks import RegexWordTokenizer

    return RegexWordTokenizer() if args.word_tokenizer == "regex" else "en"


def heuristic_filters(args: CurateArguments) -> list[Any]:
    # datatrove's filters with the same options, decisions and stats, in fewer passes (blocks.py)
    from hfscratch.curation.blocks import (
        FastC4QualityFilter,
        FastFineWebQualityFilter,
        FastGopherQualityFilter,
        FastGopherRepetitionFilter,
    )

    classes = {
        "gopher_repetition": FastGopherRepetitionFilter,
        "gopher_quality": FastGopherQualityFilter,
        "c4_quality": FastC4QualityFilter,
        "fineweb_quality": FastFineWebQualityFilter,
    }
    filters = []
    for name in HEURISTIC_FILTERS:
        if not getattr(args, name):
            continue
        options = dict(args.filter_options.get(name, {}))
        accepted = inspect.signature(classes[name]).parameters
        for key in options:
            if key not in accepted or key in ("language", "exclusion_writer"):
                raise RecipeError(f"filter_options.{name}.{key}: not an option of {classes[name].__name__}")
        if "language" in accepted:
            options["language"] = word_tokenizer(args)
        filters.append(classes[name](**options))
    return filters


def build_stages(args: CurateArguments) -> list[Stage]:
    """The chain of pipelines for a recipe, in order."""
    from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter
    from datatrove.pipeline.dedup.exact_dedup import (
        ExactDedupConfig,
        ExactDedupFilter,
        ExactDedupSignature,
        ExactFindDedups,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter, ParquetWriter

    from hfscratch.curation.blocks import (
        DocumentSizeFilter,
        LanguageIDFilter,
        OfflineURLFilter,
        PIIRedactor,
        QualityClassifierFilter,
        normalized_content,
    )
    from hfscratch.curation.dedup import FastMinhashSignature, MinhashVerifyPairs, ShingleMinhashSignature
    from hfscratch.curation.sources import reading_steps

    out = Path(args.output_dir).resolve()
    work = out / "work"

    def intermediate(name: str) -> Any:
        return JsonlWriter(str(work / name), compression=None)

    def read_back(name: str) -> Any:  # documents carry their source's file_path (if any), never work/'s
        return JsonlReader(str(work / name), compression=None, glob_pattern="*.jsonl", add_file_path=False)

    steps = [
        *reading_steps(args.source_specs, args.max_doc_bytes, args.extraction_memory_mb),
        DocumentSizeFilter(args.min_doc_chars, args.max_doc_chars),
    ]
    if args.url_filter and any(s.type in ("warc", "wet", "hf") for s in args.source_specs):
        steps.append(OfflineURLFilter())
    if args.language_filter:
        steps.append(LanguageIDFilter(args.languages, args.language_threshold))
    steps += heuristic_filters(args)
    if args.quality_classifier:
        steps.append(QualityClassifierFilter(str(Path(args.quality_classifier).resolve()), args.quality_threshold))
    stages = [Stage("filter", [*steps, intermediate("filtered")], args.tasks)]
    latest = "filtered"

    dedup_filters: list[Any] = []
    if args.exact_dedup:
        config = ExactDedupConfig(content_getter=normalized_content)
        stages += [
            Stage(
                "exact-signatures",
                [read_back(latest), ExactDedupSignature(str(work / "exact-sigs"), config)],
                args.tasks,
            ),
            Stage("exact-duplicates", [ExactFindDedups(str(work / "exact-sigs"), str(work / "exact-dups"), config)], 1),
        ]
        dedup_filters.append(ExactDedupFilter(str(work / "exact-dups"), config))
    if args.minhash_dedup:
        if dedup_filters:  # MinHash must see the exact-deduplicated documents, in the order its filter reads them
            stages.append(Stage("exact-filter", [read_back(latest), *dedup_filters, intermediate("exact")], args.tasks))
            latest, dedup_filters = "exact", []
        config = MinhashConfig(
            n_grams=args.minhash_ngrams,
            num_buckets=args.minhash_buckets,
            hashes_per_bucket=args.minhash_hashes_per_bucket,
        )
        sigs, buckets, shingles, verified, clusters = (
            str(work / f"minhash-{x}") for x in ("sigs", "buckets", "shingles", "verified", "clusters")
        )
        verify = args.minhash_threshold > 0
        signature = (
            ShingleMinhashSignature(sigs, shingles, config, language=word_tokenizer(args))
            if verify
            else FastMinhashSignature(sigs, config, language=word_tokenizer(args))  # datatrove's, faster
        )
        stages += [
            Stage("minhash-signatures", [read_back(latest), signature], args.tasks),
            Stage("minhash-buckets", [MinhashDedupBuckets(sigs, buckets, config=config)], args.minhash_buckets),
        ]
        if verify:
            check = MinhashVerifyPairs(buckets, shingles, verified, args.minhash_threshold)
            stages.append(Stage("minhash-verify", [check], min(args.tasks, args.minhash_buckets)))
        pairs = verified if verify else buckets
        stages.append(Stage("minhash-clusters", [MinhashDedupCluster(pairs, clusters, config=config)], 1))
        dedup_filters.append(MinhashDedupFilter(clusters))

    # Uncompressed JSON lines: gzip stamps the time into its header, and a resumed run must write the
    # same bytes as an uninterrupted one. Parquet is the compressed choice.
    writer = (
        JsonlWriter(str(out / "documents"), compression=None)
        if args.output_format == "jsonl"
        else ParquetWriter(str(out / "documents"))
    )
    final = [read_back(latest), *dedup_filters, *([PIIRedactor()] if args.pii_redaction else []), writer]
    stages.append(Stage("final", final, args.tasks))
    return stages


def executors(args: CurateArguments, stages: list[Stage]) -> list[Any]:
    """One datatrove executor per stage, each depending on the one before."""
    logs = Path(args.output_dir).resolve() / "logs"
    preload = os.environ.get(PRELOAD)  # curation's tasks run with this process's allocator
    return chain_executors(stages, logs, args.executor, args.workers, args, job_prefix="curate", preload=preload)


def run_curation(args: CurateArguments) -> dict[str, Any] | None:
    """Run (or, on Slurm, submit) the whole chain; locally, write the report and stats.json and return the
    stats as written (`CurationStats.read(output_dir)` reads them back typed). A finished run is left as it is."""
    import time

    from hfscratch.curation.artifacts import CurationStats
    from hfscratch.curation.progress import StageProgress, console
    from hfscratch.curation.report import merged_stats, stage_summary, write_report

    stages = build_stages(args)
    chain = executors(args, stages)
    if args.executor == "slurm":
        chain[-1].run()  # submits its dependencies first
        print(f"Submitted {len(chain)} Slurm jobs; launch scripts in {Path(args.output_dir) / 'logs'}/*/")
        return None
    logs = Path(args.output_dir).resolve() / "logs"
    finished = CurationStats.read_or_none(args.output_dir)
    if finished is not None and not any(executor.get_incomplete_ranks() for executor in chain):
        print(f"Already curated: {args.output_dir} (stats.json); nothing to do")
        return finished.to_dict()
    stream = console()
    start = time.perf_counter()
    for stage, executor in zip(stages, chain):  # in order, so that each stage's bar and result come together
        began = time.perf_counter()
        with StageProgress(stage.name, logs / stage.name, stage.tasks, stream):
            executor.run()
        stream.flush()
        summary = stage_summary(merged_stats(logs / stage.name) or [], args.minhash_threshold)
        print(f"{stage.name}: {summary} ({time.perf_counter() - began:.1f} s)", flush=True)
    return write_report(args, [s.name for s in stages], time.perf_counter() - start).to_dict()
