"""The GPUs the kit knows: data-sheet peak, power and memory, assumed prices, and one device-name matcher.

Three places need to know what a GPU is: `hfscratch plan` (cost, energy, memory per GPU), the training run's
MFU (a device's dense bf16 peak) and the model card's energy figure (a device's board power). They all read
this table, and they all turn the name `torch.cuda.get_device_name()` returns into a table entry with
`match_gpu`, so a device is never one GPU for the MFU and another for the energy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class GPU:
    name: str
    peak_tflops: float  # dense bf16 tensor-core peak, from the data sheet (no sparsity)
    tdp_watts: float  # board power of the form factor the source names
    memory_gb: float
    rent_usd_per_hour: tuple[float, float]  # assumed market range; override with --rent_usd_per_gpu_hour
    price_usd: float  # assumed purchase price of one GPU; override with --gpu_price_usd
    source: str
    # Words a device name must contain to be this GPU, and words that make it another one (see `match_gpu`).
    name_words: frozenset[str] = frozenset()
    not_name_words: frozenset[str] = frozenset()


def _gpu(*values: object, words: str, unless: str = "") -> GPU:
    return GPU(*values, name_words=frozenset(words.split()), not_name_words=frozenset(unless.split()))


def _sheet(gpu: str, form: str) -> str:
    return f"NVIDIA {gpu} Tensor Core GPU data sheet ({form})"


GPUS: dict[str, GPU] = {
    gpu.name: gpu
    for gpu in (
        # The A100 price and rent are the seed's rule of thumb (plan's RULE_OF_THUMB); the others are assumptions.
        # An A100's peak and memory are the same in its PCIe form, so a PCIe A100 matches too (its board power,
        # 250-300 W, is below the SXM4's 400 W; the model card names the source of the figure it uses).
        _gpu("A100-40GB", 312, 400, 40, (1.0, 2.0), 10_000, _sheet("A100", "SXM4"), words="A100 40GB"),
        _gpu("A100-80GB", 312, 400, 80, (1.0, 2.0), 10_000, _sheet("A100", "SXM4"), words="A100 80GB"),
        # An H100's peak depends on its form factor (SXM 989, PCIe 756, NVL 835 TFLOP/s): never mix them up.
        _gpu("H100", 989, 700, 80, (2.0, 3.5), 25_000, _sheet("H100", "SXM5"), words="H100", unless="PCIE NVL"),
        _gpu("H100-PCIe", 756, 350, 80, (1.5, 3.0), 25_000, _sheet("H100", "PCIe"), words="H100 PCIE"),
        _gpu("H200", 989, 700, 141, (2.5, 4.5), 30_000, _sheet("H200", "SXM"), words="H200", unless="NVL"),
        _gpu("B200", 2250, 1000, 180, (4.0, 7.0), 40_000, "NVIDIA HGX B200 data sheet (per GPU, dense)", words="B200"),
    )
}
GPUName = Literal["A100-40GB", "A100-80GB", "H100", "H100-PCIe", "H200", "B200"]  # the keys of GPUS

# The energy model's data-centre assumptions: `hfscratch plan`'s --pue and --usd_per_mwh defaults, and the model
# card's energy figure (board power x hours x PUE, priced per MWh).
PUE = 1.1
USD_PER_MWH = 100.0

# A MIG slice has a fraction of the GPU's peak and memory: it is none of the GPUs above.
_NOT_A_WHOLE_GPU = frozenset({"MIG"})


def device_name_words(device: str) -> frozenset[str]:
    """'NVIDIA A100-SXM4-80GB' -> {NVIDIA, A100, SXM4, 80GB}: upper-case words, '80 GB' written as '80GB'."""
    return frozenset(re.findall(r"[A-Z0-9]+", re.sub(r"(\d)\s+GB\b", r"\1GB", device.upper())))


def match_gpu(device: str) -> GPU | None:
    """The table's GPU a device name refers to (`torch.cuda.get_device_name()` or a table key), else None.

    A name matches an entry when it contains all of the entry's words and none of its excluding ones, whole words
    only: "NVIDIA H100 80GB HBM3" is the H100 (SXM), "NVIDIA H100 PCIe" the H100-PCIe, and "NVIDIA GH200 480GB"
    (a Grace Hopper superchip, whose power is the whole module's) is not the H200. An unknown device is None, so
    a caller says it does not know rather than using another GPU's figures.
    """
    words = device_name_words(device)
    if words & _NOT_A_WHOLE_GPU:
        return None
    matches = [gpu for gpu in GPUS.values() if gpu.name_words <= words and not gpu.not_name_words & words]
    return matches[0] if len(matches) == 1 else None
