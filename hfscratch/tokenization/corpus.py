"""Read a corpus into a `datasets.Dataset` of documents: `text`, `id`, `source` (the curation step's tag).

Accepted: the curation step's folder (`documents/*.jsonl.gz` or `documents/*.parquet`, records
`{"text", "id", "metadata": {"source"}}`, plus `stats.json` with a mixture weight per source), a folder of
.txt or JSON-lines files, or one such file. A record without a source tag is tagged with its file's stem, and
one without an id gets `STEM/N`. Reading streams through `Dataset.from_generator`, which writes Arrow files
in batches, so a corpus larger than memory never sits in memory.

Records that cannot be read (a line that is not a JSON object, a text that is not a string) and empty texts
are skipped and counted, as the curation step does: they come out of the generator as rows with a `skipped`
reason (`FILE:LINE: what is wrong`), so the counts survive the worker processes, and are split off after.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from datasets import Dataset, Features, Value

from hfscratch.core.artifacts import ArtifactError
from hfscratch.core.recipes import RecipeError
from hfscratch.curation.artifacts import CurationStats
from hfscratch.tokenization.documents import file_tag

FORMATS = {  # format -> file name patterns; one corpus holds files of one format
    "jsonl": ("*.jsonl", "*.jsonl.gz", "*.json.gz"),
    "parquet": ("*.parquet",),
    "text": ("*.txt",),
}
DOCUMENT_FEATURES = Features({"text": Value("string"), "id": Value("string"), "source": Value("string")})
READ_FEATURES = Features({**DOCUMENT_FEATURES, "skipped": Value("string")})
SKIPPED_EXAMPLES = 5  # FILE:LINE examples kept in stats.json and shown in the warning


@dataclass
class Corpus:
    """The readable documents of a corpus, and what was skipped: counts by reason and the first examples."""

    documents: Dataset
    skipped: dict[str, int]
    skipped_examples: list[str]


def corpus_files(corpus: Path) -> tuple[str, list[Path]]:
    """The format and the files of a corpus path (a curated folder's `documents/` if it has one)."""
    if corpus.is_file():
        return file_format(corpus), [corpus]
    root = corpus / "documents" if (corpus / "documents").is_dir() else corpus
    found = {fmt: sorted(p for pattern in patterns for p in root.rglob(pattern)) for fmt, patterns in FORMATS.items()}
    found = {fmt: files for fmt, files in found.items() if files}
    if not found:
        patterns = ", ".join(p for ps in FORMATS.values() for p in ps)
        raise RecipeError(f"key 'corpus': empty corpus, {root} holds no document files ({patterns})")
    if len(found) > 1:
        raise RecipeError(f"key 'corpus': {root} mixes file formats ({', '.join(found)}); keep one per corpus")
    ((fmt, files),) = found.items()
    return fmt, files


def file_format(path: Path) -> str:
    for fmt, patterns in FORMATS.items():
        if any(path.match(pattern) for pattern in patterns):
            return fmt
    raise RecipeError(f"key 'corpus': {path} is not a .txt, .jsonl(.gz) or .parquet file")


class UnreadableRecord(ValueError):
    """One record that is not a document; the message is the reason, for the skipped counts."""


def read_records(path: Path, fmt: str, text_sample_by: str) -> Iterator[tuple[int, dict | UnreadableRecord]]:
    """The raw records of one file with their line (JSONL) or record number, each a dict or the reason it is not."""
    if fmt == "parquet":
        number = 0
        for batch in pq.ParquetFile(path).iter_batches():
            for record in batch.to_pylist():
                number += 1
                yield number, record
    elif fmt == "jsonl":
        with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    yield number, parse_json_record(line)
    else:
        with open(path, encoding="utf-8", newline="") as lines:  # newline="": line endings kept as written
            yield from ((number, {"text": piece}) for number, piece in enumerate(text_pieces(lines, text_sample_by), 1))


def parse_json_record(line: str) -> dict | UnreadableRecord:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return UnreadableRecord(f"not valid JSON ({exc.msg})")
    if not isinstance(record, dict):
        return UnreadableRecord(f"not a JSON object (a {type(record).__name__})")
    return record


def text_pieces(lines: Iterable[str], text_sample_by: str) -> Iterator[str]:
    """The documents of a text file, read line by line: each line, each paragraph, or the whole file."""
    if text_sample_by == "document":
        yield "".join(lines)
    elif text_sample_by == "line":
        yield from (line.rstrip("\r\n") for line in lines)
    else:
        paragraph: list[str] = []
        for line in lines:
            if line.strip():
                paragraph.append(line)
            elif paragraph:  # a blank line ends the paragraph
                yield "".join(paragraph).rstrip("\r\n")
                paragraph = []
        if paragraph:
            yield "".join(paragraph).rstrip("\r\n")


def generate_documents(files: list[str], fmt: str, text_sample_by: str) -> Iterator[dict]:
    """`Dataset.from_generator` body; `files` is the shard list it splits between worker processes. Every
    record comes out: a document with `skipped` empty, or a row whose `skipped` says why it is not one."""
    for name in files:
        path = Path(name)
        for number, record in read_records(path, fmt, text_sample_by):
            where = f"{path}:{number}"
            if isinstance(record, UnreadableRecord):
                yield {"text": "", "id": where, "source": "", "skipped": f"{where}: {record}"}
                continue
            text = record.get("text")
            if not isinstance(text, str) or not text.strip():
                reason = "empty text" if text is None or isinstance(text, str) else "text is not a string"
                yield {"text": "", "id": where, "source": "", "skipped": f"{where}: {reason}"}
                continue
            metadata = record.get("metadata") or {}
            given_id = record.get("id")
            yield {
                "text": text,
                "id": str(given_id) if given_id is not None and given_id != "" else f"{file_tag(path)}/{number - 1}",
                "source": str(metadata.get("source") or record.get("source") or file_tag(path)),
                "skipped": "",
            }


def skip_reason(message: str) -> str:
    """`FILE:LINE: not valid JSON (Expecting value)` -> `not valid JSON`: the reason, for the counts."""
    return message.rsplit(": ", 1)[-1].split(" (")[0]


def load_documents(corpus: Path, text_sample_by: str, cache_dir: Path, num_proc: int) -> Corpus:
    """Every non-empty document of the corpus and what was skipped; a `RecipeError` if there are no documents."""
    fmt, files = corpus_files(corpus)
    gen_kwargs = {"files": [str(f) for f in files], "fmt": fmt, "text_sample_by": text_sample_by}
    records = Dataset.from_generator(
        generate_documents,
        features=READ_FEATURES,
        gen_kwargs=gen_kwargs,
        cache_dir=str(cache_dir),
        num_proc=min(num_proc, len(files)) if len(files) > 1 else None,
    )
    skipped_rows = records.filter(lambda reasons: [bool(r) for r in reasons], batched=True, input_columns="skipped")
    messages = skipped_rows["skipped"]
    documents = records.filter(lambda reasons: [not r for r in reasons], batched=True, input_columns="skipped")
    if len(documents) == 0:
        raise RecipeError(f"key 'corpus': empty corpus, no non-empty documents in {len(files)} file(s) under {corpus}")
    return Corpus(
        documents=documents.remove_columns("skipped"),
        skipped=dict(Counter(skip_reason(message) for message in messages)),
        skipped_examples=messages[:SKIPPED_EXAMPLES],
    )


def curated_weights(corpus: Path) -> dict[str, float]:
    """Mixture weights the curation step recorded per source in its `stats.json` (none for other corpora)."""
    try:
        stats = CurationStats.read_or_none(corpus) if corpus.is_dir() else None
    except ArtifactError as exc:
        raise RecipeError(f"key 'corpus': {exc}") from None
    return {tag: float(source.weight) for tag, source in stats.sources.items()} if stats else {}
