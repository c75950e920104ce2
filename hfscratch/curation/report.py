"""The curation report: datatrove's per-task stats, merged, as a funnel table, stats.json and a plot.

Per-task stats (`logs/<stage>/stats/NNNNN.json`) are merged here rather than taken from each executor's
summary, because a resumed run only summarises the tasks it ran itself.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from hfscratch.core.formatting import format_table

READER_TYPE = "📖 - READER"


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


def label(step_name: str) -> str:
    """'🔻 - FILTER: 🍷 FineWeb Quality' -> 'FineWeb Quality' (emoji break tables and plot fonts)."""
    name = re.sub(r"^[^\w(]+", "", step_name.split(": ", 1)[-1]).strip()
    return DEDUP_LABELS.get(name, name)


def build_funnel(stages: dict[str, list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of (step, documents and characters in/out, top removal reasons), and the counters besides."""
    rows: list[dict[str, Any]] = []
    skipped: Counter = Counter()
    pii: Counter = Counter()
    sources: dict[str, dict[str, float]] = {}
    for stage_name, pipeline in stages.items():
        for step in pipeline:
            name, stats = step["name"], step["stats"]
            counters = {k: value(step, k) for k in stats}
            skipped.update({k.removeprefix("skipped_"): v for k, v in counters.items() if k.startswith("skipped_")})
            pii.update({k.removeprefix("pii_"): v for k, v in counters.items() if k.startswith("pii_")})
            if name.startswith(READER_TYPE) and stage_name == "filter":  # a reader of one source: "... [tag]"
                tag = name.rsplit("[", 1)[1].rstrip("]")
                sources[tag] = {
                    "documents_read": stats.get("doc_len", {}).get("n", 0),
                    "chars_read": value(step, "doc_len"),
                }
            if "total" not in stats or ("forwarded" not in stats and "dropped" not in stats):
                # Not a filter: it passes every document on, so it measures what the filter before it kept
                # when that filter does not (datatrove's dedup filters count documents only).
                if rows and rows[-1]["chars_out"] is None and value(step, "total") == rows[-1]["docs_out"]:
                    rows[-1]["chars_out"] = value(step, "doc_len") if "doc_len" in stats else None
                continue
            docs_in = value(step, "total")
            docs_out = value(step, "forwarded") if "forwarded" in stats else docs_in - value(step, "dropped")
            reasons = {k.removeprefix("dropped_"): v for k, v in counters.items() if k.startswith("dropped_")}
            if not reasons and docs_out < docs_in:  # the dedup filters drop without a reason: duplication is it
                reasons = {"duplicate": docs_in - docs_out}
            rows.append(
                {
                    "stage": stage_name,
                    "step": label(name),
                    "docs_in": docs_in,
                    "docs_out": docs_out,
                    "chars_out": value(step, "doc_len") if "doc_len" in stats else None,
                    "removal_reasons": dict(Counter(reasons).most_common()),
                }
            )
    read_docs = sum(s["documents_read"] for s in sources.values())
    read_chars = sum(s["chars_read"] for s in sources.values())
    funnel = [
        {
            "stage": "filter",
            "step": "read",
            "docs_in": read_docs,
            "docs_out": read_docs,
            "chars_out": read_chars,
            "removal_reasons": {},
        }
    ] + rows
    for previous, row in zip(funnel, funnel[1:]):
        row["chars_in"] = previous["chars_out"]
    funnel[0]["chars_in"] = read_chars
    return funnel, {"skipped": dict(skipped), "pii": dict(pii), "sources": sources}


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


def plot_funnel(funnel: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [row["step"] for row in funnel]
    docs = [row["docs_out"] for row in funnel]
    chars = [(row["chars_out"] or 0) / 1e6 for row in funnel]
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
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render_table(funnel: list[dict[str, Any]]) -> str:
    def mb(chars: float | None) -> str:
        return "-" if chars is None else f"{chars / 1e6:,.2f}"

    def reasons(row: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v:,.0f}" for k, v in list(row["removal_reasons"].items())[:3])

    return format_table(
        [
            (
                r["step"],
                f"{r['docs_in']:,.0f}",
                f"{r['docs_out']:,.0f}",
                mb(r["chars_in"]),
                mb(r["chars_out"]),
                reasons(r),
            )
            for r in funnel
        ],
        ["step", "docs in", "docs out", "Mchars in", "Mchars out", "top removal reasons"],
        align="lrrrrl",
    )


def write_report(args: Any, stage_names: list[str], wall_time_s: float) -> dict[str, Any]:
    """stats.json, report.md and funnel.png in the run folder; returns the stats."""
    out = Path(args.output_dir)
    stages = {name: s for name in stage_names if (s := merged_stats(out / "logs" / name)) is not None}
    funnel, counters = build_funnel(stages)
    kept = output_counts(out / "documents")
    sources = {
        spec.tag: {
            "type": spec.type,
            "weight": spec.weight,
            **counters["sources"].get(spec.tag, {}),
            "documents_kept": kept.get(spec.tag, {}).get("documents", 0),
            "chars_kept": kept.get(spec.tag, {}).get("chars", 0),
        }
        for spec in args.source_specs
    }
    stats = {
        "wall_time_s": round(wall_time_s, 1),
        "output": {"format": args.output_format, "folder": str(out / "documents")},
        "sources": sources,
        "funnel": funnel,
        "skipped_records": counters["skipped"],
        "pii_redacted": counters["pii"],
        "stages": stages,
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=2))
    plot_funnel(funnel, out / "funnel.png")
    table = render_table(funnel)
    source_table = format_table(
        [
            (
                tag,
                s["type"],
                s["weight"],
                f"{s.get('documents_read', 0):,}",
                f"{s['documents_kept']:,}",
                f"{s['chars_kept'] / 1e6:,.2f}",
            )
            for tag, s in sources.items()
        ],
        ["source", "type", "weight", "docs read", "docs kept", "Mchars kept"],
    )
    lines = [
        "# Curation report",
        "",
        f"Wall time: {wall_time_s:,.1f} s. Output: `{out / 'documents'}` ({args.output_format}).",
        "",
        "## Funnel",
        "",
        "```",
        table,
        "```",
        "",
        "![funnel](funnel.png)",
        "",
        "## Sources",
        "",
        "```",
        source_table,
        "```",
        "",
        "## PII redacted",
        "",
        ", ".join(f"{k}: {v:,.0f}" for k, v in counters["pii"].items()) or "none",
        "",
        "## Records skipped as unreadable",
        "",
        ", ".join(f"{k}: {v:,.0f}" for k, v in counters["skipped"].items()) or "none",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    print(f"\n{table}\n\n{source_table}\n")
    if counters["skipped"]:
        print("Skipped as unreadable: " + ", ".join(f"{k} {v:,.0f}" for k, v in counters["skipped"].items()))
    print(f"Curated {sum(k['documents'] for k in kept.values()):,} documents in {wall_time_s:,.1f} s -> {out}")
    return stats
