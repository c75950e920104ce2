"""The standard benchmarks through lm-eval's Python API: `simple_evaluate` with an `HFLM` around the model.

Prompts, metrics and aggregation are lm-eval's own, so the numbers mean what everyone else's mean; this
module only chooses tasks and few-shot counts (the presets), points lm-eval at a local mirror when asked
(`tasks.py`), and reads the one headline number per task out of lm-eval's results, with its chance level
computed from the items actually scored.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfscratch.evaluation.scores import Average, TaskScore, now, percent
from hfscratch.evaluation.tasks import leaf_tasks, lm_eval_version, quiet_lm_eval, task_manager, write_overrides


@dataclass(frozen=True)
class TaskInfo:
    """How a task is named and reported (the model card's model-index follows the Open LLM Leaderboard)."""

    task_name: str
    dataset_type: str
    dataset_name: str | None
    split: str
    metric: str


KNOWN_TASKS: dict[str, TaskInfo] = {
    "arc_easy": TaskInfo("ARC (Easy)", "allenai/ai2_arc", "ARC-Easy", "test", "acc_norm"),
    "arc_challenge": TaskInfo("ARC (Challenge)", "allenai/ai2_arc", "ARC-Challenge", "test", "acc_norm"),
    "hellaswag": TaskInfo("HellaSwag", "Rowan/hellaswag", None, "validation", "acc_norm"),
    "mmlu": TaskInfo("MMLU", "cais/mmlu", "all", "test", "acc"),
    "truthfulqa_mc1": TaskInfo("TruthfulQA (MC1)", "truthfulqa/truthful_qa", "multiple_choice", "validation", "acc"),
    "truthfulqa_mc2": TaskInfo("TruthfulQA (MC2)", "truthfulqa/truthful_qa", "multiple_choice", "validation", "acc"),
}


@dataclass(frozen=True)
class Preset:
    tasks: tuple[tuple[str, int], ...]  # (task, few-shot examples)
    average: bool = True


PRESETS: dict[str, Preset] = {
    # The Open LLM Leaderboard (v1, 2023): ARC 25-shot acc_norm, HellaSwag 10-shot acc_norm, MMLU 5-shot acc,
    # TruthfulQA 0-shot mc2, and their mean.
    "leaderboard-v1": Preset((("arc_challenge", 25), ("hellaswag", 10), ("mmlu", 5), ("truthfulqa_mc2", 0))),
    "zero-shot": Preset(
        (
            ("arc_easy", 0),
            ("arc_challenge", 0),
            ("hellaswag", 0),
            ("mmlu", 0),
            ("truthfulqa_mc1", 0),
            ("truthfulqa_mc2", 0),
        )
    ),
}


def requested_tasks(preset: str | None, tasks: Iterable[str], num_fewshot: int | None) -> list[tuple[str, int | None]]:
    """(task, few-shot) pairs of a run: the preset's, then the user's (None: the task's own default)."""
    pairs: list[tuple[str, int | None]] = list(PRESETS[preset].tasks) if preset else []
    seen = {name for name, _ in pairs}
    for name in tasks:
        for part in filter(None, (p.strip() for p in name.split(","))):  # --tasks a,b as lm-eval spells it
            if part not in seen:
                pairs.append((part, num_fewshot))
                seen.add(part)
    return pairs


CPU_BATCH_SIZE = 32


def make_lm(
    model: Any,
    batch_size: str | int = "auto",
    max_batch_size: int = 64,
    device: str | None = None,
    dtype: str = "auto",
    tokenizer: Any = None,
) -> Any:
    """An lm-eval `HFLM` around a model folder or a model in memory.

    A folder is loaded by `hfscratch.models.loading` (its checks and messages are every step's) and handed to
    lm-eval as a model, in the dtype and on the device `lm_eval --model hf` would choose.
    """
    import torch
    from lm_eval.models.huggingface import HFLM

    from hfscratch.models.loading import check_model_folder, load_model, load_tokenizer

    quiet_lm_eval()
    batch = int(batch_size) if str(batch_size).isdigit() else batch_size
    on_cpu = device == "cpu" or (device is None and not torch.cuda.is_available())
    if batch == "auto" and on_cpu:
        # lm-eval's search starts with max_batch_size full-length rows to find the memory limit: on a CPU there
        # is none to find and the probe alone takes a minute; a fixed batch is as fast.
        batch = CPU_BATCH_SIZE
    if isinstance(model, (str, Path)):
        check_model_folder(model)
        tokenizer = tokenizer or load_tokenizer(model)
        model = load_model(model, dtype, device or ("cuda" if torch.cuda.is_available() else "cpu"), check=False)
    # Every model here is a causal LM (the loader checked it): say so, rather than let lm-eval guess from model_type.
    return HFLM(
        pretrained=model, tokenizer=tokenizer, batch_size=batch, max_batch_size=max_batch_size, backend="causal"
    )


def task_manager_for(
    pairs: list[tuple[str, int | None]],
    *,
    data_dir: Path | None = None,
    overrides_dir: Path | None = None,
    extra_include: list[Path] | None = None,
    include_defaults: bool = True,
) -> tuple[Any, dict[str, str]]:
    """lm-eval's task manager for `pairs`, reading from `data_dir` (a local mirror) when given; unknown names fail
    here, with suggestions, before any work. Returns it and task -> Hub dataset id of the tasks read locally."""
    hub_ids: dict[str, str] = {}
    include = list(extra_include or [])
    if include_defaults:
        stock = task_manager()
        names = [name for name, _ in pairs]
        leaf_tasks(names, stock.task_index)
        if data_dir is not None:
            if overrides_dir is None:
                raise ValueError("overrides_dir is required with data_dir")
            hub_ids = write_overrides(names, Path(data_dir), overrides_dir, stock.task_index, also=list(KNOWN_TASKS))
            include.append(overrides_dir)
    return task_manager(include, include_defaults=include_defaults), hub_ids


def evaluate_tasks(
    lm: Any,
    tasks: list[Any],
    shots: int | None,
    manager: Any,
    *,
    limit: float | None = None,
    bootstrap_iters: int = 100000,
    seed: int = 1234,
    log_samples: bool = True,
) -> dict:
    """One `simple_evaluate` of `tasks` (names, or task objects `manager` loaded) at one few-shot count."""
    from lm_eval import simple_evaluate

    return simple_evaluate(
        model=lm,
        tasks=tasks,
        num_fewshot=shots,
        limit=limit,
        task_manager=manager,
        bootstrap_iters=bootstrap_iters,
        log_samples=log_samples,
        # lm-eval's default seeds, as its CLI uses them; the few-shot seed is the one that matters
        random_seed=0,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )


def run_harness(
    lm: Any,
    pairs: list[tuple[str, int | None]],
    *,
    limit: float | None = None,
    data_dir: Path | None = None,
    overrides_dir: Path | None = None,
    extra_include: list[Path] | None = None,
    include_defaults: bool = True,
    bootstrap_iters: int = 100000,
    seed: int = 1234,
    log_samples: bool = True,
) -> tuple[dict, dict[str, str]]:
    """Run lm-eval once per distinct few-shot count (the leaderboard runs each task at its own) and merge.

    Returns lm-eval's merged results and task -> Hub dataset id of the tasks read from `data_dir`.
    """
    manager, hub_ids = task_manager_for(
        pairs,
        data_dir=data_dir,
        overrides_dir=overrides_dir,
        extra_include=extra_include,
        include_defaults=include_defaults,
    )
    merged: dict[str, Any] = {}
    for shots in dict.fromkeys(shots for _, shots in pairs):
        names = [name for name, s in pairs if s == shots]
        results = evaluate_tasks(
            lm, names, shots, manager, limit=limit, bootstrap_iters=bootstrap_iters, seed=seed, log_samples=log_samples
        )
        merged = merge_results(merged, results)
    return merged, hub_ids


# -- what a task costs, for a time budget ------------------------------------------------------------------


@dataclass
class LoadedTask:
    """A requested task loaded once, with what a time budget needs to know about it."""

    name: str
    shots: int | None
    task: Any  # lm-eval's Task or Group, passed back to `simple_evaluate` as is
    leaves: dict[str, Any]  # leaf name -> Task (one for a plain task, 57 for mmlu)
    docs: dict[str, int]  # leaf name -> items it has

    def items(self, limit: float | None) -> int:
        """Items a run with `limit` (per leaf, lm-eval's meaning) scores."""
        return sum(items_under_limit(n, limit) for n in self.docs.values())


def items_under_limit(docs: int, limit: float | None) -> int:
    if limit is None:
        return docs
    return min(docs, math.ceil(limit * docs) if limit < 1 else int(limit))


def load_task(manager: Any, name: str, shots: int | None) -> LoadedTask:
    loaded = manager.load([name])
    task = loaded["groups"].get(name) or loaded["tasks"][name]
    leaves = loaded["tasks"]
    return LoadedTask(name, shots, task, leaves, {leaf: len(t.eval_docs) for leaf, t in leaves.items()})


def request_tokens_per_item(loaded: LoadedTask, lm: Any, seed: int, sample_docs: int = 4) -> float:
    """Tokens the model scores per item of `loaded`, counted on the requests lm-eval builds for the first
    `sample_docs` items of each leaf, with the run's few-shot count (few-shot examples are most of a prompt)."""
    tokens, docs = 0, 0
    for leaf in loaded.leaves.values():
        apply_fewshot(leaf, loaded.shots, seed)
        leaf.build_all_requests(limit=sample_docs)
        for instance in leaf.instances:
            context, rest = instance.args[0], instance.args[1]
            continuation = rest if isinstance(rest, str) else ""  # generate_until: generation kwargs
            tokens += min(len(lm.tok_encode(context + continuation)), lm.max_length)
        docs += len({instance.doc_id for instance in leaf.instances})
    return tokens / docs if docs else 0.0


def apply_fewshot(task: Any, shots: int | None, seed: int) -> None:
    """The few-shot count `simple_evaluate(num_fewshot=shots)` gives `task`, as it gives it (a task whose config
    says 0 keeps 0; None keeps the task's own, else 0)."""
    default = task.get_config("num_fewshot")
    if shots is not None and default != 0:
        task.set_config(key="num_fewshot", value=shots)
    elif shots is None and default is None:
        task.set_config(key="num_fewshot", value=0)
    task.set_fewshot_seed(seed=seed)


MERGED_KEYS = (
    "results",
    "groups",
    "group_subtasks",
    "configs",
    "versions",
    "n-shot",
    "higher_is_better",
    "n-samples",
    "samples",
)


def merge_results(into: dict, results: dict) -> dict:
    if not into:
        return results
    for key in MERGED_KEYS:
        if key in results:
            into.setdefault(key, {}).update(results[key])
    return into


# -- reading the headline numbers --------------------------------------------------------------------------


def leaf_names(name: str, results: dict) -> list[str]:
    children = results.get("group_subtasks", {}).get(name)
    if not children:
        return [name]
    return [leaf for child in children for leaf in leaf_names(child, results)]


def primary_metric(name: str, results: dict) -> str:
    if name in KNOWN_TASKS:
        return KNOWN_TASKS[name].metric
    row = results["results"][name]
    metrics = [key.split(",")[0] for key in row if "," in key and "_stderr" not in key]
    for preferred in ("acc_norm", "acc", "exact_match", "f1"):
        if preferred in metrics:
            return preferred
    if not metrics:
        raise ValueError(f"lm-eval reported no metric for {name!r}")
    return metrics[0]


def chance_level(name: str, metric: str, results: dict) -> float | None:
    """Expected score of a model that picks uniformly at random, over the items actually scored.

    Accuracy: the mean of 1/choices. TruthfulQA MC2 (probability mass on the true answers): the mean share of
    true answers. None for generation tasks.
    """
    samples = [s for leaf in leaf_names(name, results) for s in results.get("samples", {}).get(leaf, [])]
    if not samples or metric not in ("acc", "acc_norm"):
        return None
    if any(len(s.get("arguments", [])) < 2 for s in samples):
        return None  # not multiple choice
    if name == "truthfulqa_mc2":
        labels = [s["doc"]["mc2_targets"]["labels"] for s in samples]
        return statistics.fmean(sum(lab) / len(lab) for lab in labels)
    return statistics.fmean(1 / len(s["arguments"]) for s in samples)


def task_scores(
    results: dict, pairs: list[tuple[str, int | None]], limit: float | None, hub_ids: dict[str, str]
) -> list[TaskScore]:
    """One entry per requested task, in the order asked, in percent: what scores.json records."""
    date, version = now(), lm_eval_version()
    rows = []
    for name, _ in pairs:
        row = results["results"][name]
        metric = primary_metric(name, results)
        value = row.get(f"{metric},none")
        stderr = row.get(f"{metric}_stderr,none")
        info = KNOWN_TASKS.get(name) or describe_task(name, results, hub_ids)
        leaves = leaf_names(name, results)
        shots = results.get("n-shot", {}).get(leaves[0], 0)
        samples = sum(results.get("n-samples", {}).get(leaf, {}).get("effective", 0) for leaf in leaves)
        finite = isinstance(stderr, (int, float)) and math.isfinite(stderr)
        rows.append(
            TaskScore(
                task=name,
                task_name=info.task_name,
                dataset_type=info.dataset_type,
                dataset_name=info.dataset_name,
                split=info.split,
                metric=metric,
                score=100.0 * float(value),
                stderr=100.0 * float(stderr) if finite else None,
                chance=percent(chance_level(name, metric, results)),
                num_fewshot=int(shots),
                samples=int(samples),
                limit=limit,
                date=date,
                lm_eval_version=version,
            )
        )
    return rows


def describe_task(name: str, results: dict, hub_ids: dict[str, str]) -> TaskInfo:
    """Names of a task outside KNOWN_TASKS, from its lm-eval config (the Hub id even when read from a mirror)."""
    leaf = leaf_names(name, results)[0]
    config = results.get("configs", {}).get(leaf, {})
    return TaskInfo(
        task_name=config.get("task_alias") or name,
        dataset_type=hub_ids.get(leaf) or str(config.get("dataset_path", "unknown")),
        dataset_name=config.get("dataset_name"),
        split=config.get("test_split") or config.get("validation_split") or "test",
        metric=primary_metric(name, results),
    )


def average(preset: str, rows: list[TaskScore]) -> Average:
    """The leaderboard's average: the plain mean of each task's headline number."""
    chances = [row.chance for row in rows]
    return Average(
        preset=preset,
        tasks=[row.task for row in rows],
        score=statistics.fmean(row.score for row in rows),
        chance=statistics.fmean(chances) if all(c is not None for c in chances) else None,
        date=now(),
    )
