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

# The contract of `hfscratch evaluate`'s evaluation/scores.json (one row per task and metric).
SCORES = {
    "model": "tiny",
    "results": [
        {
            "task": "arc_easy",
            "task_name": "ARC-Easy",
            "dataset_type": "allenai/ai2_arc",
            "dataset_name": "ARC-Easy",
            "split": "test",
            "metric": "acc",
            "value": 0.2731,
            "stderr": 0.0091,
            "num_fewshot": 0,
            "chance": 0.25,
            "limit": None,
            "samples": 2376,
        },
        {
            "task": "hellaswag",
            "task_name": "HellaSwag",
            "dataset_type": "Rowan/hellaswag",
            "dataset_name": None,
            "split": "validation",
            "metric": "acc_norm",
            "value": 0.2589,
            "stderr": 0.0044,
            "num_fewshot": 0,
            "chance": 0.25,
            "limit": 200,
            "samples": 200,
        },
    ],
    "average": {"tasks": ["arc_easy", "hellaswag"], "value": 0.266, "chance": 0.25},
    "perplexity": {"dataset": "/local/path/tok", "tokens": 5077, "perplexity": 123.4, "bits_per_byte": 2.31},
    "domain": {"items": 101, "acc_norm": 0.2772, "chance": 0.25},
    "open_ended": {
        "source": "truthfulqa_gen",
        "prompts": 5,
        "metrics": {"bleu_max": 0.155, "rougeL_acc": 0.0},
        "items": [{"id": "0", "answer": "def get_in_in"}],
    },
}


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
    (model / "evaluation").mkdir()
    (model / "evaluation" / "scores.json").write_text(json.dumps(SCORES))
    plot_scores(model / "evaluation" / "scores.png")
    return model


def plot_scores(path: Path) -> None:
    """The evaluation's bar chart, as `hfscratch evaluate` draws one beside scores.json."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.bar([r["task"] for r in SCORES["results"]], [r["value"] for r in SCORES["results"]])
    fig.savefig(path)
    plt.close(fig)


def copy_model(source: Path, target: Path) -> Path:
    """A writable copy of the session's model folder, checkpoints and training state included."""
    shutil.copytree(source, target)
    return target
