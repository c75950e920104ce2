"""Open-ended metrics, human ratings, the report and the model-index: no model needed."""

from __future__ import annotations

import csv
import json
import math
import statistics

import pytest

from hfscratch.core.recipes import RecipeError
from hfscratch.evaluation import eval_results
from hfscratch.evaluation.harness import requested_tasks
from hfscratch.evaluation.human import aggregate, read_scores, write_sheet
from hfscratch.evaluation.open_ended import bleu, rouge, score_answer
from hfscratch.evaluation.report import model_index_yaml, plot_scores, render_table, task_rows
from hfscratch.evaluation.scores import Average, PerplexityScore, Scores, TaskScore

PAIRS = [
    ("The cat sat on the mat.", "The cat is sitting on the mat."),
    ("Paris is the capital of France.", "The capital of France is Paris."),
    ("I have no comment.", "Nothing happens if you eat watermelon seeds."),
    ("A quick brown fox jumps over the lazy dog . It runs away .", "The quick brown fox jumped over a lazy dog."),
]


@pytest.mark.parametrize(("reference", "prediction"), PAIRS)
def test_bleu_and_rouge_match_sacrebleu_and_rouge_score_directly(reference: str, prediction: str) -> None:
    import sacrebleu
    from rouge_score import rouge_scorer

    expected_bleu = sacrebleu.corpus_bleu(
        [prediction], [[reference]], smooth_method="exp", smooth_value=0.0, tokenize="intl"
    ).score
    assert bleu(reference, prediction) == pytest.approx(expected_bleu, abs=1e-9)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"])
    direct = scorer.score(reference.replace(" . ", ".\n"), prediction.replace(" . ", ".\n"))
    ours = rouge(reference, prediction)
    assert ours["rouge1"] == pytest.approx(100 * direct["rouge1"].fmeasure)
    assert ours["rouge2"] == pytest.approx(100 * direct["rouge2"].fmeasure)
    assert ours["rougeL"] == pytest.approx(100 * direct["rougeLsum"].fmeasure)


def test_scores_agree_with_lm_evals_truthfulqa_generation_metrics() -> None:
    """lm-eval's own truthfulqa_gen scoring, on one answer against true and false references."""
    from lm_eval.tasks.truthfulqa.utils import process_results_gen

    doc = {
        "correct_answers": ["Nothing happens.", "You digest the seeds.", "I have no comment."],
        "incorrect_answers": ["You grow watermelons in your stomach.", "You get sick."],
    }
    answer = "Nothing happens, you just digest the seeds."
    theirs = process_results_gen(doc, [answer])
    ours = score_answer(answer, doc["correct_answers"], doc["incorrect_answers"])
    for metric in ("bleu", "rouge1", "rouge2", "rougeL"):
        for kind in ("max", "diff", "acc"):
            assert ours[f"{metric}_{kind}"] == pytest.approx(theirs[f"{metric}_{kind}"]), f"{metric}_{kind}"
    assert ours["bleu_acc"] == 1.0 and ours["rouge1_max"] > 50


def fill(sheet, scores_by_rater: dict[str, list[int]], out):
    rows = list(csv.DictReader(open(sheet, encoding="utf-8")))
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=rows[0].keys())
        writer.writeheader()
        counters = {rater: iter(values) for rater, values in scores_by_rater.items()}
        for row in rows:
            row["score"] = str(next(counters[row["rater"]]))
            writer.writerow(row)


def test_human_sheet_round_trip_mean_ci_and_agreement(tmp_path) -> None:
    from scipy import stats
    from sklearn.metrics import cohen_kappa_score

    rows = [{"id": str(i), "prompt": f"Q{i}?", "reference": f"A{i}.", "completion": f"answer {i}"} for i in range(6)]
    csv_path, html_path = write_sheet(rows, tmp_path, raters=2, model="tiny")
    page = html_path.read_text()
    assert "Rate each completion" in page and "A3." in page and "answer 5" in page and "<script>" in page
    a, b = [5, 4, 2, 1, 3, 4], [4, 4, 2, 2, 3, 5]
    fill(csv_path, {"rater1": a, "rater2": b}, tmp_path / "filled.csv")
    result = aggregate(read_scores([str(tmp_path / "filled.csv")]))
    means = [(x + y) / 2 for x, y in zip(a, b)]
    low, high = stats.t.interval(0.95, len(means) - 1, loc=statistics.fmean(means), scale=stats.sem(means))
    assert result["items"] == 6 and result["raters"] == 2 and result["ratings"] == 12
    assert result["mean"] == pytest.approx(statistics.fmean(means))
    assert result["ci95"] == pytest.approx([low, high])
    assert result["agreement_kappa"] == pytest.approx(
        cohen_kappa_score(a, b, labels=[1, 2, 3, 4, 5], weights="quadratic")
    )
    assert result["exact_agreement"] == pytest.approx(3 / 6)


