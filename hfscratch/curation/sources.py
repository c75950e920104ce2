"""Sources: where curated text comes from, each tagged (and weighted) for the later mixture.

A recipe lists sources as mappings, e.g. `{type: warc, path: crawl/, tag: web, weight: 0.5}`. Each becomes
a datatrove reader that stamps `metadata["source"] = tag` on its documents. Readers that datatrove lacks
(a folder of text files, the embedded Python documentation) are defined here, and every file reader skips
what it cannot read (binary files, invalid UTF-8, truncated archives) or what holds nothing (zero-byte files,
records with empty text), counting each reason in its stats and naming the file in a warning, so one bad file
never stops a run.

What a source says about a document is kept as given: its id (as a string; a record without one is named
`FILE/LINE`), and `metadata["file_path"]` relative to the source's folder, so the curated bytes do not depend
on where the source or the output folder lie.

Tasks split a file source by bytes (sharding.py): one large JSONL or Parquet file is read by every task, each
reading the records that start in its byte range; gzip files, text files and WARCs go whole to one task each.
A source flagged `html: true` holds HTML pages, extracted with Trafilatura exactly as WARC pages are.
"""

from __future__ import annotations

import ast
import csv
import gzip
import hashlib
import importlib.metadata
import os
import re
import sysconfig
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers import HuggingFaceDatasetReader, ParquetReader, WarcReader
from datatrove.pipeline.readers.base import BaseDiskReader, BaseReader
from datatrove.utils.logging import logger

from hfscratch.core.recipes import RecipeError
from hfscratch.curation.extraction import BoundedTrafilatura
from hfscratch.curation.sharding import Piece, lines_starting_in, plan_pieces, row_group_middles

SOURCE_TYPES = ("text", "jsonl", "parquet", "warc", "wet", "hf", "python-docs")
# Which files of a folder each type reads by default (fsspec globs have no {a,b} alternatives). Text
# sources read every file: binary ones are recognised and skipped.
DEFAULT_GLOBS: dict[str, str | None] = {
    "text": None,
    "jsonl": "**/*.jsonl*",
    "parquet": "**/*.parquet",
    "warc": "**/*.warc.gz",
    "wet": "**/*.wet.gz",
}
HTML_TYPES = ("text", "jsonl", "parquet", "hf")


@dataclass
class SourceSpec:
    """One entry of a recipe's `sources:` list."""

    type: str
    tag: str = ""  # default: the type, or the file/folder name
    weight: float = 1.0  # mixture weight for step 1b (tokenize)
    path: str | None = None  # a folder or a single file, for file-based types
    glob: str | None = None  # which files in the folder (default: by type, recursive)
    text_key: str = "text"  # jsonl, parquet, hf
    id_key: str = "id"
    dataset: str | None = None  # hf: a Hub id or a local dataset folder
    config: str | None = None
    split: str = "train"
    limit: int = -1  # documents per task, -1 for all
    html: bool = False  # the texts are HTML pages: extracted with Trafilatura, as WARC pages are

    @classmethod
    def from_recipe(cls, entry: Any, where: str) -> SourceSpec:
        """Validate one `sources` entry; errors name it as `where` (e.g. `recipe.yaml: sources[2]`)."""
        if not isinstance(entry, dict):
            raise RecipeError(f"{where}: expected a mapping such as {{type: text, path: docs/}}, got {entry!r}")
        known = {f.name for f in fields(cls)}
        for key in entry:
            if key not in known:
                raise RecipeError(f"{where}: unknown key {key!r}; a source takes {', '.join(sorted(known))}")
        if entry.get("type") not in SOURCE_TYPES:
            raise RecipeError(f"{where}.type: expected one of {', '.join(SOURCE_TYPES)}, got {entry.get('type')!r}")
        spec = cls(**entry)
        if spec.type in DEFAULT_GLOBS:
            if not spec.path:
                raise RecipeError(f"{where}.path: a {spec.type} source needs a path (a folder or a file)")
            if not Path(spec.path).expanduser().exists():
                raise RecipeError(f"{where}.path: {spec.path} does not exist")
        if spec.type == "hf" and not spec.dataset:
            raise RecipeError(f"{where}.dataset: an hf source needs a dataset (a Hub id or a local folder)")
        if not isinstance(spec.html, bool):
            raise RecipeError(f"{where}.html: expected true or false, got {spec.html!r}")
        if spec.html and spec.type not in HTML_TYPES:
            raise RecipeError(
                f"{where}.html: only {', '.join(HTML_TYPES)} sources can hold HTML pages (warc always does)"
            )
        if not isinstance(spec.weight, (int, float)) or spec.weight <= 0:
            raise RecipeError(f"{where}.weight: expected a positive number, got {spec.weight!r}")
        spec.tag = spec.tag or (Path(spec.path).stem if spec.path else spec.type)
        return spec

    def folder_and_glob(self) -> tuple[str, str | None]:
        """A single file becomes its folder plus its own name as the glob."""
        path = Path(self.path).expanduser()
        if path.is_file():
            return str(path.parent), path.name
        return str(path), self.glob or DEFAULT_GLOBS[self.type]


