"""Reading corpora: text files split into documents, and which files a corpus path means."""

from __future__ import annotations

import io

import pytest

from hfscratch.core.recipes import RecipeError
from hfscratch.tokenization.corpus import corpus_files, file_tag, text_pieces

TEXT = "first line\r\nsame paragraph\r\n\r\n  \nsecond  \n\nthird"


@pytest.mark.parametrize(
    ("sample_by", "documents"),
    [
        ("paragraph", ["first line\r\nsame paragraph", "second  ", "third"]),
        ("line", ["first line", "same paragraph", "", "  ", "second  ", "", "third"]),
        ("document", [TEXT]),
    ],
)
def test_text_files_split_into_documents_keeping_their_text(sample_by, documents):
    assert list(text_pieces(io.StringIO(TEXT, newline=""), sample_by)) == documents


def test_curated_folder_means_its_documents_and_one_format_per_corpus(tmp_path):
    (tmp_path / "documents" / "part").mkdir(parents=True)
    (tmp_path / "documents" / "part" / "00001.jsonl.gz").write_bytes(b"")
    (tmp_path / "documents" / "00000.jsonl").write_text("")
    (tmp_path / "notes.txt").write_text("outside documents/: not read")
    fmt, files = corpus_files(tmp_path)
    assert (fmt, [f.relative_to(tmp_path).as_posix() for f in files]) == (
        "jsonl",
        ["documents/00000.jsonl", "documents/part/00001.jsonl.gz"],
    )
    (tmp_path / "documents" / "extra.parquet").write_bytes(b"")
    with pytest.raises(RecipeError, match="mixes file formats"):
        corpus_files(tmp_path)
    (tmp_path / "table.csv").write_text("text\nhello\n")
    with pytest.raises(RecipeError, match=r"table.csv is not a \.txt, \.jsonl\(\.gz\) or \.parquet file"):
        corpus_files(tmp_path / "table.csv")


def test_untagged_files_are_tagged_by_name_without_suffixes(tmp_path):
    assert file_tag(tmp_path / "web.jsonl.gz") == "web"
    assert file_tag(tmp_path / "books.txt") == "books"
