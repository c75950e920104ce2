"""HTML extraction with a memory budget: Trafilatura in datatrove's sandbox process, which may not grow without end.

datatrove extracts each page in a sandbox process that lives for the whole task, so the sandbox's resident
memory is the high-water mark of every page it has seen (the allocator keeps what a page took). What a page
takes is not its size: on Debian's manuals a 3.9 MB page took Trafilatura 400 MB and a 10.2 MB one over 1 GB.
The largest page grows with the corpus, and so, without a bound, would the peak memory of curation.

Here the sandbox caps its own data segment (RLIMIT_DATA) at what it held when it started plus a budget. A page
that needs more fails with MemoryError. The sandbox then exits, and datatrove counts the page as
`broken_process` (the report's `over_memory_budget_or_crashed`) and starts a fresh sandbox for the next page.
So a page's memory is bounded by the budget, whatever the corpus holds. The limit counts the data segment's
growth only: heap the parent had freed before the fork is reused uncounted, so the bound is start + budget +
what the parent had free.
"""

from __future__ import annotations

import os
import resource

from datatrove.pipeline.extractors import Trafilatura


def data_segment_bytes() -> int:
    """This process's data segment (VmData: heap and private writable mappings), what RLIMIT_DATA counts."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    raise OSError("/proc/self/status has no VmData line")


class BoundedTrafilatura(Trafilatura):
    """datatrove's Trafilatura step whose sandbox process may grow by at most `memory_budget_mb` while
    extracting (None: no bound). Decisions on pages within the budget are exactly Trafilatura's."""

    def __init__(self, memory_budget_mb: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.memory_budget_mb = memory_budget_mb
        self._bounded_pid: int | None = None

    def extract(self, text: str) -> str:
        # The sandbox calls this first with an empty warm-up page, in its own process: bound that process once.
        if self.memory_budget_mb is not None and self._bounded_pid != os.getpid():
            self._bounded_pid = os.getpid()
            import trafilatura  # noqa: F401  (imported within the budget, it would take part of it)

            limit = data_segment_bytes() + self.memory_budget_mb * 2**20
            _, hard = resource.getrlimit(resource.RLIMIT_DATA)
            soft = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
            resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
        try:
            return super().extract(text)
        except MemoryError:
            # What the page allocated is freed as the error unwinds, but the allocator may keep it: exit, and
            # the step counts the page as a broken process and starts a fresh sandbox.
            os._exit(3)
