"""Typed artifacts: written atomically and last, read back strictly, every error naming the file and the key."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from hfscratch.core.artifacts import Artifact, ArtifactError


@dataclass
class Entry:
    score: float
    stderr: float | None = None


@dataclass
class Record(Artifact):
    FILE: ClassVar[str] = "record.json"
    SCHEMA_VERSION: ClassVar[int] = 3

    name: str
    entries: dict[str, Entry] = field(default_factory=dict)
    history: list[Entry] = field(default_factory=list)


def test_round_trip_builds_nested_dataclasses(tmp_path):
    record = Record(name="run", entries={"arc": Entry(45.5, 2.1)}, history=[Entry(1.0)])
    record.write(tmp_path)
    back = Record.read(tmp_path)
    assert back == record and isinstance(back.entries["arc"], Entry) and back.schema_version == 3
    assert not list(tmp_path.glob(".*.tmp")), "the temporary file is renamed into place"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("name"), r"record.json: missing key 'name'"),
        (lambda d: d.update(nmae="x"), r"record.json: unknown key 'nmae' \(expected one of entries, history, name"),
        (lambda d: d["entries"]["arc"].pop("score"), r"record.json: missing key 'entries.arc.score'"),
        (lambda d: d.update(schema_version=2), r"schema_version 2, this hfscratch reads 3"),
    ],
)
def test_a_file_that_does_not_match_is_an_error_naming_the_key(tmp_path, change, message):
    Record(name="run", entries={"arc": Entry(45.5)}).write(tmp_path)
    data = json.loads((tmp_path / "record.json").read_text())
    change(data)
    (tmp_path / "record.json").write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match=message):
        Record.read(tmp_path)


def test_absent_means_not_finished_and_garbage_is_an_error(tmp_path):
    assert Record.read_or_none(tmp_path) is None
    with pytest.raises(ArtifactError, match="not found"):
        Record.read(tmp_path)
    (tmp_path / "record.json").write_text('{"name": ')
    with pytest.raises(ArtifactError, match="not valid JSON"):
        Record.read_or_none(tmp_path)
