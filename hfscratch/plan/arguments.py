"""The keys `hfscratch plan` takes (a recipe under recipes/plan/ or --key value), checked on construction."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hfscratch.core.hardware import GPUS, PUE, USD_PER_MWH, GPUName
from hfscratch.core.recipes import RecipeError

SIZE_OPTIONS = ("params", "preset", "model_config", "pretrain_recipe", "flops", "gpu_hours", "budget_usd")

_SUFFIXES = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}


def parse_count(text: str, what: str) -> float:
    """'1B' -> 1e9, '125m' -> 1.25e8, '7e9' -> 7e9; a RecipeError naming `what` otherwise."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgt]?)\s*", str(text), re.IGNORECASE)
    if not match or float(match[1]) <= 0:
        raise RecipeError(f"--{what}: expected a positive count such as 1B, 125M or 7e9, got {text!r}")
    return float(match[1]) * _SUFFIXES[match[2].lower()]


@dataclass
class PlanArguments:
    """What to size (give one), the run, the hardware and prices, and the output format."""

    # What to size: exactly one of these, unless --table.
    params: str | None = field(default=None, metadata={"help": "Parameter count, e.g. 1B, 125M, 7e9."})
    preset: str | None = field(
        default=None, metadata={"help": "Model preset (gpt2, llama, ...) with --size: counts parameters exactly."}
    )
    size: str = field(default="1b", metadata={"help": "Preset size (tiny, 125m, 350m, 1b, 7b) for --preset."})
    model_config: str | None = field(default=None, metadata={"help": "A model folder or config.json to count exactly."})
    pretrain_recipe: str | None = field(
        default=None,
        metadata={"help": "A pretrain recipe (recipes/pretrain/*.yaml): its model counted exactly, its train_tokens."},
    )
    flops: float | None = field(default=None, metadata={"help": "Compute budget in FLOPs, e.g. 1e23."})
    gpu_hours: float | None = field(default=None, metadata={"help": "Compute budget in GPU-hours of --gpu."})
    budget_usd: float | None = field(
        default=None, metadata={"help": "Compute budget in dollars of rented --gpu (at the range's midpoint)."}
    )
    # The run.
    tokens: str | None = field(
        default=None, metadata={"help": "Training tokens, e.g. 2T (default: compute-optimal for the size)."}
    )
    seq_len: int = field(default=2048, metadata={"help": "Sequence length, for the attention FLOPs term."})
    # Hardware and prices.
    gpu: GPUName = field(default="A100-80GB", metadata={"help": "GPU for the memory plan and budget conversions."})
    mfu: float = field(default=0.4, metadata={"help": "Model FLOPs utilisation assumed, as a fraction of peak."})
    num_gpus: int = field(default=1000, metadata={"help": "Cluster size: wall-clock time and purchase cost."})
    rent_usd_per_gpu_hour: list[float] | None = field(
        default=None, metadata={"help": "Rental price range LOW HIGH in $/GPU-hour of --gpu (default: per GPU)."}
    )
    gpu_price_usd: float | None = field(
        default=None, metadata={"help": "Purchase price of one --gpu (default: per GPU)."}
    )
    pue: float = field(default=PUE, metadata={"help": "Data-centre power usage effectiveness."})
    usd_per_mwh: float = field(default=USD_PER_MWH, metadata={"help": "Electricity price in $/MWh."})
    memory_headroom: float = field(
        default=0.25, metadata={"help": "Fraction of GPU memory left for activations, buffers and fragmentation."}
    )
    # Output.
    table: bool = field(default=False, metadata={"help": "Print the compute-optimal table and reference runs."})
    json: bool = field(default=False, metadata={"help": "Print JSON instead of tables."})

    def __post_init__(self) -> None:
        given = self.sized_by()
        options = ", ".join(f"--{k}" for k in SIZE_OPTIONS)
        if len(given) > 1:
            raise RecipeError(f"give one of {options}; got {' and '.join(f'--{k}' for k in given)}")
        if not given and not self.table:
            raise RecipeError(f"nothing to plan: give one of {options} (e.g. --params 1B), or --table")
        for key in ("params", "tokens"):
            if getattr(self, key) is not None:
                parse_count(getattr(self, key), key)  # a bad count fails here, before anything is computed
        for key in ("flops", "gpu_hours", "budget_usd"):
            if getattr(self, key) is not None and getattr(self, key) <= 0:
                raise RecipeError(f"--{key} must be positive, got {getattr(self, key)}")
        if self.gpu not in GPUS:
            raise RecipeError(f"--gpu: expected one of {', '.join(GPUS)}, got {self.gpu!r}")
        if not 0 < self.mfu <= 1:
            raise RecipeError(f"--mfu must be a fraction in (0, 1], got {self.mfu}")
        if not 0 <= self.memory_headroom < 1:
            raise RecipeError(f"--memory_headroom must be a fraction in [0, 1), got {self.memory_headroom}")
        if self.pue < 1:
            raise RecipeError(f"--pue is facility power over IT power, at least 1, got {self.pue}")
        if self.num_gpus < 1 or self.seq_len < 1:
            raise RecipeError("--num_gpus and --seq_len must be at least 1")
        if self.rent_usd_per_gpu_hour is not None and (
            len(self.rent_usd_per_gpu_hour) != 2
            or not 0 < self.rent_usd_per_gpu_hour[0] <= self.rent_usd_per_gpu_hour[1]
        ):
            raise RecipeError(
                f"--rent_usd_per_gpu_hour takes LOW HIGH with 0 < LOW <= HIGH, got {self.rent_usd_per_gpu_hour}"
            )

    def sized_by(self) -> list[str]:
        """The size options given (a valid plan has at most one)."""
        return [key for key in SIZE_OPTIONS if getattr(self, key)]
