"""Shared helpers for the curation tests: run the real datatrove pipeline on a planted corpus."""

from __future__ import annotations

from pathlib import Path

import pytest
from curation_corpora import ALL_STEPS_OFF

from hfscratch.curation.pipeline import CurateArguments, run_curation


@pytest.fixture
def curate(tmp_path: Path):
    """curate(sources, **steps) runs the pipeline in-process (2 tasks, 1 worker) with only `steps` switched on,
    into tmp_path/run (or tmp_path/OUTPUT with `output=`)."""

    def run(sources: list[dict], output: str = "run", **options) -> tuple[Path, dict]:
        out = tmp_path / output
        defaults = {"tasks": 2, "workers": 1, "min_doc_chars": 1}
        args = CurateArguments(output_dir=str(out), sources=sources, **(defaults | ALL_STEPS_OFF | options))
        return out, run_curation(args)

    return run
