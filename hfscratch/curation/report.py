"""The curation report: datatrove's per-task stats, merged, as a funnel table, stats.json and a plot.

Per-task stats (`logs/<stage>/stats/NNNNN.json`) are merged here rather than taken from each executor's
summary, because a resumed run only summarises the tasks it ran itself. stats.json is a typed artifact
(`CurationStats`), written last: its presence means the curation finished.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from hfscratch.core.formatting import format_table
from hfscratch.curation.artifacts import CurationStats, FunnelRow, SourceStats

READER_TYPE = "📖 - READER"
WRITER_TYPE = "💽 - WRITER"
EXTRACTOR_TYPE = "🛢 - EXTRAC"
FORMATTER_TYPE = "✂️ - FORMAT"


def merged_stats(logging_dir: Path) -> list[dict[str, Any]] | None:
    """Every task's stats of one stage, summed per step: [{"name", "stats": {key: {"total", "n"}}}].

    None if no task of the stage finished.
    """
    steps: list[dict[str, Any]] | None = None
    for file in sorted((logging_dir / "stats").glob("*.json")):
        task = json.loads(file.read_text())
        if steps is None:
            steps = [{"name": step["name"], "stats": {}} for step in task]
        for merged, step in zip(steps, task):
            for key, metric in step["stats"].items():
                # datatrove writes a bare number for a plain count, a dict for a measured quantity
                total, n = (
                    (metric, metric) if isinstance(metric, (int, float)) else (metric["total"], metric.get("n", 1))
                )
                entry = merged["stats"].setdefault(key, {"total": 0, "n": 0})
                entry["total"] += total
                entry["n"] += n
    return steps


def value(step: dict[str, Any], key: str) -> float:
    """A step's counter (0 when absent)."""
    return step["stats"].get(key, {}).get("total", 0)


# datatrove names its dedup filters after their stage; the report names them after what they do.
DEDUP_LABELS = {"exact-deduplication stage 3": "Exact dedup", "MinHash stage 4": "MinHash near-dedup"}
# Why an extractor loses documents: its counters besides total/forwarded ("dropped" = no text left).
# A broken process is mostly a page over the extraction's memory budget (extraction.py), or a crash.
EXTRACTION_LOSSES = {
    "dropped": "no_text_extracted",
    "timeout": "timeout",
    "broken_process": "over_memory_budget_or_crashed",
}


def label(step_name: str) -> str:
    """'🔻 - FILTER: 🍷 FineWeb Quality' -> 'FineWeb Quality' (emoji break tables and plot fonts)."""
    name = re.sub(r"^[^\w(]+", "", step_name.split(": ", 1)[-1]).strip()
    return DEDUP_LABELS.get(name, name)


def is_filter(stats: dict[str, Any]) -> bool:
    return "total" in stats and ("forwarded" in stats or "dropped" in stats)


