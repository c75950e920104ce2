"""Helpers of the hub tests: a real tiny run (curate -> tokenize -> pretrain) and an evaluation scores.json.

A module of its own (not conftest.py) so that tests import it by a name no other test folder uses.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
NOUNS = ["cat", "dog", "king", "queen", "ship", "river", "garden", "letter", "sword", "house"]
VERBS = ["sees", "loves", "finds", "keeps", "builds", "writes", "leaves", "takes"]
DUPLICATES = 12  # documents planted twice: exact dedup must remove this many
EMAILS = 15  # documents with an e-mail address: PII redaction must count this many

DATE = "2026-12-01T10:00:00+00:00"


def task_score(task: str, task_name: str, dataset: str, config: str | None, split: str, metric: str, **numbers):
    from hfscratch.evaluation.scores import TaskScore

    return TaskScore(
        task=task, task_name=task_name, dataset_type=dataset, dataset_name=config, split=split, metric=metric,
        date=DATE, lm_eval_version="0.4.13", **numbers,
    )  # fmt: skip


def example_scores(model: str = "tiny"):
    """An evaluation's record as `hfscratch evaluate` writes it (scores.json): two lm-eval tasks (one run with a
    --limit), their average, the domain benchmark, perplexity and open-ended scores, all in percent."""
    from hfscratch.evaluation.scores import Average, OpenEndedScore, PerplexityScore, Scores

    arc = task_score(
        "arc_easy",
        "ARC-Easy",
        "allenai/ai2_arc",
        "ARC-Easy",
        "test",
        "acc",
        score=27.31,
        stderr=0.91,
        chance=25.0,
        num_fewshot=0,
        samples=2376,
        limit=None,
    )
    hellaswag = task_score(
        "hellaswag",
        "HellaSwag",
        "Rowan/hellaswag",
        None,
        "validation",
        "acc_norm",
        score=25.89,
        stderr=0.44,
        chance=25.0,
        num_fewshot=0,
        samples=200,
        limit=200,
    )
    domain = task_score("hfscratch_domain", "Domain cloze", "local", "hfscratch_domain", "held-out",
                        "acc_mutual_info", score=45.47, stderr=4.9, chance=25.0, num_fewshot=0, samples=101,
                        limit=None, metrics={"acc": 26.73, "acc_norm": 27.72, "acc_mutual_info": 45.47})  # fmt: skip
    return Scores(
        model=model,
        tasks={t.task: t for t in (arc, hellaswag, domain)},
        averages={"zero-shot": Average("zero-shot", ["arc_easy", "hellaswag"], 26.6, 25.0, DATE)},
        perplexity={
            "/local/path/tok": PerplexityScore("/local/path/tok", 12, 5077, 14000, 64, 32, 4.8154, 123.4, 2.31, DATE)
        },
        open_ended={
            "truthfulqa_gen": OpenEndedScore(
                "truthfulqa_gen",
                5,
                {"bleu_max": 0.155, "rougeL_acc": 0.0},
                [{"id": "0", "answer": "def get_in_in"}],
                48,
                DATE,
            )  # fmt: skip
        },
    )


def grammar_documents(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    docs = []
    for i in range(150):
        text = " ".join(f"The {rng.choice(NOUNS)} {rng.choice(VERBS)} the {rng.choice(NOUNS)}." for _ in range(30))
        if i % 10 == 0:
            text += f" Write to keeper{i}@example.com for details."
        docs.append({"id": f"doc-{i}", "text": text})
    return docs + [dict(d, id=f"{d['id']}-copy") for d in docs[:DUPLICATES]]


def make_tiny_run(root: Path) -> Path:
    """curate (exact dedup + PII) -> tokenize -> pretrain 8 steps; returns the model folder."""
    from hfscratch.curation.pipeline import CurateArguments, run_curation
    from hfscratch.tokenization.arguments import TokenizeArguments
    from hfscratch.tokenization.pipeline import run_tokenize

    raw = root / "raw.jsonl"
    raw.write_text("".join(json.dumps(d) + "\n" for d in grammar_documents()))
    off = (
        "url_filter",
        "language_filter",
        "gopher_repetition",
        "gopher_quality",
        "c4_quality",
        "fineweb_quality",
        "minhash_dedup",
    )
    run_curation(
        CurateArguments(
            output_dir=str(root / "curate"),
            sources=[{"type": "jsonl", "path": str(raw), "tag": "grammar"}],
            tasks=1,
            workers=1,
            min_doc_chars=1,
            exact_dedup=True,
            pii_redaction=True,
            **dict.fromkeys(off, False),
        )
    )
    run_tokenize(
        TokenizeArguments(
            corpus=str(root / "curate"),
            out=str(root / "tok"),
            vocab_size=300,
            block_size=64,
            validation_fraction=0.1,
            num_proc=1,
        )
    )
    recipe = {
        "data_dir": str(root / "tok"),
        "output_dir": str(root / "model"),
        "model_preset": "llama",
        "config_overrides": "hidden_size=64,num_hidden_layers=2,num_attention_heads=2,intermediate_size=128",
        "use_cpu": True,
        "per_device_train_batch_size": 4,
        "learning_rate": 3e-3,
        "warmup_steps": 2,
        "max_steps": 8,
        "logging_steps": 2,
        "eval_strategy": "steps",
        "eval_steps": 4,
        "save_strategy": "steps",
        "save_steps": 4,
        "report_to": "none",
        "seed": 1,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }
    (root / "pretrain.yaml").write_text(yaml.safe_dump(recipe))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCELERATE_")} | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "hfscratch.training.pretrain", str(root / "pretrain.yaml")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    model = root / "model"
    write_evaluation(model / "evaluation", example_scores())
    return model


def write_evaluation(folder: Path, scores) -> None:
    """scores.json and its bar chart, as `hfscratch evaluate` writes them."""
    from hfscratch.evaluation.report import plot_scores

    folder.mkdir(parents=True, exist_ok=True)
    plot_scores(scores, folder / "scores.png")
    scores.write(folder)


def copy_model(source: Path, target: Path) -> Path:
    """A writable copy of the session's model folder, checkpoints and training state included."""
    shutil.copytree(source, target)
    return target
