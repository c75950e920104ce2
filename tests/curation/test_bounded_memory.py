"""What one document may cost is bounded, so curation's peak memory does not grow with the corpus: records over
`max_doc_bytes` are skipped by every reader, and an HTML page whose extraction needs more than
`extraction_memory_mb` is skipped and counted, the pages after it extracted as before."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from curation_corpora import ALL_STEPS_OFF, write_jsonl

from hfscratch.core.recipes import RecipeError
from hfscratch.curation.pipeline import CurateArguments

PARAGRAPH = "The scheduler balances the load between the run queues of every processor, one tick at a time. " * 3
SMALL_PAGE = f"<html><body><article><h1>Scheduler</h1><p>{PARAGRAPH}</p><p>{PARAGRAPH}</p></article></body></html>"
# 1 MB of table cells: Trafilatura's tree of it takes far more than 32 MB, and about 3 s on one core.
TABLE_PAGE = (
    "<html><body><article><h1>Options</h1><table>"
    + "".join(f"<tr><td>option {i}</td><td>the value of option {i}</td></tr>" for i in range(16_000))
    + "</table></article></body></html>"
)


def extraction_row(stats: dict) -> dict:
    (row,) = [row for row in stats["funnel"] if "HTML to text" in row["step"]]
    return row


@pytest.mark.parametrize("budget_mb, kept", [(32, ["small.html"]), (None, ["options.html", "small.html"])])
def test_a_page_over_the_extraction_memory_budget_is_skipped_and_counted(tmp_path, budget_mb, kept):
    # In a fresh `hfscratch curate` process: a sandbox forked from a large process (a long test session) could
    # reuse its parent's freed heap, which the data-segment limit does not count.
    write_jsonl(
        [{"id": "options.html", "text": TABLE_PAGE}, {"id": "small.html", "text": SMALL_PAGE}],
        tmp_path / "html" / "pages.jsonl",
    )
    out = tmp_path / "run"
    recipe = {
        "output_dir": str(out),
        "sources": [{"type": "jsonl", "path": str(tmp_path / "html"), "tag": "pages", "html": True}],
        "tasks": 1,
        "workers": 1,
        "min_doc_chars": 1,
        "extraction_memory_mb": budget_mb,
        **ALL_STEPS_OFF,
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    result = subprocess.run(
        [sys.executable, "-m", "hfscratch.cli", "curate", str(tmp_path / "recipe.yaml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    row = extraction_row(json.loads((out / "stats.json").read_text()))
    assert sorted(doc["id"] for doc in read_documents(out)) == kept
    if budget_mb is None:
        assert row["removal_reasons"] == {}
    else:  # the sandbox that ran out was replaced: the next page extracts as before
        assert row["removal_reasons"] == {"over_memory_budget_or_crashed": 1}


def read_documents(out) -> list[dict]:
    return [json.loads(line) for path in sorted((out / "documents").glob("*.jsonl")) for line in path.open()]


def test_records_over_max_doc_bytes_are_skipped_by_every_reader(tmp_path, curate):
    ascii_ok, accents_over = "a" * 400, "é" * 300  # 400 bytes; 300 characters but 600 bytes in UTF-8
    write_jsonl(
        [{"id": "ok", "text": ascii_ok}, {"id": "over", "text": accents_over}, {"id": "long", "text": "b" * 900}],
        tmp_path / "j" / "records.jsonl",
    )
    (tmp_path / "p").mkdir()
    pq.write_table(pa.table({"id": ["p-ok", "p-over"], "text": ["c" * 450, "d" * 501]}), tmp_path / "p" / "r.parquet")
    out, stats = curate(
        [{"type": "jsonl", "path": str(tmp_path / "j"), "tag": "j"}, {"type": "parquet", "path": str(tmp_path / "p")}],
        max_doc_bytes=500,
    )
    assert sorted(doc["id"] for doc in read_documents(out)) == ["ok", "p-ok"]
    assert stats["skipped_records"] == {"too_large": 3}
    warnings = "".join(p.read_text() for p in (out / "logs" / "filter" / "logs").glob("task_*.log"))
    assert "records.jsonl record 1: skipped (too large)" in warnings


@pytest.mark.parametrize("key, value", [("extraction_memory_mb", 8), ("max_doc_bytes", 0)])
def test_bounds_out_of_range_are_refused(tmp_path, key, value):
    with pytest.raises(RecipeError, match=rf"^{key}: expected at least"):
        CurateArguments(output_dir=str(tmp_path / "out"), **{key: value})
