"""A CPU's matmul peak for MFU: measured by a short probe, cached on disk by CPU model, torch version, threads and
dtype, and measured again when any of them changes or the cache file is unreadable."""

from __future__ import annotations

import json
import time

import pytest
import torch

from hfscratch.core import cpu_peak as probe


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache, on a machine taken as quiet (the load of a shared CI machine is not the test's to choose)."""
    monkeypatch.setenv("HFSCRATCH_CACHE", str(tmp_path))
    monkeypatch.setattr(probe, "machine_is_busy", lambda: False)
    monkeypatch.setattr(probe, "_THIS_PROCESS", {})
    return tmp_path / "cpu_peak"


def later_run() -> None:
    """What a new process knows of the peak: only the cache on disk."""
    probe._THIS_PROCESS.clear()


def test_the_probe_measures_a_plausible_peak_once_then_reads_the_cache(cache, monkeypatch):
    began = time.perf_counter()
    first = probe.cpu_peak(torch.float32)
    seconds = time.perf_counter() - began
    # Any CPU that trains a model: above 1 GFLOP/s, below 100 TFLOP/s for one process.
    assert 1e9 < first.flops < 1e14 and not first.cached
    assert seconds < 3.0  # a quarter of a second of products (0.4 s on a quiet 2-core machine), and a warm-up
    assert first.cache_file.parent == cache
    entry = json.loads(first.cache_file.read_text())
    assert entry["flops"] == first.flops and entry["dtype"] == "float32" and entry["cpu"] == probe.cpu_model()
    assert entry["threads"] == torch.get_num_threads() and entry["torch"] == torch.__version__

    def no_second_measurement(*args, **kwargs):
        raise AssertionError("measured again although the peak was cached")

    monkeypatch.setattr(probe, "measure_matmul_flops", no_second_measurement)
    later_run()
    second = probe.cpu_peak(torch.float32)
    assert second.cached and second.flops == first.flops and second.cache_file == first.cache_file
    assert "CPU probe: float32 matmul" in second.describe() and "cached in" in second.describe()


def test_another_thread_count_or_dtype_is_measured_again_and_a_broken_cache_file_is_replaced(cache):
    fp32 = probe.cpu_peak(torch.float32)
    bf16 = probe.cpu_peak(torch.bfloat16)
    assert not bf16.cached and bf16.cache_file != fp32.cache_file and bf16.flops > 1e9
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = probe.cpu_peak(torch.float32)
    finally:
        torch.set_num_threads(threads)
    assert not one.cached and one.threads == 1 and one.cache_file != fp32.cache_file
    fp32.cache_file.write_text("{not json")  # a run killed while writing (atomic writes make it unlikely)
    later_run()
    again = probe.cpu_peak(torch.float32)
    assert not again.cached and json.loads(again.cache_file.read_text())["flops"] == again.flops


def test_a_peak_measured_on_a_busy_machine_is_measured_again_and_the_best_kept(cache, monkeypatch):
    monkeypatch.setattr(probe, "machine_is_busy", lambda: True)
    monkeypatch.setattr(probe, "measure_matmul_flops", lambda dtype: 2e10)  # as the busy machine measured it
    busy = probe.cpu_peak(torch.float32)
    assert (busy.flops, busy.cached, busy.provisional) == (2e10, False, True)
    assert "measured on a busy machine, so measured again next run" in busy.describe()
    monkeypatch.setattr(probe, "measure_matmul_flops", lambda dtype: 1e10)  # busier still: the better figure stays
    assert probe.cpu_peak(torch.float32).flops == 2e10 and probe.cpu_peak(torch.float32).cached  # same process
    later_run()
    busier = probe.cpu_peak(torch.float32)  # measured again, the earlier figure kept
    assert (busier.flops, busier.cached, busier.provisional) == (2e10, False, True)
    monkeypatch.setattr(probe, "machine_is_busy", lambda: False)
    monkeypatch.setattr(probe, "measure_matmul_flops", lambda dtype: 6e10)  # quiet at last: this one settles it
    later_run()
    quiet = probe.cpu_peak(torch.float32)
    assert (quiet.flops, quiet.provisional) == (6e10, False)
    monkeypatch.setattr(probe, "measure_matmul_flops", lambda dtype: pytest.fail("measured after a quiet probe"))
    monkeypatch.setattr(probe, "machine_is_busy", lambda: True)
    later_run()
    assert probe.cpu_peak(torch.float32).cached and probe.cpu_peak(torch.float32).flops == 6e10


def test_the_cpu_model_is_read_from_proc_cpuinfo():
    name = probe.cpu_model()
    assert name and "\n" not in name
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        assert any(line.startswith("model name") and name in line for line in cpuinfo)