def test_human_scores_reject_a_score_off_the_scale(tmp_path) -> None:
    sheet = tmp_path / "bad.csv"
    sheet.write_text("item_id,rater,score\n1,ann,4\n2,ann,7\n")
    with pytest.raises(RecipeError, match=r"bad.csv line 3: score '7' is not one of 1-5"):
        read_scores([str(sheet)])


def task(name: str, task_name: str, dataset: str, config: str, split: str, metric: str, score: float, **extra):
    fields = dict(stderr=1.3, num_fewshot=0, chance=25.0, samples=1172, limit=None)
    return TaskScore(
        task=name, task_name=task_name, dataset_type=dataset, dataset_name=config, split=split, metric=metric,
        score=score, date="2026-12-01T10:00:00+00:00", lm_eval_version="0.4.13", **{**fields, **extra},
    )  # fmt: skip


SCORES = Scores(
    model="tiny",
    tasks={
        "arc_challenge": task(
            "arc_challenge",
            "ARC (Challenge)",
            "allenai/ai2_arc",
            "ARC-Challenge",
            "test",
            "acc_norm",
            27.65,
            num_fewshot=25,
        ),
        "truthfulqa_mc2": task(
            "truthfulqa_mc2",
            "TruthfulQA (MC2)",
            "truthfulqa/truthful_qa",
            "multiple_choice",
            "validation",
            "acc",
            48.12,
            stderr=1.5,
            chance=38.5,
            samples=817,
        ),
    },  # fmt: skip
    averages={
        "leaderboard-v1": Average(
            preset="leaderboard-v1", tasks=["arc_challenge", "truthfulqa_mc2"], score=37.885, chance=31.75, date="d"
        )
    },
    perplexity={
        "val.txt": PerplexityScore(
            dataset="val.txt",
            documents=3,
            tokens=1000,
            bytes=2700,
            window=64,
            stride=32,
            nats_per_token=3.0,
            perplexity=math.exp(3.0),
            bits_per_byte=1.1,
            date="2026-12-01T10:00:00+00:00",
        )  # fmt: skip
    },
)


def test_model_index_follows_the_open_llm_leaderboard_shape(tmp_path) -> None:
    import yaml

    results = eval_results(SCORES, "tiny")
    arc = results[0]
    assert (arc.dataset_type, arc.dataset_config, arc.dataset_split) == ("allenai/ai2_arc", "ARC-Challenge", "test")
    assert arc.dataset_name == "ARC (Challenge) (25-Shot)" and arc.dataset_args == {"num_few_shot": 25}
    assert (arc.metric_type, arc.metric_value) == ("acc_norm", 27.65)
    assert results[1].metric_type == "mc2"  # as the leaderboard names it: MC1 and MC2 are both lm-eval's acc
    assert [r.metric_type for r in results[2:]] == ["perplexity", "bits_per_byte"]
    block = yaml.safe_load(model_index_yaml(SCORES, "tiny"))["model-index"][0]
    assert block["name"] == "tiny" and len(block["results"]) == 3  # perplexity and bits/byte share a dataset
    assert [m["type"] for m in block["results"][2]["metrics"]] == ["perplexity", "bits_per_byte"]
    table = render_table(SCORES)
    assert "arc_challenge" in table and "27.65" in table and "average: 37.88" in table and "bits/byte" in table
    plot_scores(SCORES, tmp_path / "scores.png")
    assert (tmp_path / "scores.png").read_bytes()[:4] == b"\x89PNG"


def test_one_unit_everywhere_the_model_index_value_is_the_tables(tmp_path) -> None:
    """Percent throughout: each model-index value appears, digit for digit, in the table report.md shows."""
    table = render_table(SCORES)
    for result in eval_results(SCORES, "tiny"):
        digits = 2 if result.metric_type != "bits_per_byte" else 4
        assert f"{result.metric_value:.{digits}f}" in table, result
    assert "0.2765" not in table and "0.4812" not in table  # no fractions beside percents
    row = next(r for r in task_rows(SCORES) if r["key"] == "truthfulqa_mc2")
    assert (row["score"], row["stderr"], row["chance"]) == ("48.12", "1.50", "38.5")


def test_a_written_record_reads_back_equal(tmp_path) -> None:
    SCORES.write(tmp_path)
    assert Scores.read(tmp_path) == SCORES
    data = json.loads((tmp_path / "scores.json").read_text())
    assert data["schema_version"] == Scores.SCHEMA_VERSION and data["tasks"]["arc_challenge"]["score"] == 27.65


def test_presets_and_task_lists() -> None:
    assert requested_tasks("leaderboard-v1", [], None) == [
        ("arc_challenge", 25),
        ("hellaswag", 10),
        ("mmlu", 5),
        ("truthfulqa_mc2", 0),
    ]
    assert requested_tasks("zero-shot", ["arc_easy,piqa", "piqa"], 3)[-1] == ("piqa", 3)
    assert len(requested_tasks("zero-shot", ["arc_easy"], None)) == 6
