"""Trainer callbacks of a pretraining run: throughput and MFU, the stability guard, the last step's log, the
loss-curve plot."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer_callback import ExportableState

from hfscratch.core.cpu_peak import cpu_peak
from hfscratch.core.hardware import match_gpu

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DevicePeak:
    """The FLOP/s of one device that MFU divides by, and where the figure came from."""

    flops: float
    source: str  # "recipe (...)", "GPU table: ...", "CPU probe: ..."

    def describe(self) -> str:
        return f"MFU against {self.flops / 1e12:.4g} TFLOP/s per device ({self.source})"


def device_peak(peak_tflops_per_device: float | None, dtype: torch.dtype | None = None) -> DevicePeak | None:
    """The peak MFU is measured against: the recipe's figure, else the dense bf16 data-sheet peak of a GPU the
    hardware table knows, else, on a CPU, its measured matmul peak in `dtype` (the dtype the model's matmuls run
    in: bfloat16 under bf16 autocast, else float32). None for a GPU the table does not know."""
    if peak_tflops_per_device is not None:
        return DevicePeak(peak_tflops_per_device * 1e12, f"recipe: peak_tflops_per_device {peak_tflops_per_device}")
    if not torch.cuda.is_available():
        measured = cpu_peak(dtype or torch.float32)
        return DevicePeak(measured.flops, measured.describe())
    name = torch.cuda.get_device_name()
    gpu = match_gpu(name)
    return DevicePeak(gpu.peak_tflops * 1e12, f"GPU table: {gpu.name}, dense bf16, {gpu.source}") if gpu else None


def device_peak_flops(peak_tflops_per_device: float | None, dtype: torch.dtype | None = None) -> float | None:
    """`device_peak(...)`'s FLOP/s alone."""
    peak = device_peak(peak_tflops_per_device, dtype)
    return peak.flops if peak else None


def compute_dtype(args: TrainingArguments) -> torch.dtype:
    """The dtype a run's matmuls compute in: the autocast dtype under bf16/fp16, else float32."""
    return torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else torch.float32


class ThroughputMeter(TrainerCallback):
    """Tokens per second (in all and per device) and model FLOPs utilisation between two training logs.

    Only time spent in training steps counts: the clock restarts after evaluations and checkpoint saves.
    MFU = FLOPs per token (6N plus attention, from the model) x tokens/s per device / device peak; the peak and
    where it came from (`device_peak`) are printed when training begins.
    """

    def __init__(self, flops_per_token: float | None, peak: DevicePeak | None, world_size: int):
        self.flops_per_token = flops_per_token
        self.peak = peak
        self.world_size = world_size
        self._train_seconds = 0.0
        self._clock = time.perf_counter()
        self._tokens_at_last_measure = 0

    @property
    def peak_flops(self) -> float | None:
        return self.peak.flops if self.peak else None

    def on_train_begin(self, args, state, control, **kwargs) -> None:
        self._tokens_at_last_measure = state.num_input_tokens_seen  # a resumed run starts from its checkpoint's
        if state.is_world_process_zero:
            unknown = "MFU not logged: the device's peak is unknown (set peak_tflops_per_device)"
            print(self.peak.describe() if self.peak else unknown, flush=True)
        self._restart_clock()

    def _restart_clock(self, *args, **kwargs) -> None:
        self._clock = time.perf_counter()

    on_evaluate = on_save = _restart_clock

    def on_step_end(self, args, state, control, **kwargs) -> None:
        now = time.perf_counter()
        self._train_seconds += now - self._clock
        self._clock = now

    def measure(self, tokens_seen: int) -> dict[str, float]:
        """Throughput since the previous call (the first call measures from the start of training)."""
        tokens, seconds = tokens_seen - self._tokens_at_last_measure, self._train_seconds
        self._tokens_at_last_measure, self._train_seconds = tokens_seen, 0.0
        if seconds <= 0 or tokens <= 0:
            return {}
        per_device = tokens / seconds / self.world_size
        metrics = {"tokens_per_second": tokens / seconds, "tokens_per_second_per_device": per_device}
        if self.peak_flops and self.flops_per_token:
            metrics["mfu"] = self.flops_per_token * per_device / self.peak_flops
        return metrics