def build_funnel(stages: dict[str, list[dict[str, Any]]]) -> tuple[list[FunnelRow], dict[str, Any]]:
    """Rows of (step, documents and characters in/out, top removal reasons), and the counters besides.

    Every row is measured over the whole stream of documents. An HTML extractor sees only the sources read
    before it (WARC); the others join after it unchanged, so its row passes their documents and characters
    through: what it removes and shrinks is measured on its own input, the rest is added back.
    """
    rows: list[FunnelRow] = []
    skipped: Counter = Counter()
    pii: Counter = Counter()
    sources: dict[str, dict[str, float]] = {}
    extraction: FunnelRow | None = None
    for stage_name, pipeline in stages.items():
        for step in pipeline:
            name, stats = step["name"], step["stats"]
            counters = {k: value(step, k) for k in stats}
            skipped.update({k.removeprefix("skipped_"): v for k, v in counters.items() if k.startswith("skipped_")})
            pii.update({k.removeprefix("pii_"): v for k, v in counters.items() if k.startswith("pii_")})
            if name.startswith(READER_TYPE) and stage_name == "filter":  # a reader of one source: "... [tag]"
                tag = name.rsplit("[", 1)[1].rstrip("]")
                read = {"documents_read": stats.get("doc_len", {}).get("n", 0), "chars_read": value(step, "doc_len")}
                sources[tag] = read
                continue
            if name.startswith(EXTRACTOR_TYPE):
                input_chars = sum(s["chars_read"] for s in sources.values())  # the readers before it
                extraction = FunnelRow(
                    stage_name,
                    f"{label(name)} (HTML to text)",
                    docs_in=counters.get("total", 0),
                    docs_out=counters.get("forwarded", 0),
                    chars_in=input_chars,
                    chars_out=counters.get("doc_len", 0),
                    removal_reasons={EXTRACTION_LOSSES[k]: v for k, v in counters.items() if k in EXTRACTION_LOSSES},
                )
                continue
            if not is_filter(stats):
                # Not a filter: it passes every document on, so it measures what the filter before it kept
                # when that filter does not (datatrove's MinHash filter counts documents only).
                if rows and rows[-1].chars_out is None and value(step, "total") == rows[-1].docs_out:
                    rows[-1].chars_out = value(step, "input_chars" if "input_chars" in stats else "doc_len")
                if name.startswith(FORMATTER_TYPE) and "total" in stats and "doc_len" in stats:  # rewrites text
                    total = value(step, "total")
                    rows.append(FunnelRow(stage_name, label(name), total, total, chars_out=value(step, "doc_len")))
                continue
            docs_in = value(step, "total")
            docs_out = value(step, "forwarded") if "forwarded" in stats else docs_in - value(step, "dropped")
            reasons = {k.removeprefix("dropped_"): v for k, v in counters.items() if k.startswith("dropped_")}
            if not reasons and docs_out < docs_in:  # the dedup filters drop without a reason: duplication is it
                reasons = {"duplicate": docs_in - docs_out}
            chars_out = value(step, "doc_len") if "doc_len" in stats else None
            rows.append(FunnelRow(stage_name, label(name), docs_in, docs_out, None, chars_out, reasons))

    read_docs = sum(s["documents_read"] for s in sources.values())
    read_chars = sum(s["chars_read"] for s in sources.values())
    funnel = [FunnelRow("filter", "read", read_docs, read_docs, read_chars, read_chars)]
    if extraction is not None:  # over the whole stream: the other sources' documents pass through it
        passed_docs, passed_chars = read_docs - extraction.docs_in, read_chars - extraction.chars_in
        extraction.docs_in, extraction.chars_in = read_docs, read_chars
        extraction.docs_out += passed_docs
        extraction.chars_out += passed_chars
        funnel.append(extraction)
    funnel += rows
    for previous, row in zip(funnel, funnel[1:]):
        row.chars_in = previous.chars_out
    for row in funnel:
        row.removal_reasons = dict(Counter(row.removal_reasons).most_common())
    return funnel, {"skipped": dict(skipped), "pii": dict(pii), "sources": sources}


def stage_summary(steps: list[dict[str, Any]], threshold: float | None = None) -> str:
    """One line of what a stage did, from its merged stats: documents in and out, pairs and duplicates found."""
    parts = []
    for step in steps:
        name, stats = step["name"], step["stats"]
        if name.startswith(READER_TYPE):
            parts.append(f"{stats.get('doc_len', {}).get('n', 0):,.0f} documents read")
        elif name.startswith(WRITER_TYPE):
            parts.append(f"{value(step, 'total'):,.0f} written")
        elif "total_matches" in stats:
            parts.append(f"{value(step, 'total_matches'):,.0f} candidate pairs")
        elif "candidate_pairs" in stats:
            verified = f"{value(step, 'verified_pairs'):,.0f} of {value(step, 'candidate_pairs'):,.0f} pairs"
            parts.append(f"{verified} verified" + (f" (Jaccard >= {threshold})" if threshold is not None else ""))
        elif "to_remove" in stats:
            parts.append(f"{value(step, 'to_remove'):,.0f} near duplicates to remove")
        elif "dropped" in stats and not name.startswith(READER_TYPE) and "DEDUP" in name:
            parts.append(f"{value(step, 'dropped'):,.0f} duplicates removed")
        elif list(stats) == ["total"]:  # a signature stage
            parts.append(f"{value(step, 'total'):,.0f} documents hashed")
    return ", ".join(parts) or "done"


def output_counts(documents: Path) -> dict[str, dict[str, int]]:
    """Documents and characters per source tag in the curated output."""
    counts: dict[str, dict[str, int]] = {}

    def add(metadata: dict, text: str) -> None:
        entry = counts.setdefault(metadata.get("source", "?"), {"documents": 0, "chars": 0})
        entry["documents"] += 1
        entry["chars"] += len(text)

    for file in sorted(documents.glob("*.jsonl")):
        with file.open(encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                add(record.get("metadata", {}), record["text"])
    for file in sorted(documents.glob("*.parquet")):
        import pyarrow.parquet as pq

        for record in pq.read_table(file, columns=["text", "metadata"]).to_pylist():
            add(record["metadata"] or {}, record["text"])
    return counts


def plot_funnel(funnel: list[FunnelRow], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [row.step for row in funnel]
    docs = [row.docs_out for row in funnel]
    chars = [(row.chars_out or 0) / 1e6 for row in funnel]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.45 * len(funnel) + 1.5), sharey=True)
    left.barh(labels, docs, color="tab:blue")
    left.set_xlabel("documents kept")
    right.barh(labels, chars, color="tab:green")
    right.set_xlabel("characters kept (millions)")
    left.invert_yaxis()
    for ax, values in ((left, docs), (right, chars)):
        for y, x in enumerate(values):
            ax.text(x, y, f" {x:,.0f}" if ax is left else f" {x:,.1f}", va="center", fontsize=8)
    fig.suptitle("Curation funnel: what each step keeps")
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Software": None})  # no version stamp: the same run, the same bytes
    plt.close(fig)


