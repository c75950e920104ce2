"""Instruction data: Alpaca or chat records read with line-precise errors, tokenized with response-only labels.

Two record shapes are accepted, one per JSONL line (or as a JSON list):
  Alpaca: {"instruction": ..., "input": ... (optional), "output": ...}
  chat:   {"messages": [{"role": "system"|"user"|"assistant", "content": ...}, ...]}
Both become chat messages, and the tokenizer's chat template turns them into tokens together with a mask of
the assistant's tokens. Labels are the token ids there and -100 elsewhere, so the loss counts only what the
model is meant to write (as in Alpaca, Vicuna and TRL's `assistant_only_loss`), never the prompt.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hfscratch.core.recipes import RecipeError
from hfscratch.prompting.templates import CHAT_ROLES, messages_from_record

IGNORE_INDEX = -100  # the label that torch's cross-entropy (and transformers' loss) skips


def _check_record(record: Any, where: str, system_prompt: str | None) -> list[dict[str, str]]:
    """One record as chat messages, or a `RecipeError` naming `where` (file:line) and the field at fault."""
    if not isinstance(record, dict):
        raise RecipeError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            raise RecipeError(f"{where}: field 'messages' must be a non-empty list of {{role, content}} objects")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in CHAT_ROLES:
                raise RecipeError(f"{where}: messages[{i}] needs a 'role' of {', '.join(CHAT_ROLES)}")
            if not isinstance(message.get("content"), str):
                raise RecipeError(f"{where}: messages[{i}] is missing field 'content' (a string)")
        if not any(m["role"] == "assistant" for m in messages):
            raise RecipeError(f"{where}: 'messages' has no assistant turn, so nothing to learn from")
        return [{"role": m["role"], "content": m["content"]} for m in messages]
    for field in ("instruction", "output"):
        if field not in record:
            raise RecipeError(
                f"{where}: missing field {field!r} (an Alpaca record needs 'instruction' and 'output', "
                "'input' is optional; a chat record needs 'messages')"
            )
    for field in ("instruction", "input", "output"):
        if field in record and record[field] is not None and not isinstance(record[field], str):
            raise RecipeError(f"{where}: field {field!r} must be a string, got {type(record[field]).__name__}")
    if not record["instruction"].strip() or not record["output"].strip():
        empty = "instruction" if not record["instruction"].strip() else "output"
        raise RecipeError(f"{where}: field {empty!r} is empty")
    return messages_from_record(record, system_prompt)


def read_instruction_file(path: str | Path, system_prompt: str | None = None) -> list[list[dict[str, str]]]:
    """Every record of a .jsonl (one object a line; blank lines skipped) or .json (a list) file, as messages."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: instruction file not found (expected JSONL of instruction/output or messages)")
    text = path.read_text(encoding="utf-8")
    conversations = []
    if path.suffix == ".json":
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecipeError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(records, list):
            raise RecipeError(f"{path}: a .json instruction file must hold a list of records")
        for i, record in enumerate(records):
            conversations.append(_check_record(record, f"{path}: record {i}", system_prompt))
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecipeError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            conversations.append(_check_record(record, f"{path}:{number}", system_prompt))
    if not conversations:
        raise RecipeError(f"{path}: no records")
    return conversations


def tokenize_conversation(tokenizer: Any, messages: Sequence[dict[str, str]], max_length: int) -> dict[str, list[int]]:
    """Token ids, attention mask and response-only labels of one conversation, cut at `max_length` tokens."""
    encoded = tokenizer.apply_chat_template(
        list(messages), tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids = encoded["input_ids"][:max_length]
    mask = encoded["assistant_masks"][:max_length]
    labels = [token if keep else IGNORE_INDEX for token, keep in zip(ids, mask)]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def build_dataset(tokenizer: Any, conversations: list[list[dict[str, str]]], max_length: int) -> Any:
    """A `datasets.Dataset` of tokenized conversations; ones whose response was cut off entirely are dropped."""
    from datasets import Dataset

    rows = [tokenize_conversation(tokenizer, messages, max_length) for messages in conversations]
    kept = [row for row in rows if any(label != IGNORE_INDEX for label in row["labels"])]
    dataset = Dataset.from_list(kept)
    dataset.info.description = f"{len(rows) - len(kept)} of {len(rows)} dropped: no response within {max_length}"
    return dataset


def split_validation(
    conversations: list[list[dict[str, str]]], fraction: float, seed: int
) -> tuple[list[list[dict[str, str]]], list[list[dict[str, str]]]]:
    """A seeded random split of the records: (train, validation), with at least one of each."""
    import random

    if len(conversations) < 2:
        raise RecipeError("validation_fraction: needs at least 2 records to hold some out")
    order = list(range(len(conversations)))
    random.Random(seed).shuffle(order)
    held = min(max(1, round(fraction * len(order))), len(order) - 1)
    validation = sorted(order[:held])
    train = sorted(order[held:])
    return [conversations[i] for i in train], [conversations[i] for i in validation]
