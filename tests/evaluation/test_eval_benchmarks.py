"""The standard benchmarks on the real mirrors in ../shared/data/benchmarks (skipped where absent), offline."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hfscratch.evaluation import EvaluateArguments, run_evaluation
from hfscratch.evaluation.harness import chance_level, make_lm, run_harness, task_scores

pytestmark = pytest.mark.slow
SIX_TASKS = ["arc_easy", "arc_challenge", "hellaswag", "truthfulqa_mc1", "truthfulqa_mc2"]


def test_a_random_model_scores_chance_on_every_task(random_model_dir: Path, benchmarks_dir: Path, tmp_path) -> None:
    """Every task of the kit runs offline from the mirror, and a random model sits at chance (3 standard errors)."""
    lm = make_lm(random_model_dir, batch_size="32")
    rows = []
    for tasks, limit in ((SIX_TASKS, 60), (["mmlu"], 3)):  # mmlu: 3 items in each of its 57 subjects
        pairs = [(task, 0) for task in tasks]
        results, hub_ids = run_harness(lm, pairs, limit=limit, data_dir=benchmarks_dir, overrides_dir=tmp_path / "o")
        rows += task_scores(results, pairs, limit, hub_ids)
    assert [r.task for r in rows] == [*SIX_TASKS, "mmlu"]
    assert {r.task: r.samples for r in rows} == {**dict.fromkeys(SIX_TASKS, 60), "mmlu": 171}
    for row in rows:  # percent
        if row.task == "truthfulqa_mc2":  # probability mass on true answers: not a binomial proportion
            tolerance = 3 * row.stderr
        else:
            tolerance = 300 * math.sqrt(row.chance / 100 * (1 - row.chance / 100) / row.samples)
        assert abs(row.score - row.chance) < tolerance, row
    chances = {r.task: r.chance for r in rows}
    assert chances["hellaswag"] == chances["mmlu"] == 25.0 and 20 < chances["arc_easy"] <= 34


def stock_cli(model: Path, include: Path, tasks: str, limit: int, out: Path) -> dict:
    """The stock `lm_eval` command line in a fresh process, offline; its results file."""
    command = [
        str(Path(sys.executable).parent / "lm_eval"),
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model},trust_remote_code=True",
        "--include_path",
        str(include),
        "--tasks",
        tasks,
        "--limit",
        str(limit),
        "--batch_size",
        "8",
        "--device",
        "cpu",
        "--output_path",
        str(out),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    (results_file,) = out.rglob("results_*.json")
    return json.loads(results_file.read_text())


def test_in_process_scores_equal_the_stock_lm_eval_cli(trained_model_dir: Path, benchmarks_dir: Path, tmp_path):
    tasks = ["arc_easy", "hellaswag", "truthfulqa_mc2"]
    ours = tmp_path / "ours"
    run_evaluation(
        EvaluateArguments(
            model_name_or_path=str(trained_model_dir),
            tasks=tasks,
            limit=20,
            batch_size="8",
            data_dir=str(benchmarks_dir),
            output_dir=str(ours),
        )
    )
    mine = json.loads((ours / "results.json").read_text())["results"]
    theirs = stock_cli(trained_model_dir, ours / "lm_eval_tasks", ",".join(tasks), 20, tmp_path / "stock")["results"]
    for task in tasks:
        metrics = {k: v for k, v in mine[task].items() if k.split(",")[0] in ("acc", "acc_norm")}
        assert metrics and metrics == {k: theirs[task][k] for k in metrics}, task


def test_leaderboard_preset_runs_each_task_at_its_own_few_shot_count(
    random_model_dir: Path, benchmarks_dir: Path, tmp_path
) -> None:
    scores = run_evaluation(
        EvaluateArguments(
            model_name_or_path=str(random_model_dir),
            preset="leaderboard-v1",
            limit=2,
            data_dir=str(benchmarks_dir),
            output_dir=str(tmp_path),
        )
    )
    got = {t.task: (t.metric, t.num_fewshot) for t in scores.tasks.values()}
    assert got == {
        "arc_challenge": ("acc_norm", 25),
        "hellaswag": ("acc_norm", 10),
        "mmlu": ("acc", 5),
        "truthfulqa_mc2": ("acc", 0),
    }
    average = scores.averages["leaderboard-v1"]
    assert average.score == pytest.approx(sum(t.score for t in scores.tasks.values()) / 4)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["n-shot"]["mmlu_anatomy"] == 5 and results["versions"]["arc_challenge"] == 1.0
    assert "lm_eval_version" in results or "git_hash" in results  # lm-eval's provenance is kept
    assert chance_level("mmlu", "acc", {"samples": {}}) is None


def test_in_training_callback_logs_an_lm_eval_subset(tokenized_corpus: Path, benchmarks_dir: Path, tmp_path) -> None:
    from hfscratch.cli import main

    out = tmp_path / "run"
    code = main(
        [
            "pretrain",
            "--data_dir",
            str(tokenized_corpus),
            "--output_dir",
            str(out),
            "--use_cpu",
            "true",
            "--config_overrides",
            "hidden_size=32,intermediate_size=64,num_hidden_layers=2,num_attention_heads=2",
            "--max_steps",
            "4",
            "--per_device_train_batch_size",
            "4",
            "--learning_rate",
            "1e-3",
            "--warmup_steps",
            "0",
            "--eval_strategy",
            "no",
            "--save_strategy",
            "no",
            "--report_to",
            "none",
            "--logging_steps",
            "1",
            "--disable_tqdm",
            "true",
            "--eval_harness_tasks",
            "arc_easy",
            "--eval_harness_steps",
            "2",
            "--eval_harness_limit",
            "8",
            "--eval_harness_data_dir",
            str(benchmarks_dir),
        ]
    )
    assert code == 0
    records = [json.loads(line) for line in (out / "eval_harness.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    assert all(0.0 <= r["harness/arc_easy_acc_norm"] <= 1.0 for r in records)
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    logged = {row["step"]: row["harness/arc_easy_acc_norm"] for row in history if "harness/arc_easy_acc_norm" in row}
    assert logged == {r["step"]: r["harness/arc_easy_acc_norm"] for r in records}
