"""Tasks split a source by bytes, not by files, so that one large file keeps every core busy.

datatrove's disk readers hand whole files to tasks (`files[rank::world_size]`): a source of one 10 GB
`corpus.jsonl` runs on one core however many tasks a recipe has. Here a source's files are laid end to end
and task `r` of `W` owns bytes `[r * total / W, (r + 1) * total / W)` of that stream:

- a file that can be split (uncompressed JSON lines; Parquet) is read by every task whose range it
  overlaps, each reading the records that START in its range: a JSON line from the first byte after a
  newline, a Parquet row group by its middle byte. A record that crosses a boundary is read whole by
  the task where it starts; no record is read twice or lost.
- a file that cannot be split (gzip cannot seek; a text file is one document; a WARC is gzip) is read
  whole by the task that holds its middle byte, which balances many files by size as well.

The split depends only on the files' names and sizes, so every task, and a rerun, computes the same one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Piece:
    """What one task reads of one file: the records that start in bytes [start, end), or the whole file."""

    path: str
    start: int = 0
    end: int | None = None  # None: the whole file

    @property
    def whole(self) -> bool:
        return self.end is None

    def __str__(self) -> str:
        return self.path if self.whole else f"{self.path} bytes [{self.start:,}, {self.end:,})"


def plan_pieces(files: Sequence[tuple[str, int, bool]], rank: int, world_size: int) -> list[Piece]:
    """The pieces task `rank` reads of `files`, given as (path, size in bytes, splittable) in a fixed order."""
    total = sum(size for _, size, _ in files)
    low, high = total * rank // world_size, total * (rank + 1) // world_size
    pieces, offset = [], 0
    for path, size, splittable in files:
        if splittable and size > 0:
            start, end = max(low, offset), min(high, offset + size)
            if start < end:
                pieces.append(Piece(path, start - offset, end - offset))
        elif owner(offset + size // 2, total, world_size) == rank:
            pieces.append(Piece(path))
        offset += size
    return pieces


def owner(offset: int, total: int, world_size: int) -> int:
    """The task whose byte range holds `offset` (the last task for an empty file at the very end)."""
    return min(world_size - 1, offset * world_size // total) if total else 0


def lines_starting_in(f: BinaryIO, start: int, end: int | None) -> Iterator[tuple[int, bytes]]:
    """(line number in the whole file, line) for every line of `f` that starts in [start, end); the last may
    run past `end`. Line numbers count from the file's start, so ids like `FILE/LINE` do not depend on how
    many tasks read the file. Only "\\n" ends a line: JSON escapes it inside strings, and CRLF lines keep their
    "\\r", which JSON reads as whitespace."""
    position = 0
    if start > 0:
        f.seek(start - 1)
        f.readline()  # the rest of the line that started before `start`: an earlier task reads it
        position = f.tell()
    line_number = count_newlines(f, position)
    f.seek(position)
    while end is None or position < end:
        line = f.readline()
        if not line:
            return
        yield line_number, line
        position += len(line)
        line_number += 1


def count_newlines(f: BinaryIO, stop: int) -> int:
    """Newlines in the first `stop` bytes of `f` (about 1 GB/s: cheap beside the filters downstream)."""
    if stop == 0:
        return 0
    f.seek(0)
    count, left = 0, stop
    while left > 0:
        chunk = f.read(min(_CHUNK, left))
        if not chunk:
            break
        count += chunk.count(b"\n")
        left -= len(chunk)
    return count


def row_group_middles(metadata, data_end: int) -> list[int]:  # metadata: a pyarrow.parquet.FileMetaData
    """The middle byte of each row group of a Parquet file whose row groups end at `data_end` (where the
    footer begins). A row group goes to the task that holds its middle, i.e. most of its bytes."""
    starts = []
    for i in range(metadata.num_row_groups):
        group = metadata.row_group(i)
        offsets = []
        for j in range(group.num_columns):
            column = group.column(j)
            dictionary = column.dictionary_page_offset if column.has_dictionary_page else None
            offsets.append(dictionary or column.data_page_offset)  # some writers leave a dictionary offset of 0
        starts.append(min(offsets))
    ends = starts[1:] + [data_end]
    return [(start + end) // 2 for start, end in zip(starts, ends)]
