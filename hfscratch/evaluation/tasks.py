"""lm-eval tasks read from a local mirror: overrides that change only where the data comes from.

For each leaf task a run needs, the override is a YAML file with the stock task name that `include:`s the
installed stock YAML and sets `dataset_path` to the mirror's folder (`DATA_DIR/allenai/ai2_arc` for
`allenai/ai2_arc`); `TaskManager(include_path=...)` lets it replace the stock task, so prompts, metrics and
group aggregation stay lm-eval's own (the stock `mmlu` group picks up the overridden subjects). A mirror
without a task's training split (HellaSwag's) gets `training_split: null`, which is what lm-eval does for
tasks that have none: few-shot examples then come from the validation split, never the item itself.

The same folder works with the stock CLI: `lm_eval ... --include_path OUTPUT/lm_eval_tasks`.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hfscratch.core.recipes import RecipeError

logger = logging.getLogger(__name__)

SPLIT_KEYS = ("test_split", "validation_split", "training_split", "fewshot_split")


class _ExpectedOverrides(logging.Filter):
    """Drops lm-eval's warning for each task our include path replaces: replacing them is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "overrides existing task" not in record.getMessage()


class _OnceOnly(logging.Filter):
    """Lets the first of a repeated per-request warning through (with a note), then drops the rest."""

    def __init__(self, fragment: str):
        super().__init__()
        self.fragment, self.seen = fragment, False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.fragment not in record.getMessage():
            return True
        if self.seen:
            return False
        self.seen = True
        record.msg = f"{record.getMessage()} (said once; it applies to every prompt this long)"
        record.args = ()
        return True


def quiet_lm_eval() -> None:
    """lm-eval's INFO chatter off the console (progress bars stay: they are tqdm, not logging)."""
    lm_logger = logging.getLogger("lm_eval")
    if lm_logger.level in (logging.NOTSET, logging.INFO, logging.DEBUG):
        lm_logger.setLevel(logging.WARNING)
    model_logger = logging.getLogger("lm_eval.models.huggingface")
    if not any(isinstance(f, _OnceOnly) for f in model_logger.filters):
        model_logger.addFilter(_OnceOnly("exceeds model's maximum length"))
        model_logger.addFilter(_OnceOnly("model kwarg is not of type `str`"))  # the in-training callback's HFLM
    index_logger = logging.getLogger("lm_eval.tasks._index")
    if not any(isinstance(f, _ExpectedOverrides) for f in index_logger.filters):
        index_logger.addFilter(_ExpectedOverrides())


_MANAGERS: dict[tuple[str, bool], Any] = {}


def _task_manager(include_paths: tuple[str, ...], fingerprint: str, include_defaults: bool) -> Any:
    # Keyed by the files' content, not their folder: override YAMLs hold absolute paths only, so two folders
    # with the same files (two runs into different output dirs) describe the same tasks.
    key = (fingerprint, include_defaults)
    if key not in _MANAGERS:
        from lm_eval.tasks import TaskManager

        quiet_lm_eval()
        if len(_MANAGERS) >= 4:
            _MANAGERS.pop(next(iter(_MANAGERS)))
        _MANAGERS[key] = TaskManager(include_path=list(include_paths) or None, include_defaults=include_defaults)
    return _MANAGERS[key]


def task_manager(include_paths: list[Path] | None = None, include_defaults: bool = True) -> Any:
    """A `TaskManager` over lm-eval's tasks and `include_paths`, built once per process for the same files
    (scanning lm-eval's ~15,000 task YAMLs takes 10-20 s)."""
    paths = tuple(str(Path(p).resolve()) for p in include_paths or [])
    digest = hashlib.sha256()
    for path in paths:
        for file in sorted(Path(path).rglob("*.yaml")):
            digest.update(file.relative_to(path).as_posix().encode() + file.read_bytes())
    return _task_manager(paths, digest.hexdigest(), include_defaults)


@dataclass(frozen=True)
class LeafTask:
    name: str
    yaml_path: Path
    config: dict[str, Any]  # with includes resolved