# -- Readers ----------------------------------------------------------------------------------------------


def skip(step: PipelineStep, reason: str, where: str) -> None:
    """Count one skipped input as `skipped_<reason>` (the report's "skipped" table) and name it in the log."""
    step.stat_update(f"skipped_{reason}")
    logger.warning(f"{where}: skipped ({reason.replace('_', ' ')})")


class SourceReader(BaseReader):
    """Mixin for every source's reader: ids kept as given, paths relative to the source, empty text counted.

    datatrove's writers drop falsy fields, so an id of 0 or "" would come back as the intermediate file's
    `00000.jsonl/LINE`: ids are made strings here, and a missing or empty one becomes `FILE/LINE`. Its disk
    readers record `file_path` as an absolute path, which would make the output depend on where the data
    lies; the adapter records the path relative to the source's folder first, and datatrove keeps it.
    """

    def source_adapter(self, data: dict, path: str, id_in_file: int | str) -> dict:
        parsed = self._default_adapter(data, path, id_in_file)
        doc_id = parsed["id"]
        parsed["id"] = f"{path}/{id_in_file}" if doc_id is None or doc_id == "" else str(doc_id)
        if isinstance(self, BaseDiskReader):
            parsed["metadata"].setdefault("file_path", path)  # relative to the source's folder
        return parsed

    max_bytes: int | None = None  # a record whose text is longer in UTF-8 is skipped (set by reader_for)

    def get_document_from_dict(self, data: dict, source_file: str, id_in_file: int | str) -> Document | None:
        document = super().get_document_from_dict(data, source_file, id_in_file)
        if document is None or not document.text.strip():
            skip(self, "empty_text", f"{source_file} record {id_in_file}")
            return None
        if self.max_bytes is not None and utf8_length_exceeds(document.text, self.max_bytes):
            # What one document costs the steps after (HTML extraction, repetition n-grams) grows with its size
            # and the largest document grows with the corpus: a bound keeps peak memory flat.
            skip(self, "too_large", f"{source_file} record {id_in_file}")
            return None
        return document


def utf8_length_exceeds(text: str, limit: int) -> bool:
    """len(text.encode()) > limit, without encoding the texts whose length already decides it (1-4 bytes a
    character)."""
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit


# What makes a whole file unreadable, by the exceptions that reading it raises.
_UNREADABLE = (EOFError, OSError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError, ValueError)


