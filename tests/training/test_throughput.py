"""Throughput and MFU from tokens seen and time spent in training steps (evaluation time left out), against a
device peak that is known on every device: the recipe's, a GPU's from the table, or the CPU's measured one."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from training_helpers import logged, write_recipe

from hfscratch.core.recipes import parse_recipe
from hfscratch.training import callbacks
from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments
from hfscratch.training.callbacks import DevicePeak, ThroughputMeter, device_peak
from hfscratch.training.pretrain import build_trainer, train
from hfscratch.training.run_info import RunInfo

KEYS = [ModelArguments, DataArguments, PretrainingArguments]


def test_throughput_and_mfu_count_training_time_only(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: now[0])
    meter = ThroughputMeter(flops_per_token=1e6, peak=DevicePeak(1e10, "recipe"), world_size=2)
    meter.on_train_begin(None, SimpleNamespace(num_input_tokens_seen=1_000, is_world_process_zero=False), None)
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


def test_the_peak_on_a_cpu_is_the_measured_one_in_the_dtype_of_the_matmuls(monkeypatch):
    assert not torch.cuda.is_available()  # this test is about the CPU path
    fp32, bf16 = device_peak(None, torch.float32), device_peak(None, torch.bfloat16)
    assert fp32.source.startswith("CPU probe: float32 matmul") and fp32.flops > 1e9
    assert bf16.source.startswith("CPU probe: bfloat16 matmul") and bf16.flops > 1e9
    recipe = device_peak(0.5, torch.float32)  # the recipe's own figure wins
    assert (recipe.flops, recipe.source) == (0.5e12, "recipe: peak_tflops_per_device 0.5")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # no GPU here: the name is what is tested
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_: "NVIDIA H100 80GB HBM3")
    assert device_peak(None).source.startswith("GPU table: H100, dense bf16") and device_peak(None).flops == 989e12
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_: "NVIDIA GH200 480GB")
    assert device_peak(None) is None  # an unknown GPU: no MFU rather than another GPU's


@pytest.mark.slow
def test_a_cpu_run_logs_an_mfu_in_0_1_against_the_probed_peak_and_records_it(tmp_path, packed_corpus, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", packed_corpus, tmp_path / "out", max_steps=4)
    trainer = build_trainer(*parse_recipe(KEYS, [str(recipe)], "t"))
    assert train(trainer) == 0
    mfu = logged(tmp_path / "out", "mfu")
    assert sorted(mfu) == [1, 2, 3, 4] and all(0 < value <= 1 for value in mfu.values()), mfu
    info = RunInfo.read(tmp_path / "out")
    assert info.peak_source.startswith("CPU probe: float32 matmul") and info.peak_flops_per_device > 1e9
    # The MFU logged is the model's FLOP/s over that peak (one process, no evaluation in between).
    meter = trainer.callback(ThroughputMeter)
    tokens_per_second = logged(tmp_path / "out", "tokens_per_second")
    assert mfu[4] == pytest.approx(meter.flops_per_token * tokens_per_second[4] / info.peak_flops_per_device)
    assert (
        f"MFU against {info.peak_flops_per_device / 1e12:.4g} TFLOP/s per device (CPU probe" in capsys.readouterr().out
    )
