"""Stages of datatrove pipelines and the executors that run them, locally or on Slurm: shared by curation
(step 1a) and tokenization on the curation engine (step 1b), so both run the same way on one machine and on
a cluster.

Every stage is one datatrove executor with its own logging folder (`logs/<stage>/`): a chain started again
skips the tasks that completed and redoes the rest. On Slurm each stage is one job array that depends on
the one before; the launch scripts are written to `logs/<stage>/launch_script.slurm`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Stage:
    """One datatrove executor of a chain: a name (its logging folder) and its pipeline steps."""

    name: str
    steps: list[Any]
    tasks: int


@dataclass(kw_only=True)
class SlurmOptions:
    """The recipe keys of the Slurm executor (mixed into the recipes of the steps that can run on Slurm)."""

    slurm_partition: str | None = field(default=None, metadata={"help": "Slurm partition (executor: slurm)."})
    slurm_time: str = field(default="12:00:00", metadata={"help": "Slurm time limit per task."})
    slurm_cpus_per_task: int = field(default=1, metadata={"help": "Slurm CPUs per task."})
    slurm_mem_per_cpu_gb: int = field(default=2, metadata={"help": "Slurm memory per CPU in GB."})
    slurm_venv: str | None = field(default=None, metadata={"help": "Virtual environment the Slurm jobs activate."})


def chain_executors(
    stages: list[Stage],
    logs: Path,
    executor: str,
    workers: int,
    slurm: SlurmOptions,
    job_prefix: str,
    preload: str | None,
) -> list[Any]:
    """One datatrove executor per stage, each depending on the one before. `workers` is how many tasks run
    at once (-1: all); `executor` is "local" or "slurm"; `preload` is the tasks' LD_PRELOAD (None: none)."""
    if executor == "local":
        from hfscratch.curation.progress import preload_in_workers

        preload_in_workers(stages, preload)
    chain: list[Any] = []
    for stage in stages:
        common = {
            "pipeline": stage.steps,
            "tasks": stage.tasks,
            "logging_dir": str(logs / stage.name),
            "depends": chain[-1] if chain else None,
        }
        if executor == "local":
            from hfscratch.curation.progress import QuietLocalExecutor

            at_once = min(workers, stage.tasks) if workers > 0 else stage.tasks
            chain.append(QuietLocalExecutor(workers=at_once, **common))
        elif executor == "slurm":
            from datatrove.executor import SlurmPipelineExecutor

            chain.append(
                SlurmPipelineExecutor(
                    job_name=f"{job_prefix}-{stage.name}",
                    partition=slurm.slurm_partition,
                    time=slurm.slurm_time,
                    cpus_per_task=slurm.slurm_cpus_per_task,
                    mem_per_cpu_gb=slurm.slurm_mem_per_cpu_gb,
                    env_command=slurm_environment(slurm.slurm_venv, preload),
                    workers=workers,
                    slurm_logs_folder=str(logs / stage.name / "slurm"),
                    **common,
                )
            )
        else:
            raise ValueError(f"executor: expected local or slurm, got {executor!r}")
    return chain


def slurm_environment(venv: str | None, preload: str | None) -> str | None:
    """The job script's lines before the task runs: the virtual environment, then the tasks' LD_PRELOAD."""
    lines = [] if venv is None else [f"source {shlex.quote(str(Path(venv) / 'bin' / 'activate'))}"]
    lines += [] if preload is None else [f"export LD_PRELOAD={shlex.quote(preload)}"]
    return " && ".join(lines) or None  # one line: datatrove indents it into its script template