class ByteShardedReader(BaseDiskReader):
    """A disk reader whose tasks split the source by bytes (sharding.py) instead of by files.

    A reader that can read part of a file says so in `layout` and reads a `Piece` in `read_piece`; the
    others read whole files with `read_file`, as datatrove's do. `limit` and `skip` count per task, and
    `input_files` counts each file once (in the task that reads its start), as datatrove's readers do.
    """

    def layout(self, filepath: str) -> tuple[int, bool]:
        """The bytes of a file that its records lie in (which tasks divide between them), and whether this
        reader can read part of it."""
        return self.data_folder.size(filepath), False

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        paths = self.data_folder.list_files(recursive=self.recursive, glob_pattern=self.glob_pattern)
        if not paths:
            raise RuntimeError(f"No files found on {self.data_folder.path}!")
        files = [(path, *self.layout(path)) for path in paths]
        if rank == 0:
            self.warn_unsplittable(files, world_size)
        self._log_limit_scope(rank, world_size)
        read = skipped = 0
        for piece in plan_pieces(files, rank, world_size):
            if self.limit != -1 and read >= self.limit:
                break
            if piece.start == 0:
                self.stat_update("input_files")
            logger.info(f"Reading {piece}")
            in_piece = 0
            for document in self.read_piece(piece):
                if skipped < self.skip:
                    skipped += 1
                    continue
                if self.limit != -1 and read >= self.limit:
                    break
                read += 1
                in_piece += 1
                self.update_doc_stats(document)
                yield document
            self.stat_update("documents", value=in_piece, unit="input_file")

    def read_piece(self, piece: Piece) -> DocumentsPipeline:
        yield from self.read_file(piece.path)

    def warn_unsplittable(self, files: list[tuple[str, int, bool]], world_size: int) -> None:
        """Name a whole file larger than a task's share: one task reads it, and the others may wait."""
        share = sum(size for _, size, _ in files) / world_size
        for path, size, splittable in files:
            if not splittable and world_size > 1 and size > share:
                logger.warning(
                    f"{path}: {size:,} bytes, more than a task's share ({share:,.0f}), cannot be split "
                    "(gzip cannot seek; a text file is one document): one task reads it whole. "
                    "Decompress or split it to use every core."
                )


class SkipUnreadableFiles(ByteShardedReader):
    """Mixin for file readers: a zero-byte file is skipped as `skipped_empty_file`; a file that breaks off
    (truncated gzip or WARC, corrupt bytes) keeps the documents read before the break, and the rest of the
    task's piece is skipped, counted as `skipped_unreadable_file`. Each is named in a warning."""

    def read_piece(self, piece: Piece) -> DocumentsPipeline:
        if piece.whole and self.data_folder.size(piece.path) == 0:
            skip(self, "empty_file", self.data_folder.resolve_paths(piece.path))
            return
        try:
            yield from super().read_piece(piece)
        except _UNREADABLE as exc:
            self.stat_update("skipped_unreadable_file")
            logger.warning(f"{piece}: unreadable after some records ({type(exc).__name__}: {exc}); skipped the rest")


class TextFileReader(ByteShardedReader):
    """One document per text or Markdown file; the id is the path relative to the folder."""

    name = "📄 Text files"

    def __init__(self, data_folder: str, glob_pattern: str | None, max_bytes: int, **kwargs) -> None:
        super().__init__(data_folder, glob_pattern=glob_pattern, **kwargs)
        self.max_bytes = max_bytes

    def read_file(self, filepath: str) -> DocumentsPipeline:
        with self.data_folder.open(filepath, "rb") as f:
            raw = f.read(self.max_bytes + 1)
        if not raw:
            reason = "empty_file"
        elif len(raw) > self.max_bytes:
            reason = "too_large"
        elif b"\x00" in raw[:8192]:
            reason = "binary"
        else:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                reason = "invalid_utf8"
            else:
                document = self.get_document_from_dict({"text": text, "id": filepath}, filepath, 0)
                if document:
                    yield document
                return
        skip(self, reason, self.data_folder.resolve_paths(filepath))


