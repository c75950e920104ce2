"""Evaluation results accumulate per task: a second `hfscratch evaluate` adds to the record, never erases it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from hfscratch.evaluation import EvaluateArguments, Scores, run_evaluation
from hfscratch.evaluation.report import eval_results

QUICK = dict(domain_max_items=40, perplexity_window=64, batch_size="16")


def evaluate(model_dir: Path, out: Path, **keys) -> Scores:
    return run_evaluation(
        EvaluateArguments(model_name_or_path=str(model_dir), output_dir=str(out), **{**QUICK, **keys})
    )


def model_index_groups(out: Path) -> dict[str, list[str]]:
    """Dataset name -> metric types of model-index.yaml."""
    block = yaml.safe_load((out / "model-index.yaml").read_text())["model-index"][0]
    return {r["dataset"]["name"]: [m["type"] for m in r["metrics"]] for r in block["results"]}


def test_a_second_run_adds_its_results_and_the_newest_run_of_a_task_wins(
    tokenized_corpus: Path, trained_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "evaluation"
    first = evaluate(trained_model_dir, out, domain_data=str(tokenized_corpus), perplexity_data=str(tokenized_corpus))
    assert set(first.tasks) == {"hfscratch_domain"} and list(first.perplexity) == [str(tokenized_corpus)]
    held_out = tmp_path / "other.txt"
    held_out.write_text("monday tuesday wednesday thursday friday saturday sunday " * 30)
    # a second run: the domain benchmark again with other settings, and perplexity on other data
    second = evaluate(trained_model_dir, out, domain_data=str(tokenized_corpus), domain_choices=3,
                      perplexity_data=str(held_out))  # fmt: skip

    recorded = Scores.read(out)
    assert recorded == second
    assert list(recorded.perplexity) == [str(tokenized_corpus), str(held_out)]  # both datasets kept
    assert recorded.perplexity[str(tokenized_corpus)] == first.perplexity[str(tokenized_corpus)]  # untouched
    domain = recorded.tasks["hfscratch_domain"]
    assert domain.chance == pytest.approx(100 / 3) and domain.date >= first.tasks["hfscratch_domain"].date  # newest
    assert domain.lm_eval_version and domain.num_fewshot == 0 and domain.limit is None  # its settings, recorded

    # every view shows every entry: report.md, the model-index, lm-eval's results.json
    report = (out / "report.md").read_text()
    assert report.count("perplexity on ") == 2 and "tokenized" in report and "other.txt" in report
    assert f"{domain.score:.2f}" in report
    assert model_index_groups(out) == {
        f"Domain cloze ({domain.samples} held-out items)": ["acc_mutual_info"],
        "Held-out text (tokenized)": ["perplexity", "bits_per_byte"],
        "Held-out text (other.txt)": ["perplexity", "bits_per_byte"],
    }
    assert len(eval_results(recorded, recorded.model)) == 5
    assert "hfscratch_domain" in json.loads((out / "results.json").read_text())["results"]
    assert not list(out.glob(".*partial*"))


def test_scores_of_other_weights_start_a_new_record(
    tokenized_corpus: Path, trained_model_dir: Path, random_model_dir: Path, tmp_path: Path, capsys
) -> None:
    """The same output folder for a retrained model (other weights): its old scores are not mixed in."""
    out = tmp_path / "evaluation"
    evaluate(random_model_dir, out, perplexity_data=str(tokenized_corpus))
    held_out = tmp_path / "other.txt"
    held_out.write_text("red orange yellow green blue indigo violet " * 30)
    evaluate(trained_model_dir, out, perplexity_data=str(held_out))
    assert list(Scores.read(out).perplexity) == [str(held_out)]
    assert "describes other weights" in capsys.readouterr().err


def test_an_old_or_broken_record_stops_the_run_before_any_scoring(random_model_dir: Path, tmp_path: Path) -> None:
    from hfscratch.core.recipes import RecipeError

    out = tmp_path / "evaluation"
    out.mkdir()
    (out / "scores.json").write_text(json.dumps({"model": "m", "results": []}))  # the schema before records
    with pytest.raises(RecipeError, match=r"scores.json: schema_version None, .* move it away"):
        evaluate(random_model_dir, out, perplexity_data=str(out / "scores.json"))


@pytest.mark.slow
def test_arc_easy_after_the_quickstart_evaluation_keeps_domain_and_perplexity(
    tokenized_corpus: Path, trained_model_dir: Path, benchmarks_dir: Path, tmp_path: Path
) -> None:
    """The report's case: the quickstart's domain + perplexity evaluation, then `--tasks arc_easy --limit 50`."""
    from hfscratch.hub.facts import evaluation

    out = tmp_path / "model"
    shutil.copytree(trained_model_dir, out)
    evaluate(out, out / "evaluation", domain_data=str(tokenized_corpus), perplexity_data=str(tokenized_corpus))
    scores = evaluate(out, out / "evaluation", tasks=["arc_easy"], limit=50, data_dir=str(benchmarks_dir))
    assert set(scores.tasks) == {"hfscratch_domain", "arc_easy"} and scores.perplexity
    arc = scores.tasks["arc_easy"]
    assert (arc.limit, arc.samples, arc.num_fewshot) == (50, 50, 0) and 0 <= arc.score <= 100
    card = evaluation(Scores.read(out / "evaluation"))
    assert [row["key"] for row in card["tasks"]] == ["hfscratch_domain", "arc_easy"] and card["perplexity"]
    assert any(row["samples"] == "50 (limited)" for row in card["tasks"])
