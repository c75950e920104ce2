"""The Debian documentation corpus (benchmarks/build_debian_corpus.py) and the debian-docs recipe that reads it.

The tests that build a corpus need some of the documentation packages installed (`python
benchmarks/build_debian_corpus.py --install`); they are skipped where none is."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hfscratch.core.resources import resource_path
from hfscratch.curation.pipeline import CurateArguments, run_curation

REPO = Path(__file__).resolve().parents[2]
BUILDER = REPO / "benchmarks" / "build_debian_corpus.py"
sys.path.insert(0, str(BUILDER.parent))
from build_debian_corpus import PACKAGES, package_version  # noqa: E402

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian system")


def installed_packages() -> list[str]:
    if shutil.which("dpkg-query") is None:
        return []
    return [p for p in PACKAGES if package_version(p)]


def build(out: Path, max_mb: float, packages: list[str]) -> subprocess.CompletedProcess:
    command = [sys.executable, str(BUILDER), "--out", str(out), "--max_mb", str(max_mb), "--packages", *packages]
    return subprocess.run(command, capture_output=True, text=True)


@pytest.fixture(scope="module")
def packages() -> list[str]:
    found = installed_packages()
    if len(found) < 2:
        pytest.skip("fewer than two Debian documentation packages installed (build_debian_corpus.py --install)")
    return found[:3]


@needs_dpkg
def test_a_package_that_is_not_installed_is_named_in_one_line(tmp_path):
    result = build(tmp_path / "corpus", 1, ["no-such-package-hfscratch"])
    assert result.returncode == 2
    assert result.stderr.strip().startswith("build_debian_corpus: error: not installed: no-such-package-hfscratch;")
    assert "\n" not in result.stderr.strip()
    assert not (tmp_path / "corpus").exists()


def test_smaller_corpora_are_prefixes_and_a_rebuild_changes_nothing(tmp_path, packages):
    small, large = tmp_path / "small", tmp_path / "large"
    assert build(small, 1, packages).returncode == 0
    assert build(large, 3, packages).returncode == 0
    for kind, name in (("html", "pages.jsonl"), ("text", "documents.jsonl")):
        assert (large / kind / name).read_bytes().startswith((small / kind / name).read_bytes())
    manifest = json.loads((large / "manifest.json").read_text())
    assert 2.5 < manifest["mb"] <= 3 and manifest["kinds"]["html"]["documents"] > 0
    record = json.loads((large / "html" / "pages.jsonl").open().readline())
    assert record["id"].startswith("doc/") and record["package"] in packages and "<" in record["text"]

    before = {p: p.read_bytes() for p in large.rglob("*") if p.is_file()}
    again = build(large, 3, packages)
    assert again.returncode == 0 and "Already built" in again.stdout
    assert {p: p.read_bytes() for p in large.rglob("*") if p.is_file()} == before
    other = build(large, 2, packages)
    assert other.returncode == 2 and "built with other settings" in other.stderr


@pytest.mark.slow
def test_the_recipe_curates_the_corpus_on_every_task_with_html_extracted(tmp_path, packages):
    corpus = tmp_path / "corpus"
    assert build(corpus, 2, packages).returncode == 0
    recipe = yaml.safe_load(resource_path("recipes/curate/debian-docs.yaml").read_text())
    sources = [source | {"path": str(corpus / Path(source["path"]).name)} for source in recipe["sources"]]
    assert [s["html"] for s in sources if s["tag"] == "debian-html"] == [True]
    options = {k: v for k, v in recipe.items() if k not in ("sources", "output_dir", "workers", "minhash_buckets")}
    out = tmp_path / "run"
    stats = run_curation(CurateArguments(output_dir=str(out), sources=sources, workers=1, minhash_buckets=4, **options))
    for task in sorted((out / "logs" / "filter" / "stats").glob("*.json")):
        readers = [step for step in json.loads(task.read_text()) if step["name"].startswith("📖")]
        assert all(step["stats"]["documents"]["total"] > 0 for step in readers), task.name  # one file, every task
    kept = [json.loads(line) for f in sorted((out / "documents").glob("*.jsonl")) for line in f.open()]
    pages = [doc["text"] for doc in kept if doc["metadata"]["source"] == "debian-html"]
    assert pages and not [t for t in pages if "</" in t or "<div" in t]  # extracted by Trafilatura, not raw HTML
    assert stats["sources"]["debian-text"]["documents_read"] > 0
