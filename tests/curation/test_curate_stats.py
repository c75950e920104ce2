"""What curation writes: a typed stats.json whose funnel adds up, and documents that keep what the source said
(its ids, its relative paths) and do not depend on where the output goes."""

import json

import pytest
from curation_corpora import english_documents, read_output, write_jsonl

from hfscratch.core.artifacts import ArtifactError
from hfscratch.curation.artifacts import CurationStats, FunnelRow, SourceStats


def documents_bytes(run_dir):
    return {f.name: f.read_bytes() for f in sorted((run_dir / "documents").glob("*"))}


def test_stats_json_reads_back_through_its_dataclass(tmp_path, curate):
    docs = [{"id": k, "text": v} for k, v in english_documents().items()]
    out, stats = curate([{"type": "jsonl", "path": str(write_jsonl(docs, tmp_path / "d.jsonl")), "tag": "d"}])
    typed = CurationStats.read(out)
    assert typed.schema_version == CurationStats.SCHEMA_VERSION == 1
    assert isinstance(typed.sources["d"], SourceStats) and all(isinstance(r, FunnelRow) for r in typed.funnel)
    assert typed.to_dict() == stats == json.loads((out / "stats.json").read_text())
    # today's keys, which tokenize, the model card and the quickstart read
    assert {"wall_time_s", "output", "sources", "funnel", "skipped_records", "pii_redacted", "stages"} <= set(stats)
    assert {"documents_read", "documents_kept", "chars_kept", "weight", "type"} <= set(stats["sources"]["d"])
    assert {"step", "docs_in", "docs_out", "chars_in", "chars_out", "removal_reasons"} <= set(stats["funnel"][0])
    assert typed.sources["d"].documents_kept == len(docs)
    # written last: the newest file of the run
    newest = max((p for p in out.rglob("*") if p.is_file()), key=lambda p: p.stat().st_mtime_ns)
    assert newest.name == "stats.json"
    # a stats.json of another schema is an error that names the file
    (out / "stats.json").write_text(json.dumps(stats | {"schema_version": 99}))
    with pytest.raises(ArtifactError, match="stats.json: schema_version 99"):
        CurationStats.read(out)


def test_funnel_characters_add_up_with_warc_and_jsonl_sources_mixed(tmp_path, shared_data, curate):
    """HTML extraction sees the WARC documents only; the funnel's rows still measure the whole stream."""
    docs = [{"id": k, "text": v} for k, v in english_documents().items()]
    jsonl = write_jsonl(docs, tmp_path / "d.jsonl")
    warc = shared_data / "corpora" / "warc" / "web-sample-0000.warc.gz"
    out, stats = curate(
        [{"type": "warc", "path": str(warc), "tag": "web"}, {"type": "jsonl", "path": str(jsonl), "tag": "docs"}],
        pii_redaction=True,
    )
    funnel, documents = stats["funnel"], read_output(out)
    output_chars = sum(len(d["text"]) for d in documents)
    assert [r["step"] for r in funnel][:2] == ["read", "Trafilatura (HTML to text)"]
    assert funnel[0]["docs_out"] == stats["sources"]["web"]["documents_read"] + len(docs)
    for previous, row in zip(funnel, funnel[1:]):
        assert row["docs_in"] == previous["docs_out"] and row["chars_in"] == previous["chars_out"], row
    size = next(r for r in funnel if r["step"] == "Document size")  # drops nothing here (min_doc_chars=1)
    extracted = next(s for s in stats["stages"]["filter"] if "Trafilatura" in s["name"])["stats"]["doc_len"]
    assert size["docs_in"] == size["docs_out"] == len(documents)
    assert size["chars_in"] == size["chars_out"] == sum(len(d["text"]) for d in docs) + extracted["total"]
    assert funnel[-1]["step"] == "PII redaction" and funnel[-1]["chars_out"] == output_chars


def test_output_does_not_depend_on_the_output_folder(tmp_path, curate):
    """The same corpus curated into two folders gives the same bytes: no absolute path of the source or of the
    run folder's intermediate files leaks into the documents."""
    docs = [{"id": k, "text": v} for k, v in english_documents().items()]
    folder = tmp_path / "corpus"
    write_jsonl(docs[: len(docs) // 2], folder / "a.jsonl")
    (folder / "notes").mkdir()
    (folder / "notes" / "b.md").write_text(docs[-1]["text"])
    sources = [
        {"type": "python-docs", "tag": "python", "limit": 5},  # no file_path of its own
        {"type": "jsonl", "path": str(folder / "a.jsonl"), "tag": "a"},
        {"type": "text", "path": str(folder / "notes"), "tag": "b"},
    ]
    first, _ = curate(sources, output="one")
    second, _ = curate(sources, output="somewhere-else")
    assert documents_bytes(first) == documents_bytes(second)
    paths = {d["metadata"]["source"]: d["metadata"].get("file_path") for d in read_output(first)}
    assert paths == {"python": None, "a": "a.jsonl", "b": "b.md"}  # relative to each source's folder


def test_source_ids_are_kept_as_given(tmp_path, curate):
    text = "An ordinary paragraph of English text, long enough to pass every size check there is. " * 3
    records = [{"id": 0, "text": text + "zero"}, {"id": "1", "text": text + "one"}, {"id": "a/b", "text": text + "ab"}]
    records.append({"text": text + "no id"})
    out, _ = curate([{"type": "jsonl", "path": str(write_jsonl(records, tmp_path / "ids.jsonl"))}])
    ids = {d["text"][len(text) :]: d["id"] for d in read_output(out)}
    assert ids == {"zero": "0", "one": "1", "ab": "a/b", "no id": "ids.jsonl/3"}
