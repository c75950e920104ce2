"""The C allocator of the processes that encode text: mimalloc or jemalloc, preloaded, where one is installed.

The Rust tokenizer allocates for every pre-token, token string and offset: profiled on one core, 48% of an
`encode_batch_fast` of documentation text was glibc's malloc, free and realloc (tokenizers 0.23). Preloaded,
mimalloc encoded the same tokens 1.3-1.6x faster and jemalloc 1.3-1.5x (2-core EPYC, README step 1b).
tokenizers' wheels link the system allocator, and an allocator can only be chosen before a process starts
(`LD_PRELOAD`), as torch's CPU launcher does (`python -m torch.backends.xeon.run_cpu --enable-jemalloc`).
So the kit starts its encoding processes with one: `hfscratch tokenize` starts itself again, and the datatrove
workers fork from a forkserver started with it. The allocator changes speed and memory, never the tokens.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hfscratch.core.recipes import RecipeError

ALLOCATORS = {"mimalloc": "libmimalloc.so", "jemalloc": "libjemalloc.so"}  # in the order `auto` prefers them
CHOICES = ("auto", *ALLOCATORS, "system")
PRELOAD = "LD_PRELOAD"
RESTARTED = "HFSCRATCH_ALLOCATOR_RESTARTED"  # set in a process this module started again
INSTALL_HINT = "apt-get install libmimalloc2.0 (or libjemalloc2), conda install mimalloc"


class AllocatorError(RecipeError):
    """An allocator that was asked for is not installed, or not in the process that should run it."""


def library_dirs() -> list[Path]:
    """Where shared libraries are installed: this environment's, conda's, then the system's."""
    prefixes = [sys.prefix, os.environ.get("CONDA_PREFIX")]
    multiarch = [Path("/usr/lib") / f"{os.uname().machine}-linux-gnu"] if hasattr(os, "uname") else []
    dirs = [Path(p) / "lib" for p in prefixes if p] + [Path("/usr/local/lib"), *multiarch, Path("/usr/lib64")]
    return [*dirs, Path("/usr/lib")]


def find_library(name: str) -> Path | None:
    """The installed shared library of allocator `name` (`libmimalloc.so`, else its versioned file), or None."""
    stem = ALLOCATORS[name]
    for folder in library_dirs():
        candidates = sorted(folder.glob(f"{stem}*"), key=lambda p: (p.name != stem, len(p.name)))
        if candidates:
            return candidates[0]
    return None


def resolve(choice: str) -> tuple[str, Path | None]:
    """(allocator name, its library) for a recipe's `allocator`: `auto` is the first installed one, else the
    system's; a named one must be installed."""
    if choice not in CHOICES:
        raise AllocatorError(f"key 'allocator': expected one of {', '.join(CHOICES)}, got {choice!r}")
    if choice == "system":
        return "system", None
    for name in ALLOCATORS if choice == "auto" else [choice]:
        if (library := find_library(name)) is not None:
            return name, library
    if choice == "auto":
        return "system", None
    dirs = ", ".join(str(d) for d in library_dirs())
    raise AllocatorError(
        f"key 'allocator': {choice} is not installed (no {ALLOCATORS[choice]}* in {dirs}); "
        f"install it ({INSTALL_HINT}) or use allocator: system"
    )


def loaded_allocator() -> str:
    """The allocator this process runs: a preloaded mimalloc or jemalloc (from its memory map), else the system's."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "system"  # not Linux: nothing was preloaded either
    return next((name for name, stem in ALLOCATORS.items() if f"/{stem}" in maps), "system")


def preload_value(library: Path | None, current: str | None = None) -> str | None:
    """LD_PRELOAD with `library` first and any other allocator this module knows removed (None: nothing left)."""
    known = tuple(ALLOCATORS.values())
    kept = [p for p in (current or "").replace(":", " ").split() if not Path(p).name.startswith(known)]
    value = " ".join(([] if library is None else [str(library)]) + kept)
    return value or None


@contextmanager
def preloaded(value: str | None) -> Iterator[None]:
    """LD_PRELOAD set to `value` (None: unset) for the processes started in the block, restored after."""
    before = os.environ.get(PRELOAD)
    set_preload(value)
    try:
        yield
    finally:
        set_preload(before)


def set_preload(value: str | None) -> None:
    if value is None:
        os.environ.pop(PRELOAD, None)
    else:
        os.environ[PRELOAD] = value


def check_loaded(choice: str) -> str:
    """The allocator this process runs, or an AllocatorError when it is not the one asked for (`auto` takes any)."""
    name = loaded_allocator()
    if choice not in ("auto", name):
        raise AllocatorError(
            f"key 'allocator': {choice} was asked for and this process (pid {os.getpid()}) runs {name}; "
            f"{PRELOAD}={os.environ.get(PRELOAD, '')!r}"
        )
    return name


def restart_with(choice: str, argv: Sequence[str]) -> None:
    """Start this program again under the allocator `choice` resolves to, when it does not run that one and
    `argv` ends its command line (`hfscratch tokenize ...` run as a program; a `main([...])` called from Python,
    as in a test or a notebook, is never replaced). The new process has the same command line
    (`sys.orig_argv`). One that was already started again does not start again: `check_loaded` then says why
    the preload did not take (the dynamic loader skips a library it cannot load, with a warning)."""
    name, library = resolve(choice)
    ran_as_program = bool(argv) and sys.argv[-len(argv) :] == list(argv)
    if loaded_allocator() == name or not ran_as_program or os.environ.get(RESTARTED) == "1":
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ[RESTARTED] = "1"
    set_preload(preload_value(library, os.environ.get(PRELOAD)))
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
