"""The embedded corpus's listing: every task lists the whole environment to keep its share, so the listing reads
RECORD's names as text and walks only the standard library's own folders. It must list exactly what
importlib's `dist.files` and an `rglob` of the standard library list."""

from __future__ import annotations

import importlib.metadata
import sysconfig
from pathlib import Path

from hfscratch.curation.sources import STDLIB_SKIPPED_FOLDERS, PythonDocsReader, stdlib_modules


def licence_names(files) -> list[str]:
    return sorted(str(file) for file in files if PythonDocsReader.LICENSE_FILE.search(str(file)))


def licence_locations(dist: importlib.metadata.Distribution) -> list[str]:
    return sorted(str(file.locate()) for file in dist.files or [] if PythonDocsReader.LICENSE_FILE.search(str(file)))


def test_licence_files_are_those_importlib_lists_for_every_installed_distribution():
    dists = list(importlib.metadata.distributions())
    assert len(dists) > 50
    for dist in dists:
        found = PythonDocsReader.license_files(dist)
        assert sorted(map(str, found)) == licence_names(dist.files or []), dist.metadata["Name"]
        assert sorted(str(file.locate()) for file in found) == licence_locations(dist), dist.metadata["Name"]


def test_licence_files_of_planted_distributions_with_and_without_a_record(tmp_path):
    wheel = tmp_path / "pkg-1.0.dist-info"
    wheel.mkdir()
    (wheel / "METADATA").write_text("Name: pkg\nVersion: 1.0\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "LICENSE, v2.txt").write_text("the licence text")
    record = ["pkg/__init__.py,sha256=x,0", '"pkg/LICENSE, v2.txt",sha256=y,16', "pkg-1.0.dist-info/COPYING,,", ""]
    (wheel / "RECORD").write_text("\n".join(record))
    found = PythonDocsReader.license_files(importlib.metadata.PathDistribution(wheel))
    assert [str(file) for file in found] == ["pkg/LICENSE, v2.txt", "pkg-1.0.dist-info/COPYING"]
    assert found[0].read_text() == "the licence text"  # read from the distribution's folder, as dist.files reads

    egg = tmp_path / "old.egg-info"  # no RECORD: importlib's own listing (SOURCES.txt)
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Name: old\nVersion: 0.1\n")
    (egg / "SOURCES.txt").write_text("old/__init__.py\nNOTICE\nold/LICENCE.md\n")
    found = PythonDocsReader.license_files(importlib.metadata.PathDistribution(egg))
    assert sorted(map(str, found)) == ["NOTICE", "old/LICENCE.md"]


def test_stdlib_modules_are_the_rglob_without_the_skipped_folders():
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    expected = sorted(
        path
        for path in stdlib.rglob("*.py")
        if path.relative_to(stdlib).parts[0] not in STDLIB_SKIPPED_FOLDERS
        and "tests" not in path.relative_to(stdlib).parts
    )
    assert len(expected) > 500
    assert sorted(stdlib_modules(stdlib)) == expected
