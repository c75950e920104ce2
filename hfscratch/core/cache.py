"""Where hfscratch keeps what it measures or renders once per machine: `~/.cache/hfscratch/`.

`$HFSCRATCH_CACHE` moves it (tests point it at a temporary folder), else `$XDG_CACHE_HOME/hfscratch`. Each user of
the cache (the `--help` texts, the CPU's matmul peak) keeps a subfolder of its own.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    if os.environ.get("HFSCRATCH_CACHE"):
        return Path(os.environ["HFSCRATCH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hfscratch"
