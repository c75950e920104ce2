"""The wheel users `pip install` holds every file the kit reads at run time.

CI installs the checkout in editable mode, where a file missing from the wheel still resolves beside the source:
this test builds the real wheel and compares it with the package folder. `.ci/wheel-check` goes further and runs
the installed wheel from a fresh virtual environment outside the checkout.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hfscratch.core.resources import RUNTIME_RESOURCES, shipped_recipes

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "hfscratch"


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(out),
        str(REPO),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (wheel,) = out.glob("hfscratch-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def package_files() -> set[str]:
    """Every file of the package folder the wheel must carry: code, recipes, templates (not caches)."""
    return {
        path.relative_to(REPO).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith((".pyc", ".tmp"))
    }


def test_wheel_holds_every_package_file(wheel_files):
    missing = sorted(package_files() - wheel_files)
    assert not missing, f"files the installed kit would lack: {missing}"


def test_wheel_holds_the_files_read_at_run_time(wheel_files):
    assert {f"hfscratch/{name}" for name in RUNTIME_RESOURCES} <= wheel_files
    recipes = {n if "." in n.rsplit("/", 1)[-1] else f"{n}.yaml" for n in shipped_recipes()}
    assert {f"hfscratch/recipes/{name}" for name in recipes} <= wheel_files
    assert "hfscratch/py.typed" in wheel_files


def test_runtime_resources_exist():
    """The list the wheel test checks names real files (a renamed recipe fails here, not at a user's)."""
    for name in RUNTIME_RESOURCES:
        assert (PACKAGE / name).is_file(), name
