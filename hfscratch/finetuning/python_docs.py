"""A small instruction set made offline from the Python standard library's own documentation.

The kit's default pretraining corpus is the installed Python documentation, so the matching instruction set
asks about the same material: what a standard-library function does (its docstring's summary), what its
signature is (from `inspect.signature`), and what a language reference topic says (`pydoc_data.topics`).
Every answer is written by CPython's authors, nothing is downloaded, and the set is the same on every machine
with the same Python version.

The preference pairs for DPO are made from the same records: the chosen answer is the documented one, the
rejected answer is a real answer to a different question of the same kind (another function's docstring or
signature, another topic's text), so style alone does not tell them apart; the model has to match the answer to
the question.

Held-out records are chosen by a hash of their answer (`is_held_out`), not by position: SFT and DPO hold out the
same questions, records with the same answer stay together, and pairs are made within each side only. Pairing
across the split would hand every held-out answer to training with the opposite label (each answer is the chosen
one of its own question and the rejected one of its neighbour's): a policy that learns which answers are good,
without reading the question, would then lose held-out margin as it wins training margin, and it did (a tiny
model's held-out margin fell 0.00 -> -0.30, reward accuracy 41%).
"""

from __future__ import annotations

import importlib
import inspect
import json
import random
import re
import zlib
from pathlib import Path

BUILTIN_NAME = "python-docs"
MODULES = (
    "builtins", "json", "os", "os.path", "math", "string", "re", "itertools", "functools", "collections",
    "shutil", "textwrap", "random", "statistics", "datetime", "pathlib", "glob", "fnmatch", "heapq", "bisect",
    "operator", "copy", "csv", "base64", "hashlib", "zlib", "gzip", "tempfile", "time", "calendar",
)  # fmt: skip
MAX_ANSWER_CHARS = 400


def _first_paragraph(text: str) -> str:
    paragraph = re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0]
    paragraph = " ".join(paragraph.split())
    if len(paragraph) > MAX_ANSWER_CHARS:  # cut at a sentence end where one is near
        cut = paragraph.rfind(". ", 0, MAX_ANSWER_CHARS)
        paragraph = paragraph[: cut + 1] if cut > MAX_ANSWER_CHARS // 2 else paragraph[:MAX_ANSWER_CHARS]
    return paragraph


def _function_records(module_name: str) -> list[dict[str, str]]:
    module = importlib.import_module(module_name)
    records = []
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or not callable(obj) or getattr(obj, "__module__", None) is None:
            continue
        doc = inspect.getdoc(obj)
        qualified = name if module_name == "builtins" else f"{module_name}.{name}"
        if doc and len(doc) > 40:
            summary = _first_paragraph(doc)
            if summary and not summary.startswith(name + "("):  # C functions open with their signature
                records.append(
                    {"instruction": f"What does `{qualified}` do in Python?", "input": "", "output": summary}
                )
        try:
            signature = str(inspect.signature(obj))
        except (TypeError, ValueError):  # builtins without a text signature
            continue
        records.append(
            {
                "instruction": "Give the call signature of this Python function.",
                "input": qualified,
                "output": qualified + signature,
            }
        )
    return records


def _topic_records() -> list[dict[str, str]]:
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some distributions strip pydoc_data
        return []
    records = []
    for name, text in sorted(topics.items()):
        body = text.split("\n", 2)[-1] if text.count("\n") > 2 else text  # drop the title and its underline
        answer = _first_paragraph(body)
        if len(answer) > 60:
            records.append(
                {
                    "instruction": "Summarize this topic of the Python language reference.",
                    "input": name,
                    "output": answer,
                }
            )
    return records


def python_docs_instructions(max_records: int | None = None, seed: int = 0) -> list[dict[str, str]]:
    """Alpaca records from the standard library's docstrings, signatures and reference topics, shuffled."""
    records = _topic_records()
    for module_name in MODULES:
        records += _function_records(module_name)
    unique = list({(r["instruction"], r["input"]): r for r in records}.values())
    random.Random(seed).shuffle(unique)
    return unique[:max_records] if max_records else unique


def _question(record: dict[str, str]) -> str:
    """The user's turn of an Alpaca record, as `messages_from_record` writes it (instruction, blank line, input)."""
    return record["instruction"] + (f"\n\n{record['input']}" if record["input"] else "")


def is_held_out(record: dict[str, str], fraction: float) -> bool:
    """Whether a record belongs to the held-out share: a stable hash of its answer (the same on every machine and
    for every method, and records that share an answer fall on the same side)."""
    return zlib.crc32(record["output"].encode("utf-8")) % 10_000 < round(fraction * 10_000)


def split_held_out(records: list[dict[str, str]], fraction: float) -> tuple[list, list]:
    """(train, held-out) records by `is_held_out`, each in the given order."""
    held = [is_held_out(record, fraction) for record in records]
    return [r for r, h in zip(records, held) if not h], [r for r, h in zip(records, held) if h]


def preference_pairs(records: list[dict[str, str]]) -> list[dict[str, str]]:
    """{prompt, chosen, rejected} pairs among `records` only: each question's documented answer, and the answer of
    the next question of the same kind (same instruction; "What does X do" counts as one kind) whose answer
    differs."""

    def kind(record: dict[str, str]) -> str:
        return record["instruction"] if record["input"] else record["instruction"].split("`")[0]

    kinds: dict[str, list[dict[str, str]]] = {}
    for record in records:
        kinds.setdefault(kind(record), []).append(record)
    pairs = []
    for record in records:
        same_kind = kinds[kind(record)]
        start = same_kind.index(record)
        others = (same_kind[(start + step) % len(same_kind)] for step in range(1, len(same_kind)))
        rejected = next((r["output"] for r in others if r["output"] != record["output"]), None)
        if rejected is not None:  # a kind whose answers are all the same has no pair
            pairs.append({"prompt": _question(record), "chosen": record["output"], "rejected": rejected})
    return pairs


def python_docs_preferences(max_records: int | None = None, seed: int = 0) -> list[dict[str, str]]:
    """Preference pairs among all the python-docs instructions (for training and held-out pairs apart, see
    `write_python_docs_split`)."""
    pairs = preference_pairs(python_docs_instructions(seed=seed))
    return pairs[:max_records] if max_records else pairs


def write_jsonl(path: str | Path, records: list[dict[str, str]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def write_python_docs_instructions(path: str | Path, max_records: int | None = None, seed: int = 0) -> Path:
    return write_jsonl(path, python_docs_instructions(max_records, seed))


def write_python_docs_preferences(path: str | Path, max_records: int | None = None, seed: int = 0) -> Path:
    return write_jsonl(path, python_docs_preferences(max_records, seed))


def write_python_docs_split(folder: str | Path, preferences: bool, fraction: float, seed: int = 0) -> tuple[Path, Path]:
    """(train file, held-out file) of the python-docs set in `folder`: instructions, or preference pairs made within
    each side, so no held-out question or answer is trained on."""
    train, held_out = split_held_out(python_docs_instructions(seed=seed), fraction)
    name = "python-docs-preferences" if preferences else "python-docs"
    make = preference_pairs if preferences else list
    folder = Path(folder)
    return (
        write_jsonl(folder / f"{name}-train.jsonl", make(train)),
        write_jsonl(folder / f"{name}-validation.jsonl", make(held_out)),
    )