class StabilityGuard(TrainerCallback, ExportableState):
    """Skips optimizer steps whose loss is NaN/inf or spikes, and stops a run that keeps failing.

    The Trainer adds each micro-batch's loss with `add_loss`; before the optimizer step the guard averages the
    step's loss over processes (every rank must take the same decision) and compares it with a running mean of
    accepted steps. A bad step is logged and skipped by dropping its gradients (AdamW leaves a parameter without
    a gradient untouched, moments and step count included). After `max_bad_steps` bad steps in a row the run
    stops with a checkpoint of the last good weights. Under DeepSpeed the engine steps inside `backward`, before
    any callback runs, so there the guard can only detect and stop, and saves no checkpoint of the bad weights.
    """

    def __init__(
        self,
        spike_factor: float | None = 3.0,
        max_bad_steps: int = 3,
        can_skip: bool = True,
        warmup_steps: int = 10,
        smoothing: float = 0.9,
    ):
        self.spike_factor = spike_factor
        self.max_bad_steps = max_bad_steps
        self.can_skip = can_skip
        self.warmup_steps = warmup_steps  # accepted steps before spikes are judged: early loss moves fast
        self.smoothing = smoothing
        self.running_loss: float | None = None
        self.accepted_steps = 0
        self.bad_in_a_row = 0
        self.skipped_steps = 0
        self.failure: str | None = None  # why the run stopped, for the command's error message
        self._step_loss = torch.zeros(())

    def add_loss(self, loss: torch.Tensor) -> None:
        self._step_loss = self._step_loss.to(loss.device) + loss.detach().float()

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs) -> None:
        loss = self._step_loss
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            loss = loss.clone()
            dist.all_reduce(loss)  # NaN anywhere becomes NaN everywhere: all ranks skip together
            loss /= dist.get_world_size()
        self._step_loss = torch.zeros((), device=loss.device)
        value = loss.item()
        problem = self.judge(value)
        if problem is None:
            self.running_loss = (
                value
                if self.running_loss is None
                else (self.smoothing * self.running_loss + (1 - self.smoothing) * value)
            )
            self.accepted_steps += 1
            self.bad_in_a_row = 0
            return
        self.bad_in_a_row += 1
        self.skipped_steps += 1
        if self.can_skip:
            for param in model.parameters():
                param.grad = None
        action = "skipped" if self.can_skip else "already applied by DeepSpeed"
        logger.warning(f"step {state.global_step + 1}: {problem}; {action} ({self.bad_in_a_row} bad in a row)")
        if self.bad_in_a_row >= self.max_bad_steps:
            self.failure = (
                f"training stopped at step {state.global_step + 1}: {self.bad_in_a_row} bad steps in a row "
                f"(last: {problem}); lower learning_rate, raise warmup_steps or check the data near this step"
            )

    def judge(self, loss: float) -> str | None:
        """Why a step's loss is bad, or None when it is fine."""
        if not math.isfinite(loss):
            return f"loss is {loss}"
        if (
            self.spike_factor is not None
            and self.running_loss is not None
            and self.accepted_steps >= self.warmup_steps
            and loss > self.spike_factor * self.running_loss
        ):
            return f"loss spike {loss:.4g} > {self.spike_factor} x running loss {self.running_loss:.4g}"
        return None

    def on_step_end(self, args, state, control: TrainerControl, **kwargs) -> None:
        if self.failure is not None:
            control.should_training_stop = True
            control.should_save = self.can_skip  # skipped steps left the weights as they were: safe to save

    def state(self) -> dict:
        return {
            "args": {
                "spike_factor": self.spike_factor,
                "max_bad_steps": self.max_bad_steps,
                "can_skip": self.can_skip,
                "warmup_steps": self.warmup_steps,
                "smoothing": self.smoothing,
            },
            "attributes": {
                "running_loss": self.running_loss,
                "accepted_steps": self.accepted_steps,
                "bad_in_a_row": self.bad_in_a_row,
                "skipped_steps": self.skipped_steps,
            },
        }


class WallClockBudget(TrainerCallback):
    """Stops training once `seconds` of wall clock are spent, checked after each optimizer step.

    The stop is an ordinary end of training (the model is saved, the loss curve drawn), so a budgeted run
    still yields a usable model; `cut_short` says whether the budget, not `max_steps`, ended it."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = time.perf_counter()
        self.cut_short = False

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        self.start = time.perf_counter()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        if time.perf_counter() - self.start >= self.seconds:
            self.cut_short = state.global_step < state.max_steps
            control.should_training_stop = True
            control.should_save = args.save_strategy != "no"  # a resumable checkpoint at the stopping point


class LogLastStep(TrainerCallback):
    """Logs the last step of a run whatever `logging_steps` is, so the loss curve and the summary reach the end
    (a run shorter than `logging_steps` would otherwise log no training loss at all)."""

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        if state.global_step >= state.max_steps:
            control.should_log = True


class LossCurvePlot(TrainerCallback):
    """Writes `loss_curve.png` (training and validation loss against step) to the output folder at the end."""

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control, **kwargs) -> None:
        if state.is_world_process_zero:
            plot_loss_curve(state.log_history, Path(args.output_dir) / "loss_curve.png")


def plot_loss_curve(log_history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on a cluster node
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for key, label in (("loss", "train"), ("eval_loss", "validation")):
        points = [(row["step"], row[key]) for row in log_history if key in row]
        if points:
            ax.plot(*zip(*points), label=label, marker="o" if key == "eval_loss" else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats per token)")
    ax.grid(alpha=0.3)
    if ax.lines:  # a run stopped before its first log has nothing to plot
        ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
