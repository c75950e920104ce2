"""Held-out documents, perplexity, the domain benchmark and open-ended generation, end to end on tiny models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from hfscratch.evaluation import EvaluateArguments, Scores, run_evaluation
from hfscratch.evaluation.documents import held_out_documents
from hfscratch.evaluation.domain import build_items, passages
from hfscratch.evaluation.perplexity import document_nll
from hfscratch.tokenization.packing import is_validation


def test_held_out_documents_are_exactly_the_validation_split(tokenized_corpus: Path) -> None:
    corpus = tokenized_corpus.parent / "corpus.jsonl"
    records = [json.loads(line) for line in corpus.read_text().splitlines()]
    expected = [r["text"] for r in records if is_validation(r["id"], 0.2)]
    assert held_out_documents(tokenized_corpus, "domain_data") == expected
    stats = json.loads((tokenized_corpus / "stats.json").read_text())
    assert len(expected) == stats["validation"]["documents"] > 20


def test_domain_items_have_one_real_continuation_and_distractors_from_other_documents() -> None:
    documents = [" ".join(f"d{d}w{i}" for i in range(200)) for d in range(5)]
    assert passages(documents[0], 8, 4)[1] == (" ".join(f"d0w{i}" for i in range(12, 20)), "d0w20 d0w21 d0w22 d0w23")
    items = build_items(documents, context_words=8, ending_words=4, choices=4, seed=0)
    assert len(items) == 5 * (200 // 12)
    for item in items:
        doc = item["ctx"].split("w")[0]
        real = item["endings"][item["label"]]
        assert real.startswith(doc + "w") and int(real.split("w")[1].split()[0]) == int(item["ctx"].split("w")[-1]) + 1
        assert all(not e.startswith(doc + "w") for i, e in enumerate(item["endings"]) if i != item["label"])
    labels = [item["label"] for item in items]
    assert {labels.count(k) for k in range(4)} and min(labels.count(k) for k in range(4)) > len(items) / 8


def test_sliding_window_scores_every_token_once_and_matches_a_full_forward(random_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(random_model_dir, trust_remote_code=True).eval()
    ids = torch.randint(5, model.config.vocab_size, (1, 200), generator=torch.Generator().manual_seed(0))[0].tolist()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]
    full = torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="sum").item()
    nats, scored = document_nll(model, ids, window=512, stride=256)  # one window: the plain forward
    assert scored == 199 and nats == pytest.approx(full, rel=1e-5)
    nats, scored = document_nll(model, ids, window=64, stride=16)
    assert scored == 199  # each token once, with 48+ tokens of context after the first window
    assert nats == pytest.approx(full, rel=0.05)  # a random model barely uses context


def evaluate(model_dir: Path, out: Path, **keys) -> Scores:
    return run_evaluation(EvaluateArguments(model_name_or_path=str(model_dir), output_dir=str(out), **keys))


@pytest.mark.slow
def test_domain_benchmark_separates_a_trained_model_from_a_random_one(
    tokenized_corpus: Path, trained_model_dir: Path, random_model_dir: Path, tmp_path: Path
) -> None:
    keys = dict(domain_data=str(tokenized_corpus), perplexity_data=str(tokenized_corpus), perplexity_window=64)
    trained = evaluate(trained_model_dir, tmp_path / "trained", **keys)
    random = evaluate(random_model_dir, tmp_path / "random", **keys)
    domain = {name: scores.tasks["hfscratch_domain"] for name, scores in (("trained", trained), ("random", random))}
    for d in domain.values():
        assert d.samples > 150 and d.chance == 25.0 and d.metric == "acc_mutual_info"
    # the trained model learned the corpus: it finds the real continuation and compresses the held-out text
    assert domain["trained"].metrics["acc_norm"] > 80 and domain["trained"].score > 80
    n = domain["random"].samples
    for metric in ("acc_norm", "acc_mutual_info"):
        assert abs(domain["random"].metrics[metric] - 25) < 300 * math.sqrt(0.25 * 0.75 / n), metric
    (trained_ppl,), (random_ppl,) = trained.perplexity.values(), random.perplexity.values()
    assert trained_ppl.bits_per_byte < 0.5 * random_ppl.bits_per_byte
    assert random_ppl.perplexity == pytest.approx(math.exp(random_ppl.nats_per_token))
    # lm-eval's own results file, the table's sources, and the local task the stock CLI can rerun
    out = tmp_path / "trained"
    results = json.loads((out / "results.json").read_text())
    assert 100 * results["results"]["hfscratch_domain"]["acc_norm,none"] == pytest.approx(
        domain["trained"].metrics["acc_norm"]
    )
    assert Scores.read(out) == trained
    assert (out / "scores.png").stat().st_size > 1000 and "model-index" in (out / "model-index.yaml").read_text()
    assert (out / "domain" / "hfscratch_domain.yaml").is_file()
    assert not list(out.glob(".*partial*"))


@pytest.mark.slow
def test_open_ended_with_a_prompt_file_a_judge_and_a_human_sheet(
    trained_model_dir: Path, random_model_dir: Path, tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts.jsonl"
    rows = [
        {"prompt": "monday tuesday wednesday", "reference": "thursday friday saturday sunday monday tuesday"},
        {"prompt": "red orange yellow", "reference": "green blue indigo violet red orange", "incorrect": ["one two"]},
    ]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    scores = evaluate(
        trained_model_dir,
        tmp_path / "out",
        open_ended=True,
        prompts=str(prompts),
        max_new_tokens=12,
        judge_model=str(random_model_dir),
        human_sheet=True,
        raters=2,
    )
    (open_ended,) = scores.open_ended.values()
    assert open_ended.prompts == 2 and open_ended.source == str(prompts)
    from hfscratch.evaluation.open_ended import score_answer

    for item, row in zip(open_ended.items, rows):
        assert item["answer"]  # the trained model continues the cycle
        expected = score_answer(item["answer"], [row["reference"]], row.get("incorrect", []))
        expected = {k: 100 * v if k.endswith("_acc") else v for k, v in expected.items()}  # percent, as stored
        assert {k: item[k] for k in expected} == pytest.approx(expected)
        assert 0.0 < item["judge"] < 100.0
    assert open_ended.metrics["bleu_max"] > 10  # it learned the cycles: the answers overlap the references
    import csv

    sheet = list(csv.DictReader(open(tmp_path / "out" / "rating_sheet.csv", encoding="utf-8")))
    assert [(r["item_id"], r["rater"]) for r in sheet] == [
        ("1", "rater1"),
        ("2", "rater1"),
        ("1", "rater2"),
        ("2", "rater2"),
    ]
    assert sheet[0]["completion"] == open_ended.items[0]["answer"] and sheet[0]["reference"] == rows[0]["reference"]
