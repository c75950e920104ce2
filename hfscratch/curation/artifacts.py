"""`stats.json` of a curated folder: the funnel, per-source counts, PII and skipped-input counts. Written last by
`hfscratch curate` (its presence means the folder is complete) and read back through `CurationStats` by the
tokenize step (mixture weights), the model card's lineage and the quickstart. Imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from hfscratch.core.artifacts import Artifact


@dataclass
class FunnelRow:
    """One step of the funnel: documents and characters in and out, and why documents were removed."""

    stage: str
    step: str
    docs_in: float
    docs_out: float
    chars_in: float | None = None
    chars_out: float | None = None
    removal_reasons: dict[str, float] = field(default_factory=dict)


@dataclass
class SourceStats:
    """What one source contributed: read (after the reader) and kept (in the curated documents)."""

    type: str
    weight: float
    documents_read: float = 0
    chars_read: float = 0
    documents_kept: int = 0
    chars_kept: int = 0


@dataclass
class CurationStats(Artifact):
    """`OUTPUT/stats.json`: the funnel, per-source counts, PII and skipped-input counts, and the merged
    datatrove stats of every stage. Read by tokenize's lineage, the model card and the quickstart."""

    FILE: ClassVar[str] = "stats.json"
    SCHEMA_VERSION: ClassVar[int] = 1

    wall_time_s: float
    output: dict[str, str]
    sources: dict[str, SourceStats]
    funnel: list[FunnelRow]
    skipped_records: dict[str, float]
    pii_redacted: dict[str, float]
    stages: dict[str, list[dict[str, Any]]]