class JsonlLineReader(ByteShardedReader):
    """JSON lines, split between tasks by byte ranges; a gzip-compressed file (`.gz`, which cannot seek) is
    read whole by one task. A line that is not JSON (invalid UTF-8 included), or has no text, is skipped and
    counted; datatrove's `JsonlReader` only logs those."""

    name = "🐿 Jsonl"

    def layout(self, filepath: str) -> tuple[int, bool]:
        return self.data_folder.size(filepath), not filepath.endswith(".gz")

    def read_file(self, filepath: str) -> DocumentsPipeline:
        yield from self.read_piece(Piece(filepath))

    def read_piece(self, piece: Piece) -> DocumentsPipeline:
        import json

        filepath = piece.path
        compression = "gzip" if filepath.endswith(".gz") else None
        with self.data_folder.open(filepath, "rb", compression=compression) as f:
            for line_number, line in lines_starting_in(f, piece.start, piece.end):
                try:
                    record = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    self.stat_update("skipped_invalid_json")
                    logger.warning(f"{filepath}:{line_number + 1}: not JSON, skipped")
                    continue
                if not isinstance(record, dict) or not isinstance(record.get(self.text_key), str):
                    self.stat_update("skipped_no_text")
                    logger.warning(f"{filepath}:{line_number + 1}: no string {self.text_key!r} field, skipped")
                    continue
                document = self.get_document_from_dict(record, filepath, line_number)
                if document:
                    yield document


class RowGroupParquetReader(ByteShardedReader, ParquetReader):
    """Parquet, split between tasks by row groups: each task reads the row groups whose middle byte lies in
    its byte range. A record's id in the file is its row number (a file written in one row group goes to one task:
    write Parquet with several row groups, as datatrove's and pyarrow's writers do for large files)."""

    def layout(self, filepath: str) -> tuple[int, bool]:
        """The file without its footer (row-group statistics of long texts can make it a large share). A file
        whose footer cannot be read goes whole to one task, which names it as unreadable."""
        import pyarrow.parquet as pq

        size = self.data_folder.size(filepath)
        try:
            with self.data_folder.open(filepath, "rb") as f, pq.ParquetFile(f) as parquet:
                return size - parquet.metadata.serialized_size - 8, True  # footer, its length, the magic bytes
        except _UNREADABLE:  # pyarrow's errors are OSError or ValueError
            return size, False

    def read_file(self, filepath: str) -> DocumentsPipeline:
        yield from self.read_piece(Piece(filepath))

    def read_piece(self, piece: Piece) -> DocumentsPipeline:
        import pyarrow.parquet as pq

        columns = None if self.read_metadata else [self.text_key, self.id_key]
        with self.data_folder.open(piece.path, "rb") as f, pq.ParquetFile(f) as parquet:
            data_end = self.data_folder.size(piece.path) - parquet.metadata.serialized_size - 8
            middles = row_group_middles(parquet.metadata, data_end)
            first_rows = [0]
            for i in range(parquet.metadata.num_row_groups):
                first_rows.append(first_rows[-1] + parquet.metadata.row_group(i).num_rows)
            for group, middle in enumerate(middles):
                if not piece.whole and not piece.start <= middle < piece.end:
                    continue
                row = first_rows[group]
                for batch in parquet.iter_batches(batch_size=self.batch_size, row_groups=[group], columns=columns):
                    with self.track_time("batch"):
                        documents = []
                        for record in batch.to_pylist():
                            document = self.get_document_from_dict(record, piece.path, row)
                            row += 1
                            if document:
                                documents.append(document)
                    yield from documents


class SourceTextFileReader(SourceReader, TextFileReader):
    pass


class SafeJsonlReader(SourceReader, SkipUnreadableFiles, JsonlLineReader):
    pass


class SafeParquetReader(SourceReader, SkipUnreadableFiles, RowGroupParquetReader):
    pass


class SafeWarcReader(SourceReader, SkipUnreadableFiles, WarcReader):
    pass


class SourceHFReader(SourceReader, HuggingFaceDatasetReader):
    pass


