"""Read a corpus into a `datasets.Dataset` of documents: `text`, `id`, `source` (the curation step's tag).

Accepted: the curation step's folder (`documents/*.jsonl.gz` or `documents/*.parquet`, records
`{"text", "id", "metadata": {"source"}}`, plus `stats.json` with a mixture weight per source), a folder of
.txt or JSON-lines files, or one such file. A record without a source tag is tagged with its file's stem, and
one without an id gets `STEM/N`. Reading streams through `Dataset.from_generator`, which writes Arrow files
in batches, so a corpus larger than memory never sits in memory.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
from datasets import Dataset, Features, Value

from hfscratch.core.recipes import RecipeError

FORMATS = {  # format -> file name patterns; one corpus holds files of one format
    "jsonl": ("*.jsonl", "*.jsonl.gz", "*.json.gz"),
    "parquet": ("*.parquet",),
    "text": ("*.txt",),
}
DOCUMENT_FEATURES = Features({"text": Value("string"), "id": Value("string"), "source": Value("string")})


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


def file_tag(path: Path) -> str:
    """The source tag of a file without tags: its name without suffixes (`web.jsonl.gz` -> `web`)."""
    return path.name.split(".")[0]


def read_records(path: Path, fmt: str, text_sample_by: str) -> Iterator[dict]:
    """The raw records of one file, as dicts with at least `text`."""
    if fmt == "parquet":
        for batch in pq.ParquetFile(path).iter_batches():
            yield from batch.to_pylist()
    elif fmt == "jsonl":
        with (gzip.open if path.suffix == ".gz" else open)(path, "rt", encoding="utf-8") as lines:
            yield from (json.loads(line) for line in lines if line.strip())
    else:
        with open(path, encoding="utf-8", newline="") as lines:  # newline="": line endings kept as written
            yield from ({"text": piece} for piece in text_pieces(lines, text_sample_by))


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
    """`Dataset.from_generator` body; `files` is the shard list it splits between worker processes."""
    for name in files:
        path = Path(name)
        for number, record in enumerate(read_records(path, fmt, text_sample_by)):
            text = record.get("text")
            if not text or not text.strip():
                continue
            metadata = record.get("metadata") or {}
            yield {
                "text": text,
                "id": str(record.get("id") or f"{file_tag(path)}/{number}"),
                "source": str(metadata.get("source") or record.get("source") or file_tag(path)),
            }


def load_documents(corpus: Path, text_sample_by: str, cache_dir: Path, num_proc: int) -> Dataset:
    """Every non-empty document of the corpus; a `RecipeError` if there are none."""
    fmt, files = corpus_files(corpus)
    gen_kwargs = {"files": [str(f) for f in files], "fmt": fmt, "text_sample_by": text_sample_by}
    if next(generate_documents(**gen_kwargs), None) is None:  # reads up to the first document only
        raise RecipeError(f"key 'corpus': empty corpus, no non-empty documents in {len(files)} file(s) under {corpus}")
    return Dataset.from_generator(
        generate_documents,
        features=DOCUMENT_FEATURES,
        gen_kwargs=gen_kwargs,
        cache_dir=str(cache_dir),
        num_proc=min(num_proc, len(files)) if len(files) > 1 else None,
    )


def curated_weights(corpus: Path) -> dict[str, float]:
    """Mixture weights the curation step recorded in `stats.json` (`{"sources": {TAG: {"weight": w}}}`)."""
    stats_file = corpus / "stats.json"
    if not stats_file.is_file():
        return {}
    sources = json.loads(stats_file.read_text(encoding="utf-8")).get("sources", {})
    return {tag: float(entry["weight"]) for tag, entry in sources.items() if "weight" in entry}
