"""The domain benchmark: multiple-choice cloze items from the user's held-out documents, in HellaSwag's shape.

Each held-out document is cut into consecutive passages of `context_words + ending_words` words. An item's
context is the passage's first words, as written; its choices are the real continuation and continuations
of passages from other documents (from other parts of the same document when there is only one), the
distractors picked among random candidates for a length close to the real one, so length says little.
Endings have their whitespace collapsed, all alike. The items are a JSONL file read by a local lm-eval task
(`hfscratch_domain`), so the model is scored by lm-eval's own multiple-choice machinery, and
`lm_eval --include_path OUTPUT/domain` reproduces it.

The headline is lm-eval's `acc_mutual_info`: the choice maximising log P(ending | context) - log P(ending).
The distractors are real text of the same domain, so with acc and acc_norm (HellaSwag's metrics, reported too)
a small model mostly picks the ending that is likeliest on its own; the mutual information asks what the
context contributes, which is what "knows its domain" means (measured on the quickstart's model: acc_norm 27%,
mutual information 66%, a random model 23%, chance 25%).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import yaml

from hfscratch.evaluation.scores import TaskScore, now
from hfscratch.evaluation.tasks import lm_eval_version

TASK_NAME = "hfscratch_domain"
HEADLINE = "acc_mutual_info"
_WORD = re.compile(r"\S+")


def passages(text: str, context_words: int, ending_words: int) -> list[tuple[str, str]]:
    """(context, ending) pairs over consecutive, non-overlapping stretches of `text`."""
    spans = [m.span() for m in _WORD.finditer(text)]
    size = context_words + ending_words
    pairs = []
    for first in range(0, len(spans) - size + 1, size):
        context_start, context_end = spans[first][0], spans[first + context_words - 1][1]
        ending_start, ending_end = spans[first + context_words][0], spans[first + size - 1][1]
        context = text[context_start:context_end]
        ending = " ".join(text[ending_start:ending_end].split())
        pairs.append((context, ending))
    return pairs


def build_items(
    documents: list[str],
    context_words: int = 48,
    ending_words: int = 16,
    choices: int = 4,
    max_items: int = 1000,
    seed: int = 1234,
    candidates: int = 12,
) -> list[dict]:
    """HellaSwag-shaped items: {"id", "ctx", "endings", "label"}."""
    rng = random.Random(seed)
    pool = [
        (doc, ctx, end)
        for doc, text in enumerate(documents)
        for ctx, end in passages(text, context_words, ending_words)
    ]
    if len(pool) < choices:
        raise ValueError(
            f"the held-out documents give {len(pool)} passages of {context_words + ending_words} words; "
            f"{choices} are needed for one item (use more held-out data or shorter passages)"
        )
    several_documents = len({doc for doc, _, _ in pool}) > 1
    order = list(range(len(pool)))
    rng.shuffle(order)
    items = []
    for number, index in enumerate(order[:max_items]):
        doc, context, ending = pool[index]
        others = [j for j in range(len(pool)) if j != index and (pool[j][0] != doc or not several_documents)]
        endings_seen = {ending}
        sample = rng.sample(others, min(len(others), candidates))
        sample.sort(key=lambda j: abs(len(pool[j][2]) - len(ending)))
        distractors = []
        for j in sample:
            if pool[j][2] not in endings_seen:
                distractors.append(pool[j][2])
                endings_seen.add(pool[j][2])
            if len(distractors) == choices - 1:
                break
        if len(distractors) < choices - 1:
            continue
        label = rng.randrange(choices)
        endings = distractors[:label] + [ending] + distractors[label:]
        items.append({"id": number, "ctx": context, "endings": endings, "label": label})
    return items


def write_task(items: list[dict], folder: Path) -> Path:
    """The items and the lm-eval task that reads them; returns the folder to pass as an include path."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "items.jsonl"
    data.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), encoding="utf-8")
    task = {
        "task": TASK_NAME,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data.resolve())}},
        "output_type": "multiple_choice",
        "test_split": "test",
        "num_fewshot": 0,
        "doc_to_text": "{{ctx}}",
        "doc_to_choice": "endings",
        "doc_to_target": "label",
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
            # Also scores every ending without its context (one more request per choice).
            {"metric": "acc_mutual_info", "aggregation": "mean", "higher_is_better": True},
        ],
        "metadata": {"version": 1.0},
    }
    (folder / f"{TASK_NAME}.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    return folder


def domain_scores(results: dict, choices: int) -> TaskScore:
    """scores.json's entry of the domain benchmark: mutual information as the headline (see above), in percent."""
    row = results["results"][TASK_NAME]
    metrics = {
        f"{name}{suffix}": 100.0 * float(row[f"{name}{suffix},none"])
        for name in ("acc", "acc_norm", "acc_mutual_info")
        for suffix in ("", "_stderr")
    }
    return TaskScore(
        task=TASK_NAME,
        task_name="Domain cloze",
        dataset_type="local",
        dataset_name=TASK_NAME,  # the model-index groups results by dataset type and config: one of its own
        split="held-out",
        metric=HEADLINE,
        score=metrics[HEADLINE],
        stderr=metrics[f"{HEADLINE}_stderr"],
        chance=100.0 / choices,
        num_fewshot=0,
        samples=int(results["n-samples"][TASK_NAME]["effective"]),
        limit=None,
        date=now(),
        lm_eval_version=lm_eval_version(),
        metrics=metrics,
    )
