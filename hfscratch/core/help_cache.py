"""A cache of each step's `--help` text, so `hfscratch <step> --help` answers without importing torch.

The keys of `hfscratch pretrain` and `hfscratch finetune` include every `transformers.TrainingArguments` field,
and that class cannot be imported without torch (about 3 s here). The help text is a pure function of the
installed code, so it is rendered once by the real parser and kept under `~/.cache/hfscratch/help/`
(`$HFSCRATCH_CACHE` or `$XDG_CACHE_HOME` move it), keyed by the arguments, the terminal width, the versions of
hfscratch, transformers and torch, and the size and modification time of every hfscratch source file: any
upgrade or edit renders it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from hfscratch.core.cache import cache_root

HELP_FLAGS = ("-h", "--help")


def wants_help(argv: Sequence[str]) -> bool:
    return any(arg in HELP_FLAGS for arg in argv)


def cache_dir() -> Path:
    return cache_root() / "help"


def _fingerprint(argv: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for name in ("hfscratch", "transformers", "torch"):
        try:
            digest.update(f"{name}={version(name)};".encode())
        except PackageNotFoundError:
            digest.update(f"{name}=none;".encode())
    digest.update(f"columns={shutil.get_terminal_size().columns};argv={list(argv)!r};".encode())
    source = Path(__file__).resolve().parents[1]  # the hfscratch package folder
    for path in sorted(source.rglob("*.py")):
        stat = path.stat()
        digest.update(f"{path.relative_to(source)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:24]


def cached_help(argv: Sequence[str], render: Callable[[], object]) -> int:
    """Print the help `render()` prints for `argv`, from the cache when it is there; returns the exit status."""
    path = cache_dir() / f"{_fingerprint(argv)}.txt"
    if path.is_file():
        sys.stdout.write(path.read_text(encoding="utf-8"))
        return 0
    out = io.StringIO()
    code: object = 0
    with contextlib.redirect_stdout(out):
        try:
            code = render()
        except SystemExit as exc:  # argparse exits after printing the help
            code = exc.code
    text = out.getvalue()
    sys.stdout.write(text)
    if code in (0, None) and text:
        with contextlib.suppress(OSError):  # a read-only home only loses the speed-up
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
    return 0 if code is None else code if isinstance(code, int) else 1