class PythonDocsReader(SourceReader):
    """The embedded default corpus: the documentation installed with this Python environment.

    Every distribution's README (its metadata description) and licence files, the standard library's
    reference topics (`pydoc_data.topics`) and its API docstrings (read with `ast`, never imported).
    Real text by thousands of authors, offline everywhere, and messy like web data: the same licences in
    hundreds of packages, badges and install boilerplate, URLs and e-mail addresses, other languages.
    """

    name = "🐍 Python docs"
    LICENSE_FILE = re.compile(r"(?:^|/)(?:LICEN[CS]E|COPYING|NOTICE)[^/]*$", re.IGNORECASE)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:
            yield from data
        read = 0
        for index, (doc_id, kind, load) in enumerate(self.items()):
            # Shard by the id, not the position: worker processes can see slightly different environments
            # (sys.path, the working directory), and a shifted list must not hand a document to two tasks.
            if int(hashlib.md5(doc_id.encode()).hexdigest(), 16) % world_size != rank:
                continue
            if self.limit != -1 and read >= self.limit:  # per task, as datatrove's readers count it
                break
            with self.track_time():
                record = {"text": load() or "", "id": doc_id, "kind": kind}
                document = self.get_document_from_dict(record, f"python-docs:{doc_id}", index)
            if document:
                read += 1
                self.update_doc_stats(document)
                yield document

    def items(self) -> Iterator[tuple[str, str, Callable[[], str | None]]]:
        """(id, kind, loader of the text) for every document, in a fixed order."""
        yield from self.distribution_docs()
        yield from self.stdlib_topics()
        yield from self.stdlib_docstrings()

    def distribution_docs(self) -> Iterator[tuple[str, str, Callable[[], str | None]]]:
        seen = set()
        dists = sorted(importlib.metadata.distributions(), key=lambda d: (d.metadata["Name"] or "").lower())
        for dist in dists:
            name = dist.metadata["Name"]
            if not name or name.lower() in seen:
                continue
            seen.add(name.lower())
            yield (
                f"pypi/{name}/README",
                "readme",
                lambda dist=dist: dist.metadata.get_payload() or dist.metadata["Description"],
            )
            for file in sorted(self.license_files(dist), key=str):
                yield f"pypi/{name}/{file.as_posix()}", "license", lambda file=file: read_text_or_none(file)

    @classmethod
    def license_files(cls, dist: importlib.metadata.Distribution) -> list[importlib.metadata.PackagePath]:
        """The distribution's installed licence files. Every task lists them, so RECORD's names are matched as
        text and only the matches become paths: `dist.files` would build a path for every installed file (74,000
        in the kit's environment, lm-eval's and torch's 31,000 of them; 0.8 s a task)."""
        record = dist.read_text("RECORD")
        if record is None:  # an egg or a legacy install: no RECORD, importlib's other sources of the list
            return [file for file in dist.files or [] if cls.LICENSE_FILE.search(str(file))]
        files = []
        for row in csv.reader(record.splitlines()):
            if row and cls.LICENSE_FILE.search(row[0]):
                file = importlib.metadata.PackagePath(row[0])
                file.dist = dist  # as `dist.files` sets it: read_text() reads it from the distribution's folder
                files.append(file)
        return files

    @staticmethod
    def stdlib_topics() -> Iterator[tuple[str, str, Callable[[], str | None]]]:
        from pydoc_data.topics import topics

        for name in sorted(topics):
            yield f"stdlib/topics/{name}", "reference", lambda name=name: topics[name]

    @staticmethod
    def stdlib_docstrings() -> Iterator[tuple[str, str, Callable[[], str | None]]]:
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        for path in sorted(stdlib_modules(stdlib)):
            relative = path.relative_to(stdlib)
            yield f"stdlib/{relative.with_suffix('').as_posix()}", "docstring", lambda path=path: module_docstring(path)