def leaf_tasks(names: list[str], index: dict[str, Any]) -> list[LeafTask]:
    """The YAML-defined tasks that `names` (tasks, groups, tags) stand for; a `RecipeError` for unknown names."""
    from lm_eval.tasks._index import Kind

    found: dict[str, LeafTask] = {}

    def visit(name: str, parent: str | None) -> None:
        entry = index.get(name)
        if entry is None:
            close = difflib.get_close_matches(name, list(index), n=3)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            where = f" (in group {parent!r})" if parent else ""
            raise RecipeError(f"key 'tasks': lm-eval has no task {name!r}{where}{hint}; `lm-eval ls tasks` lists them")
        if entry.kind == Kind.TASK:
            found.setdefault(name, LeafTask(name, Path(entry.yaml_path), entry.cfg))
        elif entry.kind == Kind.TAG:
            for task in sorted(entry.tags):
                visit(task, name)
        elif entry.kind == Kind.GROUP:
            for child in entry.cfg.get("task", []):
                if isinstance(child, str):
                    visit(child, name)
                # an inline task config inside a group has no file to include; it reads where it says

    for name in names:
        visit(name, None)
    return list(found.values())


def mirror_configs(dataset_dir: Path) -> dict[str, set[str]] | None:
    """Config name -> splits declared in a Hub-layout dataset folder's README `configs:` header (None if absent)."""
    readme = dataset_dir / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return None
    header = yaml.safe_load(text.split("---", 2)[1]) or {}
    configs = header.get("configs")
    if not configs:
        return None
    splits: dict[str, set[str]] = {}
    for config in configs:
        files = config.get("data_files", [])
        names = {f["split"] for f in files if isinstance(f, dict) and "split" in f}
        splits[config.get("config_name", "default")] = names or {"train"}
    return splits


def override_for(task: LeafTask, data_dir: Path) -> dict[str, Any]:
    """The override YAML of one task, after checking that the mirror has the config and splits it reads."""
    config = task.config
    hub_id = config.get("dataset_path")
    if not hub_id or hub_id in {"json", "csv", "parquet", "text", "arrow"}:
        raise RecipeError(f"task {task.name!r} reads {hub_id!r} files, not a Hub dataset: --data_dir cannot serve it")
    local = data_dir / hub_id
    if not local.is_dir():
        raise RecipeError(
            f"key 'data_dir': {data_dir} has no {hub_id}/ (task {task.name!r} reads the Hub dataset {hub_id!r}; "
            f"expected a copy in the Hub layout at {local})"
        )
    override: dict[str, Any] = {"include": str(task.yaml_path), "task": task.name, "dataset_path": str(local.resolve())}
    declared = mirror_configs(local)
    if declared is None:
        return override  # no configs header: datasets infers the layout itself
    config_name = config.get("dataset_name") or "default"
    if config_name not in declared:
        raise RecipeError(
            f"key 'data_dir': {local} has no config {config_name!r} for task {task.name!r} "
            f"(its README declares {', '.join(sorted(declared))})"
        )
    splits = declared[config_name]
    # The split scored is the test split, else the validation split; the others only feed few-shot examples,
    # and lm-eval falls back from a missing training split to the validation split (then the test split).
    scored = "test_split" if config.get("test_split") else "validation_split"
    for key in SPLIT_KEYS:
        split = config.get(key)
        if split is None or split in splits:
            continue
        if key in ("training_split", "validation_split") and key != scored:
            override[key] = None
            continue
        raise RecipeError(
            f"key 'data_dir': {local} config {config_name!r} has no {split!r} split, which task {task.name!r} "
            f"reads as its {key} (it has {', '.join(sorted(splits))})"
        )
    return override


def write_overrides(
    names: list[str], data_dir: Path, out_dir: Path, stock_index: dict[str, Any], also: list[str] = ()
) -> dict[str, str]:
    """Write one override YAML per leaf task of `names` into `out_dir`; return task -> Hub dataset id.

    `also` are tasks to override too where the mirror serves them (silently skipped where it does not): with
    the kit's standard tasks always in, runs asking for different subsets write the same folder, and the
    (slow to build) task index is built once per process.
    """
    tasks = leaf_tasks(names, stock_index)
    overrides = {task.name: override_for(task, data_dir) for task in tasks}
    for task in leaf_tasks([n for n in also if n in stock_index], stock_index):
        if task.name not in overrides:
            try:
                overrides[task.name] = override_for(task, data_dir)
            except RecipeError:
                continue
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.yaml"):
        stale.unlink()
    for name, override in sorted(overrides.items()):
        (out_dir / f"{name}.yaml").write_text(yaml.safe_dump(override, sort_keys=False))
    return {task.name: task.config.get("dataset_path") for task in tasks}


def lm_eval_version() -> str:
    from importlib.metadata import version

    return version("lm_eval")
