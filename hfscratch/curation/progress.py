"""What a local curation run shows on the console: one progress bar per stage and one line per stage result.

datatrove logs through loguru to stderr: every task's pipeline, its stats and the executors' object reprs,
about 600 lines for the default recipe. The same task logs are written to `logs/<stage>/logs/task_NNNNN.log`;
`QuietLocalExecutor` sends what is left (the executor's own log, its summaries) to `logs/<stage>/executor.log`,
and the console keeps errors only. `StageProgress` draws the bar from the completion markers datatrove writes
(`logs/<stage>/completions/`), so it works whether tasks run in this process or in a pool of workers.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import multiprocess
import multiprocess.forkserver
from datatrove.executor import LocalPipelineExecutor
from datatrove.utils import logging as datatrove_logging
from tqdm import tqdm

from hfscratch.core.allocator import preloaded

EXECUTOR_LOG = "executor.log"


@contextlib.contextmanager
def console_log_to(path: Path) -> Iterator[None]:
    """datatrove's console sink (loguru, bound to `sys.stderr` whenever datatrove re-adds it) writes to `path`
    instead, and so does anything else printed to stderr meanwhile; the console sink is restored after."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as log:
        with contextlib.redirect_stderr(log):
            datatrove_logging.setup_default_logger()
            try:
                yield
            finally:
                log.flush()
        datatrove_logging.setup_default_logger()  # bound to the real stderr again


class QuietLocalExecutor(LocalPipelineExecutor):
    """datatrove's `LocalPipelineExecutor`, logging to files only (errors still reach the console).

    datatrove prints a task's log on the console when the task's local rank is 0, and errors only for the
    others (`_run_for_rank`'s `local_rank`, used for nothing else): tasks run with their local rank shifted by
    one. The executor's own messages, in this process and in its workers, go to `logs/<stage>/executor.log`.
    """

    @property
    def executor_log(self) -> Path:
        return Path(self.logging_dir.path) / EXECUTOR_LOG

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1) -> Any:
        return super()._run_for_rank(rank, local_rank + 1, node_rank)

    def _launch_run_for_rank(self, rank: int, ranks_q: Any, completed: Any = None, completed_lock: Any = None) -> Any:
        with console_log_to(self.executor_log):  # in a worker process: its "N/M tasks completed" lines
            return super()._launch_run_for_rank(rank, ranks_q, completed, completed_lock)

    def run(self) -> Any:
        with console_log_to(self.executor_log):
            return super().run()


def preload_in_workers(stages: list[Any], preload: str | None) -> None:
    """Start the forkserver that the local executors' worker processes fork from, with the modules of every
    stage's steps imported once (instead of in each worker of each stage: about 0.9 s per stage on 2 cores)
    and `preload` as its LD_PRELOAD (the allocator of the workers, core/allocator.py)."""
    start_forkserver({type(step).__module__ for stage in stages for step in stage.steps}, preload)


def start_forkserver(modules: Iterable[str], preload: str | None) -> None:
    """The forkserver of `preload_in_workers`, with `modules` imported; it starts in the background, so a
    caller that knows its steps' modules early can start it before its own work and not wait for it later.

    A forkserver this process started is kept if it has every one of `modules` and the same preload; otherwise
    it is stopped first: a worker forks from it and keeps what it was started with, so it would silently run
    the earlier settings. `__main__` stays first, as in multiprocessing's default, so that steps defined in the
    launching script unpickle."""
    global _forkserver_settings
    wanted = set(modules) - {"__main__"}
    server = multiprocess.forkserver._forkserver  # the context's own server (its `_stop` is what CPython's tests use)
    if server._forkserver_pid is not None and _forkserver_settings is not None:
        imported, running_preload = _forkserver_settings
        if wanted <= imported and preload == running_preload:
            return
    server._stop()  # a no-op where none runs
    server.set_forkserver_preload(["__main__", *sorted(wanted)])
    with preloaded(preload):
        server.ensure_running()
    _forkserver_settings = (frozenset(wanted), preload)


_forkserver_settings: tuple[frozenset[str], str | None] | None = None  # what this process's forkserver started with


class StageProgress:
    """A tqdm bar of one stage's tasks, advanced by polling the stage's completion markers."""

    def __init__(self, name: str, logging_dir: Path, tasks: int, stream: IO[str], width: int = 18) -> None:
        self.completions = logging_dir / "completions"
        self.stop = threading.Event()
        self.bar = tqdm(
            total=tasks,
            initial=self.done(),
            desc=f"{name:<{width}}",
            unit="task",
            file=stream,
            leave=True,
            dynamic_ncols=True,
            mininterval=0.5,
            bar_format="{desc} {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} tasks [{elapsed}]",
        )
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def done(self) -> int:
        return len(list(self.completions.iterdir())) if self.completions.is_dir() else 0

    def poll(self) -> None:
        while not self.stop.wait(0.25):
            self.advance()

    def advance(self) -> None:
        if (n := self.done()) > self.bar.n:
            self.bar.update(n - self.bar.n)

    def __enter__(self) -> StageProgress:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.advance()
        self.bar.close()


def console() -> IO[str]:
    """The stream progress is drawn on: stderr as it is now, before any redirection."""
    return sys.stderr
