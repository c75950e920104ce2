"""Tasks split a source by bytes: one large file keeps every task busy, and no record is read twice or lost."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from pathlib import Path

import pytest
from curation_corpora import dedup_corpus, write_jsonl
from datatrove.utils.logging import logger

from hfscratch.curation.sharding import Piece, lines_starting_in, plan_pieces
from hfscratch.curation.sources import SourceSpec, reader_for


def read_source(entry: dict, rank: int, world_size: int) -> list[tuple[str, str]]:
    """(id, text) of what task `rank` of `world_size` reads of a source."""
    reader = reader_for(SourceSpec.from_recipe(entry, "test"), max_doc_bytes=10_000_000)
    return [(doc.id, doc.text) for doc in reader.run(rank=rank, world_size=world_size)]


def per_task(entry: dict, world_size: int) -> list[list[tuple[str, str]]]:
    return [read_source(entry, rank, world_size) for rank in range(world_size)]


# -- The plan and the line splitter -------------------------------------------------------------------------


def test_pieces_cover_every_byte_once_and_whole_files_go_to_one_task():
    files = [("a.jsonl", 1000, True), ("b.jsonl.gz", 300, False), ("c.jsonl", 7, True), ("empty.jsonl", 0, True)]
    for world_size in (1, 2, 3, 7, 1500):
        plans = [plan_pieces(files, rank, world_size) for rank in range(world_size)]
        ranges = {"a.jsonl": [], "c.jsonl": []}
        whole = []
        for pieces in plans:
            for piece in pieces:
                (whole.append(piece.path) if piece.whole else ranges[piece.path].append((piece.start, piece.end)))
        assert sorted(whole) == ["b.jsonl.gz", "empty.jsonl"]  # each read by exactly one task
        for path, size in (("a.jsonl", 1000), ("c.jsonl", 7)):
            spans = sorted(ranges[path])
            assert spans[0][0] == 0 and spans[-1][1] == size
            assert all(end == next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))  # no gap, no overlap


CONTENT = b'{"a": 1}\r\n{"long": "' + b"x" * 40 + b'"}\n\n{"b": 2}\r\n{"c": 3}'  # CRLF, blank line, no final newline


@pytest.mark.parametrize("world_size", [1, 2, 3, 5, 8, len(CONTENT), len(CONTENT) + 3])
def test_every_line_is_read_once_with_its_line_number_at_any_split(world_size):
    expected = list(enumerate(io.BytesIO(CONTENT).readlines()))
    got = []
    for rank in range(world_size):
        for piece in plan_pieces([("f", len(CONTENT), True)], rank, world_size):
            got += list(lines_starting_in(io.BytesIO(CONTENT), piece.start, piece.end))
    assert got == expected  # in order: a record spanning a boundary is read by the task where it starts


def test_a_range_that_starts_on_a_record_start_takes_that_record():
    start = CONTENT.index(b'{"b"')
    assert [line for _, line in lines_starting_in(io.BytesIO(CONTENT), start, start + 1)] == [b'{"b": 2}\r\n']
    assert list(lines_starting_in(io.BytesIO(CONTENT), start + 1, len(CONTENT))) == [(4, b'{"c": 3}')]


# -- Readers ------------------------------------------------------------------------------------------------


def records(n: int) -> list[dict]:
    return [
        {"id": f"doc-{i}", "text": f"Document number {i}. " + "Some words of text. " * (i % 7 + 1)} for i in range(n)
    ]


def test_one_jsonl_file_is_split_between_tasks_as_the_same_file_split_in_two(tmp_path):
    corpus = write_jsonl(records(40), tmp_path / "one" / "corpus.jsonl")
    shards = per_task({"type": "jsonl", "path": str(corpus)}, 2)
    assert all(shards), "both tasks read documents"
    lines = corpus.read_bytes().splitlines(keepends=True)
    half = len(corpus.read_bytes()) // 2  # task 1's range starts here: its first record starts at or after it
    cut = next(i for i in range(len(lines)) if len(b"".join(lines[:i])) >= half)
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "part-0.jsonl").write_bytes(b"".join(lines[:cut]))
    (tmp_path / "two" / "part-1.jsonl").write_bytes(b"".join(lines[cut:]))
    assert shards == per_task({"type": "jsonl", "path": str(tmp_path / "two")}, 2)


def test_a_file_smaller_than_the_tasks_gives_each_record_to_one_task(tmp_path):
    write_jsonl(records(2), tmp_path / "tiny.jsonl")
    shards = per_task({"type": "jsonl", "path": str(tmp_path)}, 64)
    assert sorted(doc for shard in shards for doc in shard) == [(r["id"], r["text"]) for r in records(2)]
    assert sum(1 for shard in shards if shard) == 2


def test_crlf_lines_and_ids_from_line_numbers_do_not_depend_on_the_tasks(tmp_path):
    lines = [json.dumps({"text": f"line {i} " + "y" * (i * 13 % 50)}) for i in range(30)]
    (tmp_path / "crlf.jsonl").write_bytes("\r\n".join(lines).encode() + b"\r\n")
    one = per_task({"type": "jsonl", "path": str(tmp_path)}, 1)[0]
    assert one[3] == ("crlf.jsonl/3", "line 3 " + "y" * 39)  # a record without an id is named FILE/LINE
    for world_size in (2, 3, 7):
        shards = per_task({"type": "jsonl", "path": str(tmp_path)}, world_size)
        assert [doc for shard in shards for doc in shard] == one


def test_a_gzip_file_cannot_seek_so_one_task_reads_it_whole_and_says_so(tmp_path):
    lines = "".join(json.dumps(r) + "\n" for r in records(30))
    (tmp_path / "corpus.jsonl.gz").write_bytes(gzip.compress(lines.encode(), mtime=0))
    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(str(message)), level="WARNING")
    try:
        shards = per_task({"type": "jsonl", "path": str(tmp_path)}, 2)
    finally:
        logger.remove(sink)
    assert sorted(len(s) for s in shards) == [0, 30]
    assert any("corpus.jsonl.gz" in m and "cannot be split" in m and "one task reads it whole" in m for m in messages)


def test_parquet_row_groups_are_split_between_tasks(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Incompressible text, so that the row groups, not the footer, make up the file (as in any large file).
    rows = [{"id": f"doc-{i}", "text": hashlib.sha256(str(i).encode()).hexdigest() * 20} for i in range(40)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "corpus.parquet", row_group_size=5)  # 8 row groups
    shards = per_task({"type": "parquet", "path": str(tmp_path)}, 2)
    assert [len(s) for s in shards] == [20, 20]  # 4 row groups each
    assert [doc for shard in shards for doc in shard] == [(r["id"], r["text"]) for r in rows]


def test_a_corrupt_parquet_file_is_counted_once_however_many_tasks(tmp_path, curate):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(records(10)), tmp_path / "good.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1" + b"\x13" * 5000 + b"PAR1")
    _, stats = curate([{"type": "parquet", "path": str(tmp_path), "tag": "tables"}])
    assert stats["skipped_records"] == {"unreadable_file": 1}
    assert stats["sources"]["tables"]["documents_kept"] == 10


def test_many_whole_files_are_balanced_by_size(tmp_path):
    for name, size in (("a.txt", 6000), ("b.txt", 1000), ("c.txt", 6000), ("d.txt", 1000)):
        (tmp_path / name).write_text("word " * (size // 5))
    shards = per_task({"type": "text", "path": str(tmp_path)}, 2)
    # Round robin by name (datatrove's files[rank::world_size]) gives a + c (12,000 bytes) and b + d (2,000).
    assert [[doc_id for doc_id, _ in shard] for shard in shards] == [["a.txt", "b.txt"], ["c.txt", "d.txt"]]


def test_pieces_name_their_byte_range():
    assert str(Piece("corpus.jsonl", 0, 1_000_000)) == "corpus.jsonl bytes [0, 1,000,000)"
    assert str(Piece("corpus.jsonl.gz")) == "corpus.jsonl.gz"


# -- The pipeline -------------------------------------------------------------------------------------------


def documents(run_dir: Path) -> dict[str, list[dict]]:
    """Curated documents per output shard, without the source file they came from."""
    shards = {}
    for f in sorted((run_dir / "documents").glob("*.jsonl")):
        shards[f.name] = [json.loads(line) for line in f.open()]
        for doc in shards[f.name]:
            doc["metadata"].pop("file_path")
    return shards


def filter_stage_documents_per_task(run_dir: Path) -> list[int]:
    counts = []
    for stats in sorted((run_dir / "logs" / "filter" / "stats").glob("*.json")):
        reader = json.loads(stats.read_text())[0]  # the source's reader, the stage's first step
        counts.append(reader["stats"]["documents"]["total"])
    return counts


def test_one_file_source_on_two_tasks_curates_as_a_pre_split_source(tmp_path, curate):
    corpus, _ = dedup_corpus()
    one = write_jsonl(corpus, tmp_path / "one" / "corpus.jsonl")
    lines = one.read_bytes().splitlines(keepends=True)
    cut = next(i for i in range(len(lines)) if len(b"".join(lines[:i])) >= len(one.read_bytes()) // 2)
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "part-0.jsonl").write_bytes(b"".join(lines[:cut]))
    (tmp_path / "two" / "part-1.jsonl").write_bytes(b"".join(lines[cut:]))

    def run(folder: str, output: str) -> Path:
        out, _ = curate([{"type": "jsonl", "path": str(tmp_path / folder), "tag": "docs"}], output, exact_dedup=True)
        return out

    single, split = run("one", "single"), run("two", "split")
    per_task_counts = filter_stage_documents_per_task(single)
    assert len(per_task_counts) == 2 and min(per_task_counts) > 0, per_task_counts
    assert per_task_counts == filter_stage_documents_per_task(split)
    assert documents(single) == documents(split)  # the same documents in the same shards, duplicates found alike
    again = run("one", "again")
    assert {f.name: f.read_bytes() for f in (again / "documents").iterdir()} == {
        f.name: f.read_bytes() for f in (single / "documents").iterdir()
    }


def test_an_html_source_goes_through_trafilatura_like_warc_pages(tmp_path, curate):
    paragraph = "The kernel schedules tasks on every processor, balancing the load between run queues. " * 4
    page = (
        "<html><head><title>Scheduler</title><style>p {color: red}</style></head><body>"
        "<nav><a href='/'>Home</a> | <a href='/docs'>Docs</a></nav>"
        f"<article><h1>Scheduler</h1><p>{paragraph}</p><p>{paragraph}</p></article>"
        "<footer>Copyright footer links</footer></body></html>"
    )
    write_jsonl([{"id": "sched.html", "text": page}], tmp_path / "html" / "pages.jsonl")
    write_jsonl([{"id": "plain.txt", "text": "<p> stays as written in a text source " * 3}], tmp_path / "t" / "x.jsonl")
    out, _ = curate(
        [
            {"type": "jsonl", "path": str(tmp_path / "t"), "tag": "plain"},
            {"type": "jsonl", "path": str(tmp_path / "html"), "tag": "pages", "html": True},
        ]
    )
    texts = {doc["id"]: doc["text"] for shard in documents(out).values() for doc in shard}
    assert paragraph.strip() in texts["sched.html"]
    assert "<p>" not in texts["sched.html"] and "color: red" not in texts["sched.html"]
    assert texts["plain.txt"].startswith("<p> stays")  # only the flagged source is extracted


def test_html_is_refused_where_a_source_cannot_hold_pages():
    from hfscratch.core.recipes import RecipeError

    with pytest.raises(RecipeError, match=r"sources\[0\]\.html: only text, jsonl, parquet, hf sources"):
        SourceSpec.from_recipe({"type": "python-docs", "html": True}, "sources[0]")
    with pytest.raises(RecipeError, match=r"sources\[0\]\.html: expected true or false, got 'yes'"):
        SourceSpec.from_recipe({"type": "jsonl", "path": ".", "html": "yes"}, "sources[0]")
