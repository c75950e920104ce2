"""A CPU's peak FLOP/s for MFU: measured once by a short matmul probe, then read back from a cache on disk.

A CPU's data-sheet peak (cores x clock x FLOP per cycle) depends on its vector units, its turbo clock and, on a
shared or virtual machine, on how many cores the process really gets, so a nominal figure in a recipe gives MFUs
that mean little. What a training step's matmuls can reach is measured instead: the best of a few square matmuls
in the dtype the model computes in, with the threads torch uses, in about a quarter of a second per dtype. The
figure is kept under `~/.cache/hfscratch/cpu_peak/` (`$HFSCRATCH_CACHE` moves it), one file per CPU model, torch
version, thread count and dtype, so every run on a machine divides by the same peak, and a new CPU, torch or
thread count measures again. A probe taken while other processes load the machine (load average above the core
count) reads low, and MFU high: it is kept as provisional, and each later run measures again and keeps the best
figure until one on a quiet machine settles it.
"""

from __future__ import annotations

import hashlib
import os
import platform
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hfscratch.core.artifacts import read_json_object, write_json_atomic
from hfscratch.core.cache import cache_root

# Square matrices of 1536: 7.2 GFLOP a product. Smaller ones do not reach the peak in float32 here (1024 read 2/3
# of what 1536 and 2048 read on an AVX-512 EPYC, which agree); a product takes about 0.1 s in fp32 on 2 cores.
MATMUL_SIZE = 1536
PROBE_SECONDS = 0.25  # per dtype, after one warm-up product
MIN_REPEATS = 3  # the best of at least three products: one unlucky time slice is no peak


@dataclass(frozen=True)
class CpuPeak:
    flops: float  # FLOP/s of one process: the best matmul rate measured
    dtype: str  # "float32", "bfloat16", ...
    cpu: str  # the model name in /proc/cpuinfo
    threads: int
    cache_file: Path
    cached: bool  # read from cache_file (False: measured by this call)
    provisional: bool = False  # measured on a busy machine: measured again next time

    def describe(self) -> str:
        how = "cached in" if self.cached else "measured now, cached in"
        if self.provisional:
            how = "measured on a busy machine, so measured again next run; cached in"
        return f"CPU probe: {self.dtype} matmul, {self.threads} threads, {self.cpu} ({how} {self.cache_file})"


# Peaks this process has measured or read, by cache file: a provisional one is measured again by a later run, not
# by every Trainer one process builds (a test session builds dozens).
_THIS_PROCESS: dict[Path, CpuPeak] = {}


def cpu_model() -> str:
    """The CPU's model name ('AMD EPYC', 'Intel(R) Xeon(R) Platinum 8480+'), from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def measure_matmul_flops(dtype: Any, size: int = MATMUL_SIZE, seconds: float = PROBE_SECONDS) -> float:
    """The best FLOP/s of `size`^3 matmuls in `dtype` (a torch dtype) on the CPU over about `seconds`."""
    import torch

    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.mm(a, b)  # warm-up: the first product pays for allocation and kernel selection
    best, repeats, end = float("inf"), 0, time.perf_counter() + seconds
    while repeats < MIN_REPEATS or time.perf_counter() < end:
        began = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - began)
        repeats += 1
    return 2 * size**3 / best


def machine_is_busy() -> bool:
    """More runnable processes than cores over the last minute: other work shares the cores a probe measures."""
    try:
        return os.getloadavg()[0] > (os.cpu_count() or 1)
    except OSError:
        return False


def cpu_peak(dtype: Any = None) -> CpuPeak:
    """This CPU's matmul peak in `dtype` (default float32) with torch's current thread count, from the cache or,
    the first time, measured by `measure_matmul_flops` and cached. A figure measured on a busy machine is
    provisional: the next call measures again and keeps the higher one, until a quiet machine confirms it."""
    import torch

    dtype = dtype or torch.float32
    name, threads = str(dtype).removeprefix("torch."), torch.get_num_threads()
    key = {"cpu": cpu_model(), "torch": torch.__version__, "threads": threads, "dtype": name}
    path = cache_root() / "cpu_peak" / f"{hashlib.sha256(repr(sorted(key.items())).encode()).hexdigest()[:16]}.json"
    if path in _THIS_PROCESS:
        return replace(_THIS_PROCESS[path], cached=True)
    known = 0.0
    try:
        entry = read_json_object(path)
        if {k: entry.get(k) for k in key} == key and float(entry["flops"]) > 0:
            if not entry.get("provisional"):
                _THIS_PROCESS[path] = CpuPeak(float(entry["flops"]), name, key["cpu"], threads, path, cached=True)
                return _THIS_PROCESS[path]
            known = float(entry["flops"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent or unreadable: measure (again)
    busy = machine_is_busy()
    flops = max(known, measure_matmul_flops(dtype))
    entry = {
        **key,
        "flops": flops,
        "provisional": busy,
        "matmul_size": MATMUL_SIZE,
        "measured_at": datetime.now(timezone.utc).isoformat(),
    }
    try:
        write_json_atomic(path, entry)
    except OSError:
        pass  # a read-only home only loses the cache: the next run measures again
    _THIS_PROCESS[path] = CpuPeak(flops, name, key["cpu"], threads, path, cached=False, provisional=busy)
    return _THIS_PROCESS[path]