STDLIB_SKIPPED_FOLDERS = ("site-packages", "test", "idlelib", "lib2to3")


def stdlib_modules(stdlib: Path) -> Iterator[Path]:
    """The standard library's `.py` files, without its tests, IDLE, lib2to3 and site-packages: those folders are
    never walked (an `rglob` of everything took 0.5 s a task, most of it in site-packages and the tests)."""
    for folder, subfolders, files in os.walk(stdlib):
        top = Path(folder) == stdlib
        subfolders[:] = [
            name for name in subfolders if name != "tests" and not (top and name in STDLIB_SKIPPED_FOLDERS)
        ]
        yield from (Path(folder, name) for name in files if name.endswith(".py"))


def read_text_or_none(file: Any) -> str | None:
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def module_docstring(path: Path) -> str | None:
    """A module's API documentation, read with `ast` (importing every module would run its code): the module
    docstring, then each class, function and method with its signature and docstring."""
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError):
        return None
    parts = [ast.get_docstring(tree) or ""]
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            docstring = ast.get_docstring(node)
            if docstring:
                signature = "" if isinstance(node, ast.ClassDef) else f"({ast.unparse(node.args)})"
                kind = "class" if isinstance(node, ast.ClassDef) else "def"
                parts.append(f"{kind} {node.name}{signature}:\n{docstring}")
    text = "\n\n".join(p for p in parts if p)
    return text or None


def reader_for(spec: SourceSpec, max_doc_bytes: int) -> PipelineStep:
    """The datatrove reader of one source. It stamps the source's tag on every document, and carries the
    tag in its name so that the report can count documents per source."""
    common: dict[str, Any] = {
        "default_metadata": {"source": spec.tag},
        "limit": spec.limit,
        "adapter": SourceReader.source_adapter,
    }
    if spec.type == "python-docs":
        reader = PythonDocsReader(**common)
    elif spec.type == "hf":
        options = {"split": spec.split} | ({"name": spec.config} if spec.config else {})
        reader = SourceHFReader(
            spec.dataset, dataset_options=options, streaming=True, text_key=spec.text_key, id_key=spec.id_key, **common
        )
    else:
        folder, glob = spec.folder_and_glob()
        keys = {"text_key": spec.text_key, "id_key": spec.id_key}
        if spec.type == "text":
            reader = SourceTextFileReader(folder, glob, max_doc_bytes, **common)
        elif spec.type == "jsonl":
            reader = SafeJsonlReader(folder, glob_pattern=glob, **keys, **common)
        elif spec.type == "parquet":
            reader = SafeParquetReader(folder, glob_pattern=glob, **keys, **common)
        else:  # warc and wet
            reader = SafeWarcReader(folder, glob_pattern=glob, **common)
    reader.max_bytes = max_doc_bytes
    reader.name = f"{reader.name} [{spec.tag}]"
    reader.stats.name = str(reader)
    return reader


def reading_steps(
    specs: list[SourceSpec], max_doc_bytes: int, extraction_memory_mb: int | None = None
) -> list[PipelineStep]:
    """Readers for every source, in one pipeline.

    A datatrove reader passes the documents it receives through before its own, so readers chain. Sources of
    HTML pages (WARC, and any flagged `html: true`) come first and are followed by the HTML extractor, so
    that only their pages are extracted; every other source (WET text included) joins after it. Each
    extraction may grow the extractor's process by at most `extraction_memory_mb` (extraction.py).
    """
    holds_html = [s.type == "warc" or s.html for s in specs]
    html = [reader_for(s, max_doc_bytes) for s, is_html in zip(specs, holds_html) if is_html]
    text = [reader_for(s, max_doc_bytes) for s, is_html in zip(specs, holds_html) if not is_html]
    extractor = BoundedTrafilatura(memory_budget_mb=extraction_memory_mb, favour_precision=True, timeout=5.0)
    return html + ([extractor] if html else []) + text