FUNNEL_HEADERS = ["step", "docs in", "docs out", "Mchars in", "Mchars out", "top removal reasons"]


def render_table(funnel: list[FunnelRow]) -> str:
    def mb(chars: float | None) -> str:
        return "-" if chars is None else f"{chars / 1e6:,.2f}"

    def reasons(row: FunnelRow) -> str:
        return ", ".join(f"{k} {v:,.0f}" for k, v in list(row.removal_reasons.items())[:3])

    return format_table(
        [
            (r.step, f"{r.docs_in:,.0f}", f"{r.docs_out:,.0f}", mb(r.chars_in), mb(r.chars_out), reasons(r))
            for r in funnel
        ],
        FUNNEL_HEADERS,
        align="lrrrrl",
    )


def render_sources(sources: dict[str, SourceStats]) -> str:
    return format_table(
        [
            (
                tag,
                s.type,
                s.weight,
                f"{s.documents_read:,.0f}",
                f"{s.documents_kept:,}",
                f"{s.chars_kept / 1e6:,.2f}",
            )
            for tag, s in sources.items()
        ],
        ["source", "type", "weight", "docs read", "docs kept", "Mchars kept"],
    )


def counts_line(counts: dict[str, float]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v:,.0f}" for k, v in counts.items()) or "none"


def collect_stats(args: Any, stage_names: list[str], wall_time_s: float) -> CurationStats:
    """The run's stats from its stages' logs and its curated documents."""
    out = Path(args.output_dir)
    stages = {name: s for name in stage_names if (s := merged_stats(out / "logs" / name)) is not None}
    funnel, counters = build_funnel(stages)
    kept = output_counts(out / "documents")
    sources = {
        spec.tag: SourceStats(
            type=spec.type,
            weight=spec.weight,
            **counters["sources"].get(spec.tag, {}),
            documents_kept=kept.get(spec.tag, {}).get("documents", 0),
            chars_kept=kept.get(spec.tag, {}).get("chars", 0),
        )
        for spec in args.source_specs
    }
    return CurationStats(
        wall_time_s=round(wall_time_s, 1),
        output={"format": args.output_format, "folder": str(out / "documents")},
        sources=sources,
        funnel=funnel,
        skipped_records=counters["skipped"],
        pii_redacted=counters["pii"],
        stages=stages,
    )


def write_report(args: Any, stage_names: list[str], wall_time_s: float) -> CurationStats:
    """funnel.png, report.md and, last, stats.json in the run folder; prints the funnel once; returns the stats.

    report.md holds the tables only: a report that embeds it (the quickstart's) places the plot itself, and a
    relative image link would break there.
    """
    out = Path(args.output_dir)
    stats = collect_stats(args, stage_names, wall_time_s)
    plot_funnel(stats.funnel, out / "funnel.png")
    table, source_table = render_table(stats.funnel), render_sources(stats.sources)
    lines = [
        "# Curation report",
        "",
        f"Wall time: {wall_time_s:,.1f} s. Output: `{out / 'documents'}` ({args.output_format}). "
        "The funnel as a plot: `funnel.png` beside this file.",
        "",
        "## Funnel",
        "",
        "```",
        table,
        "```",
        "",
        "## Sources",
        "",
        "```",
        source_table,
        "```",
        "",
        "## PII redacted",
        "",
        counts_line(stats.pii_redacted),
        "",
        "## Input skipped",
        "",
        counts_line(stats.skipped_records) + " (each named in `logs/filter/logs/task_*.log`)",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    stats.write(out)  # last: its presence marks the curation finished
    print(f"\n{table}\n\n{source_table}\n")
    if stats.skipped_records:
        print(f"Input skipped: {counts_line(stats.skipped_records)} (named in {out / 'logs' / 'filter' / 'logs'})")
    return stats
