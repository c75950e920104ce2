"""`evaluate --minutes`: every part scores the share of its items that fits, and the record says how many."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hfscratch.evaluation import EvaluateArguments, run_evaluation
from hfscratch.evaluation.budget import MIN_ITEMS, Part, ScoringBudget
from hfscratch.evaluation.documents import held_out_documents
from hfscratch.evaluation.perplexity import MIN_DOCUMENTS


def test_every_remaining_part_gets_the_same_share_of_the_time_left() -> None:
    budget = ScoringBudget(deadline=time.monotonic() + 100.0, seconds_per_token=0.001)
    domain, perplexity = Part("domain", items=400, tokens=100_000), Part("perplexity", items=50, tokens=100_000)
    # 200 s of scoring for 100 s left: half of each part's items
    assert budget.share([domain, perplexity]) == pytest.approx(0.5, abs=0.01)
    assert budget.items(domain, [domain, perplexity]) == pytest.approx(200, abs=3)
    assert budget.items(perplexity, [Part("small", 50, 50_000)]) == 50  # 50 s of 100: it fits
    # A part never scores fewer than MIN_ITEMS (or all it has), however late it is.
    assert ScoringBudget(time.monotonic() - 1, 0.001).items(domain, [domain]) == MIN_ITEMS
    assert ScoringBudget(time.monotonic() - 1, 0.001).items(Part("tiny", 3, 10.0), [Part("tiny", 3, 10.0)]) == 3


def test_the_token_rate_follows_the_latest_part() -> None:
    budget = ScoringBudget(deadline=time.monotonic() + 100.0, seconds_per_token=0.001)
    domain = Part("domain", items=400, tokens=100_000)
    budget.observe(domain, items=200, seconds=150.0)  # predicted 50 s: the machine is 3x slower than probed
    assert budget.seconds_per_token == pytest.approx(0.003)
    assert budget.log == [("domain", pytest.approx(50.0), 150.0)]


def test_a_probe_measures_the_rate() -> None:
    def forward() -> int:
        time.sleep(0.01)
        return 1000

    budget = ScoringBudget.probed(time.monotonic() + 10, forward)
    assert 0.01 / 1000 <= budget.seconds_per_token < 0.05 / 1000


def evaluate(model: Path, corpus: Path, out: Path, **extra) -> tuple[object, float]:
    began = time.monotonic()
    scores = run_evaluation(
        EvaluateArguments(
            model_name_or_path=str(model),
            domain_data=str(corpus),
            perplexity_data=str(corpus),
            domain_context_words=24,
            domain_ending_words=8,
            output_dir=str(out),
            **extra,
        )
    )
    return scores, time.monotonic() - began


def test_a_budget_too_short_for_everything_scores_a_few_items_of_each_and_says_so(
    trained_model_dir: Path, tokenized_corpus: Path, tmp_path
) -> None:
    documents = held_out_documents(tokenized_corpus, "perplexity_data")
    full, _ = evaluate(trained_model_dir, tokenized_corpus, tmp_path / "full")
    cut, _ = evaluate(trained_model_dir, tokenized_corpus, tmp_path / "cut", minutes=0.001)  # 60 ms

    domain_full, domain_cut = full.tasks["hfscratch_domain"], cut.tasks["hfscratch_domain"]
    assert domain_full.limit is None and domain_full.samples > 5 * MIN_ITEMS
    assert domain_cut.limit == domain_cut.samples == MIN_ITEMS  # the record says the run was limited
    (ppl_full,), (ppl_cut,) = full.perplexity.values(), cut.perplexity.values()
    assert ppl_full.documents == len(documents) and ppl_full.of_documents is None
    assert ppl_cut.documents == MIN_DOCUMENTS and ppl_cut.of_documents == len(documents)
    assert ppl_cut.tokens < ppl_full.tokens
    report = (tmp_path / "cut" / "report.md").read_text()
    assert f"{MIN_DOCUMENTS} of {len(documents)}" in report and "(limited)" in report


def test_a_budget_that_fits_everything_changes_nothing(trained_model_dir: Path, tokenized_corpus: Path, tmp_path):
    full, _ = evaluate(trained_model_dir, tokenized_corpus, tmp_path / "full")
    timed, _ = evaluate(trained_model_dir, tokenized_corpus, tmp_path / "timed", minutes=30)
    assert timed.tasks["hfscratch_domain"].score == full.tasks["hfscratch_domain"].score
    assert timed.tasks["hfscratch_domain"].limit is None
    (ppl_full,), (ppl_timed,) = full.perplexity.values(), timed.perplexity.values()
    assert ppl_timed.nats_per_token == ppl_full.nats_per_token and ppl_timed.of_documents is None


def test_benchmarks_under_a_budget_record_the_limit_they_ran_with(
    random_model_dir: Path, benchmarks_dir: Path, tmp_path
) -> None:
    scores = run_evaluation(
        EvaluateArguments(
            model_name_or_path=str(random_model_dir),
            tasks=["arc_easy", "hellaswag"],
            limit=40,
            data_dir=str(benchmarks_dir),
            output_dir=str(tmp_path),
            minutes=0.001,
        )
    )
    for task in ("arc_easy", "hellaswag"):
        assert scores.tasks[task].samples == scores.tasks[task].limit == MIN_ITEMS


def test_minutes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="key 'minutes' must be positive"):
        EvaluateArguments(model_name_or_path="m", minutes=0)
