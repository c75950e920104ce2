"""Render, validate and write the model card (README.md) of a model folder.

The card is `huggingface_hub.ModelCard.from_template` over the Jinja template in `hfscratch/hub/templates/`, with
`ModelCardData` as its YAML header: licence, language, tags, `library_name: transformers`,
`pipeline_tag: text-generation` and the evaluation results as `model-index`. Its body tells how the model was made,
from the files of `hfscratch.hub.lineage`.

Validation is offline: `ModelCard.validate` posts to the Hub's /api/validate-yaml, which this kit must not need.
`validate_card` instead re-parses the rendered text strictly with huggingface_hub's own parser (the YAML header,
`ModelCardData`, and `model-index` back into `EvalResult`s) and checks that the round trip gives back exactly the
metadata and results that went in. `push` also passes the card through the Hub's check on upload.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from hfscratch.core.recipes import RecipeError
from hfscratch.core.resources import model_card_template
from hfscratch.evaluation.report import eval_results as scores_to_eval_results
from hfscratch.hub import facts
from hfscratch.hub.lineage import Lineage, gather_lineage

CARD_FILE = "README.md"
# The images the card shows, and where each comes from (name in the card folder -> how to find it).
LOSS_CURVE, FUNNEL, SCORES_PLOT = "loss_curve.png", "curation_funnel.png", "evaluation_scores.png"


# -- Rendering -----------------------------------------------------------------------------------------------


def card_data(
    lineage: Lineage,
    model_name: str,
    license: str = "apache-2.0",
    language: list[str] | None = None,
    datasets: list[str] | None = None,
    tags: list[str] | None = None,
    llama: bool = False,
) -> ModelCardData:
    eval_results = scores_to_eval_results(lineage.scores, model_name) if lineage.scores else None
    base_tags = ["hfscratch", "pretrained-from-scratch", "llama" if llama else "custom_code"]
    return ModelCardData(
        language=language or ["en"],
        license=license,
        library_name="transformers",
        pipeline_tag="text-generation",
        tags=base_tags + list(tags or []),
        datasets=datasets or None,
        # model_name only names the model-index; without results it would be a stray key in the header.
        model_name=model_name if eval_results else None,
        eval_results=eval_results or None,
    )


def render_card(
    lineage: Lineage,
    repo_id: str | None = None,
    template: str | Path | None = None,
    device_watts: float | None = None,
    llama: bool = False,
    **metadata: Any,
) -> ModelCard:
    """The model card of `lineage`'s model, to be published as `repo_id` (or loaded from its folder)."""
    template = Path(template) if template else model_card_template()
    if not template.is_file():
        raise RecipeError(f"model card template {template} not found (expected a Jinja Markdown file)")
    model_name = metadata.pop("model_name", None) or (repo_id or lineage.model_dir.resolve().name).split("/")[-1]
    data = card_data(lineage, model_name, llama=llama, **metadata)
    arch = facts.architecture(lineage)
    if llama and not arch["llama_ok"]:
        raise RecipeError(f"--llama: this model cannot be exported to Llama: {arch['llama_why']}")
    lineage_facts = facts.data_lineage(lineage)
    context = {
        "model_name": model_name,
        "repo_id": repo_id,
        "load_path": repo_id or str(lineage.model_dir),
        "llama": llama,
        "arch": arch,
        "data": lineage_facts,
        "train": facts.training(lineage),
        "compute": facts.compute(lineage, device_watts),
        "evaluation": facts.evaluation(lineage.scores),
        "scores_plot": SCORES_PLOT if lineage.scores_plot else None,
        "loss_curve": LOSS_CURVE if lineage.loss_curve else None,
        "funnel_plot": FUNNEL if lineage.funnel_plot else None,
        "not_recorded": facts.NOT_RECORDED,
    }
    return ModelCard.from_template(data, template_path=str(template), **context)


def validate_card(card: ModelCard | str) -> ModelCard:
    """Offline check of a card's metadata with huggingface_hub's own parser; returns the re-parsed card.

    Raises RecipeError when the YAML header does not parse, `model-index` does not turn back into `EvalResult`s
    (huggingface_hub raises ValueError), or the round trip changes anything.
    """
    text = str(card)
    try:
        parsed = ModelCard(text, ignore_metadata_errors=False)
    except ValueError as exc:
        raise RecipeError(f"model card metadata is invalid: {' '.join(str(exc).split())}") from None
    data = parsed.data
    for key, expected in (("library_name", "transformers"), ("pipeline_tag", "text-generation")):
        if data.get(key) != expected:
            raise RecipeError(f"model card metadata: {key} is {data.get(key)!r}, expected {expected!r}")
    if not data.get("license"):
        raise RecipeError("model card metadata: no license")
    if isinstance(card, ModelCard):
        if data.to_dict() != card.data.to_dict():
            raise RecipeError("model card metadata does not survive a YAML round trip")
        if (card.data.eval_results or []) != (data.eval_results or []):
            raise RecipeError("model card model-index does not parse back into the same evaluation results")
    return parsed


def write_model_card(
    model_dir: str | Path,
    card_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    repo_id: str | None = None,
    evaluation_dir: str | Path | None = None,
    **options: Any,
) -> Path:
    """Render, validate and write `README.md` and its images into `card_dir` (default: the model folder).

    Returns the README's path. `data_dir` (a `hfscratch tokenize` output) stands in for run_info.json's record of
    it, `evaluation_dir` (a `hfscratch evaluate` output) for MODEL_DIR/evaluation; `options` are
    `render_card`'s (template, device_watts, llama, license, language, datasets, tags, model_name).
    """
    return write_card(gather_lineage(model_dir, data_dir, evaluation_dir), card_dir, repo_id, **options)


def write_card(
    lineage: Lineage, card_dir: str | Path | None = None, repo_id: str | None = None, **options: Any
) -> Path:
    """`write_model_card` for a lineage already gathered. The README is written to a temporary name and renamed,
    so a failure leaves no half-written card behind."""
    card = render_card(lineage, repo_id=repo_id, **options)
    validate_card(card)
    out = Path(card_dir) if card_dir else lineage.model_dir
    out.mkdir(parents=True, exist_ok=True)
    images = ((LOSS_CURVE, lineage.loss_curve), (FUNNEL, lineage.funnel_plot), (SCORES_PLOT, lineage.scores_plot))
    for name, source in images:
        if source is None:
            (out / name).unlink(missing_ok=True)  # an image of an earlier render that this card no longer shows
        elif source.resolve() != (out / name).resolve():
            shutil.copyfile(source, out / name)
    tmp = out / f".{CARD_FILE}.{os.getpid()}.partial"  # created with the usual permissions, unlike mkstemp's 0600
    try:
        card.save(tmp)
        os.replace(tmp, out / CARD_FILE)
    finally:
        tmp.unlink(missing_ok=True)
    return out / CARD_FILE
