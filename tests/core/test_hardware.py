"""The one GPU table and the one device-name matcher that plan, training's MFU and the model card share."""

import ast
import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from hfscratch.core import hardware
from hfscratch.core.hardware import GPUS, GPUName, match_gpu

# What torch.cuda.get_device_name() (and nvidia-smi) call these boards.
DEVICE_NAMES = [
    ("NVIDIA A100-SXM4-40GB", "A100-40GB"),
    ("NVIDIA A100-PCIE-40GB", "A100-40GB"),
    ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
    ("NVIDIA A100 80GB PCIe", "A100-80GB"),
    ("NVIDIA H100 80GB HBM3", "H100"),
    ("NVIDIA H100 PCIe", "H100-PCIe"),
    ("NVIDIA H200", "H200"),
    ("NVIDIA B200", "B200"),
]
# Boards the table does not have: each must be None, never a near neighbour's figures.
UNKNOWN_NAMES = [
    "NVIDIA H100 NVL",  # 835 TFLOP/s, 94 GB: neither the SXM nor the PCIe H100
    "NVIDIA H200 NVL",
    "NVIDIA GH200 480GB",  # Grace Hopper: "H200" is inside the word, but it is not an H200
    "NVIDIA GB200",
    "NVIDIA A100-SXM4-40GB MIG 3g.20gb",  # a slice: a fraction of the peak
    "NVIDIA A100",  # which memory size is unknown
    "Tesla V100-SXM2-16GB",
    "NVIDIA GeForce RTX 4090",
    "CPU (Intel Xeon, 2 threads)",
    "",
]


@pytest.mark.parametrize("device, key", DEVICE_NAMES)
def test_device_names_match_their_gpu(device, key):
    assert match_gpu(device) is GPUS[key]
    assert match_gpu(device.lower()) is GPUS[key]


@pytest.mark.parametrize("device", UNKNOWN_NAMES)
def test_unknown_devices_match_nothing(device):
    assert match_gpu(device) is None


def test_table_keys_match_themselves_and_are_the_choices():
    for name, gpu in GPUS.items():
        assert gpu.name == name and match_gpu(name) is gpu
    assert typing.get_args(GPUName) == tuple(GPUS)  # --gpu offers exactly the table


def test_h100_form_factors_have_their_own_peak():
    assert GPUS["H100"].peak_tflops == 989 and GPUS["H100-PCIe"].peak_tflops == 756
    assert GPUS["H100-PCIe"].tdp_watts < GPUS["H100"].tdp_watts


def test_hardware_imports_nothing_above_core():
    tree = ast.parse(Path(hardware.__file__).read_text())
    modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    ours = [m for m in modules if m and m.startswith("hfscratch")]
    assert all(m.startswith("hfscratch.core") for m in ours), ours
    code = (
        "import json, sys, hfscratch.core.hardware\n"
        "print(json.dumps([m for m in sys.modules if m.split('.')[0] == 'hfscratch']))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert all(m in ("hfscratch", "hfscratch.core") or m.startswith("hfscratch.core.") for m in loaded), loaded
    assert "hfscratch.core.hardware" in loaded


# -- The callers use it ------------------------------------------------------------------------------------


def test_model_card_energy_uses_the_shared_matcher(tmp_path):
    """The card prices energy at the matched board's power: a PCIe H100 is not the 700 W SXM, a GH200 no H200."""
    from hfscratch.hub.facts import compute
    from hfscratch.hub.lineage import Lineage
    from hfscratch.training.run_info import RunInfo

    def energy(device: str) -> dict:
        run_info = RunInfo(
            world_size=1, distributed_type="NO", deepspeed=False, zero_stage=None, gradient_accumulation_steps=1,
            parameters=1, parameters_on_rank0=1, max_steps=1, global_step=1, stopped_by="max_steps",
            training_args={}, train_tokens=None, data_dir=None, device=device, num_devices=1, train_runtime_s=1.0,
            device_hours=10.0,
        )  # fmt: skip
        return compute(Lineage(tmp_path, {}, run_info=run_info))

    assert "10 device-hours x 350 W" in energy("NVIDIA H100 PCIe")["energy"]  # matched as the SXM's 700 W before
    assert "10 device-hours x 700 W" in energy("NVIDIA H100 80GB HBM3")["energy"]
    unknown = energy("NVIDIA GH200 480GB")  # matched as an H200 before
    assert unknown["energy"].startswith("not estimated: NVIDIA GH200 480GB is not a GPU in") and "kwh" not in unknown


def test_training_mfu_peak_uses_the_shared_matcher(monkeypatch):
    """MFU's denominator is the matched GPU's peak: 756 TFLOP/s on a PCIe H100 (989, the SXM's, before)."""
    import torch

    from hfscratch.training.callbacks import device_peak_flops

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # no GPU here: the name is what is tested
    for device, key in DEVICE_NAMES:
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_, name=device: name)
        assert device_peak_flops(None) == GPUS[key].peak_tflops * 1e12, device
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_: "NVIDIA H100 NVL")
    assert device_peak_flops(None) is None
    assert device_peak_flops(123.0) == 123e12  # the recipe's own figure wins
