"""Where a model came from: the chain of files each step wrote, read back for the model card.

    MODEL_DIR/run_info.json --data_dir--> tokenize output/stats.json --corpus--> curate output/stats.json
    MODEL_DIR/trainer_state.json, all_results.json, loss_curve.png, evaluation/scores.json

The step artifacts are read through the dataclasses they were written from (`RunInfo`, `TokenizeStats`,
`CurationStats`, `Scores`), so a renamed or missing key is a one-line error naming the file and the key, never a
silent "not recorded". Every link is optional: a model trained on a corpus from elsewhere, or a folder moved to
another machine, still gets a card, and the card says "not recorded" for what is absent (`Lineage.missing` says
why). Nothing here unpickles anything: `training_args.bin` is never opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfscratch.core.artifacts import Artifact, ArtifactError, read_json_object
from hfscratch.core.recipes import RecipeError
from hfscratch.curation.artifacts import CurationStats
from hfscratch.evaluation.scores import Scores, read_scores
from hfscratch.tokenization.artifacts import TokenizeStats
from hfscratch.training.run_info import RunInfo

EVALUATION_DIR = "evaluation"  # `hfscratch evaluate`'s default output folder inside the model folder


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`; None when the file does not exist."""
    if not path.is_file():
        return None
    try:
        return read_json_object(path)
    except ValueError as exc:
        raise RecipeError(f"{path}: {exc}") from None


def read_artifact(kind: type[Artifact], folder: Path) -> Any:
    """The artifact `kind` in `folder`, None when the step that writes it has not run there."""
    try:
        return kind.read_or_none(folder)
    except ArtifactError as exc:
        raise RecipeError(str(exc)) from None


@dataclass
class Lineage:
    """The facts files of one model folder and of the data it was trained on (None where a link is missing)."""

    model_dir: Path
    config: dict[str, Any]
    run_info: RunInfo | None = None
    trainer_state: dict[str, Any] | None = None
    results: dict[str, Any] | None = None  # all_results.json (train + eval metrics), else train_results.json
    data_dir: Path | None = None
    tokenize_stats: TokenizeStats | None = None
    corpus_dir: Path | None = None
    curate_stats: CurationStats | None = None
    evaluation_dir: Path | None = None
    scores: Scores | None = None  # every result `hfscratch evaluate` recorded (scores.json)
    missing: list[str] = field(default_factory=list)  # one line per broken link, for the terminal

    @property
    def log_history(self) -> list[dict[str, Any]]:
        return (self.trainer_state or {}).get("log_history", [])

    @property
    def loss_curve(self) -> Path | None:
        path = self.model_dir / "loss_curve.png"
        return path if path.is_file() else None

    @property
    def scores_plot(self) -> Path | None:
        path = self.evaluation_dir / "scores.png" if self.evaluation_dir else None
        return path if path and path.is_file() and self.scores is not None and not self.scores.is_empty() else None

    @property
    def funnel_plot(self) -> Path | None:
        path = self.corpus_dir / "funnel.png" if self.corpus_dir else None
        return path if path and path.is_file() else None


def gather_lineage(
    model_dir: str | Path, data_dir: str | Path | None = None, evaluation_dir: str | Path | None = None
) -> Lineage:
    """Follow the files from `model_dir` back to the curated corpus.

    `data_dir` (a `hfscratch tokenize` output) stands in for run_info.json's when that is absent, e.g. for runs
    made before pretrain recorded it; `evaluation_dir` (a `hfscratch evaluate` output) for MODEL_DIR/evaluation.
    """
    model_dir = Path(model_dir)
    config = read_json(model_dir / "config.json")
    if config is None:
        raise RecipeError(f"{model_dir}: not a model folder (no config.json; expected a `hfscratch pretrain` output)")
    if config.get("model_type") != "hfscratch":
        raise RecipeError(
            f"{model_dir}/config.json: model_type is {config.get('model_type')!r}; the card describes hfscratch models "
            "(model_type 'hfscratch', as `hfscratch pretrain` saves them)"
        )
    lineage = Lineage(model_dir=model_dir, config=config)
    lineage.run_info = read_artifact(RunInfo, model_dir)
    lineage.trainer_state = read_json(model_dir / "trainer_state.json")
    lineage.results = read_json(model_dir / "all_results.json") or read_json(model_dir / "train_results.json")
    lineage.evaluation_dir = Path(evaluation_dir) if evaluation_dir else model_dir / EVALUATION_DIR
    lineage.scores = read_scores(lineage.evaluation_dir)
    for name, value in (("run_info.json", lineage.run_info), ("trainer_state.json", lineage.trainer_state)):
        if value is None:
            lineage.missing.append(f"{model_dir / name} not found: training facts not recorded")
    if lineage.scores is None:
        where = lineage.evaluation_dir / "scores.json"
        lineage.missing.append(f"{where} not found: no evaluation results (run `hfscratch evaluate`)")

    recorded = lineage.run_info.data_dir if lineage.run_info else None
    data = data_dir or recorded
    if data is None:
        lineage.missing.append("run_info.json records no data_dir (pass --data_dir): data lineage not recorded")
        return lineage
    lineage.data_dir = Path(data)
    lineage.tokenize_stats = read_artifact(TokenizeStats, lineage.data_dir)
    if lineage.tokenize_stats is None:
        lineage.missing.append(f"{lineage.data_dir / 'stats.json'} not found: tokenizer and token counts not recorded")
        return lineage

    lineage.corpus_dir = Path(lineage.tokenize_stats.corpus)
    # A tokenize corpus may also be a plain text or JSONL file, or a folder no curation step wrote.
    if lineage.corpus_dir.is_dir():
        lineage.curate_stats = read_artifact(CurationStats, lineage.corpus_dir)
    if lineage.curate_stats is None:
        lineage.missing.append(f"{lineage.corpus_dir} has no curation stats.json: curation funnel not recorded")
    return lineage
