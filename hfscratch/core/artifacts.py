"""Typed artifacts: the JSON files one step writes and later steps, the model card and the quickstart read.

Each artifact is a dataclass with a `schema_version`, written atomically (a temporary file renamed into place)
as the last thing its step does, so its presence is the step's completion marker, and read back through the
same dataclass: a renamed or missing key is an `ArtifactError` that names the file and the key, never a silent
"not recorded" further down the line.

    @dataclass
    class RunInfo(Artifact):
        FILE: ClassVar[str] = "run_info.json"
        SCHEMA_VERSION: ClassVar[int] = 1
        steps: int = 0

    RunInfo(steps=60).write(folder)      # folder/run_info.json, written last
    RunInfo.read(folder).steps           # 60; ArtifactError if absent, of another schema, or malformed
    RunInfo.read_or_none(folder)         # None when the step has not finished
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union

T = TypeVar("T", bound="Artifact")


class ArtifactError(ValueError):
    """An artifact that is missing, of another schema version, or does not match its dataclass. One line."""


@dataclasses.dataclass
class Artifact:
    FILE: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: int = dataclasses.field(default=0, kw_only=True)

    def __post_init__(self) -> None:
        if not self.schema_version:
            self.schema_version = self.SCHEMA_VERSION

    # -- writing ----------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def write(self, folder: str | Path) -> Path:
        """Write `folder/FILE` atomically: readers see the old file or the whole new one, never a part."""
        path = Path(folder) / self.FILE
        write_json_atomic(path, self.to_dict())
        return path

    # -- reading ----------------------------------------------------------------------------------------

    @classmethod
    def path(cls, folder: str | Path) -> Path:
        return Path(folder) / cls.FILE

    @classmethod
    def read(cls: type[T], folder: str | Path) -> T:
        path = cls.path(folder)
        if not path.is_file():
            raise ArtifactError(f"{path}: not found (the step that writes it has not finished)")
        try:
            data = read_json_object(path)
        except ValueError as exc:
            raise ArtifactError(f"{path}: {exc}") from None
        version = data.get("schema_version")
        if version != cls.SCHEMA_VERSION:
            raise ArtifactError(
                f"{path}: schema_version {version!r}, this hfscratch reads {cls.SCHEMA_VERSION} "
                "(rerun the step that wrote it)"
            )
        try:
            return from_dict(cls, data)
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"{path}: {exc}") from None

    @classmethod
    def read_or_none(cls: type[T], folder: str | Path) -> T | None:
        """The artifact, or None when it does not exist yet. A file that exists but does not parse is an error."""
        return cls.read(folder) if cls.path(folder).is_file() else None


def read_json_object(path: str | Path) -> dict[str, Any]:
    """The JSON object in `path`; a `ValueError` saying what is wrong when it is not valid JSON or not an object
    (callers put the file's name or role in front)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got a {type(data).__name__}")
    return data


def write_json_atomic(path: str | Path, data: Any) -> None:
    """`json.dump` to a temporary file beside `path`, then rename it over `path` (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def from_dict(dtype: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `dtype` from `data`, recursing into dataclass-typed fields (also in lists and dicts).
    Unknown keys and missing required keys raise `ValueError` naming the key."""
    hints = typing.get_type_hints(dtype)
    fields = {f.name: f for f in dataclasses.fields(dtype) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"unknown key '{where}{unknown[0]}' (expected one of {', '.join(sorted(fields))})")
    missing = [
        name
        for name, f in fields.items()
        if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"missing key '{where}{missing[0]}'")
    values = {name: _build(hints[name], value, f"{where}{name}.") for name, value in data.items()}
    return dtype(**values)


def _build(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union or origin is types.UnionType:
        options = [a for a in args if a is not type(None)]
        if value is None:
            return None
        dataclass_options = [a for a in options if dataclasses.is_dataclass(a)]
        return _build(dataclass_options[0], value, where) if dataclass_options and isinstance(value, dict) else value
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            raise ValueError(f"key {where.rstrip('.')!r} expects an object")
        return from_dict(hint, value, where)
    if origin in (list, tuple) and args and dataclasses.is_dataclass(args[0]):
        return [_build(args[0], item, where) for item in value]
    if origin is dict and len(args) == 2 and dataclasses.is_dataclass(args[1]):
        return {key: _build(args[1], item, f"{where}{key}.") for key, item in value.items()}
    return value
