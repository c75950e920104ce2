"""Throughput and MFU from tokens seen and time spent in training steps (evaluation time left out)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hfscratch.training import callbacks
from hfscratch.training.callbacks import ThroughputMeter


def test_throughput_and_mfu_count_training_time_only(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: now[0])
    meter = ThroughputMeter(flops_per_token=1e6, peak_flops=1e10, world_size=2)
    meter.on_train_begin(None, SimpleNamespace(num_input_tokens_seen=1_000), None)  # resumed at 1,000 tokens
    now[0] += 2.0
    meter.on_step_end(None, None, None)
    now[0] += 30.0  # an evaluation: not training time
    meter.on_evaluate(None, None, None)
    now[0] += 2.0
    meter.on_step_end(None, None, None)
    metrics = meter.measure(tokens_seen=41_000)
    # 40,000 tokens in 4 s of steps: 10,000 tokens/s, 5,000 per device; 5,000 x 1e6 FLOPs / 1e10 = 0.5.
    assert metrics == pytest.approx({"tokens_per_second": 1e4, "tokens_per_second_per_device": 5e3, "mfu": 0.5})
    assert meter.measure(tokens_seen=41_000) == {}  # nothing new since the last log
