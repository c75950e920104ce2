"""Fine-tuning data read with line-precise errors: instruction records for SFT, preference pairs for DPO.

SFT takes one record a JSONL line (or a JSON list), in either shape:
  Alpaca: {"instruction": ..., "input": ... (optional), "output": ...}
  chat:   {"messages": [{"role": "system"|"user"|"assistant", "content": ...}, ...]}
Both become chat messages; TRL's SFTTrainer renders them with the chat template and, with `assistant_only_loss`,
keeps the loss on the tokens of the template's {% generation %} block: what the model is meant to write.
DPO takes {"prompt": ..., "chosen": ..., "rejected": ...} (strings), turned into TRL's conversational
preference rows (a user turn, and each answer as an assistant turn), so both answers go through the same template.
Held-out pairs share no prompt and no answer with training ones (`split_preferences`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hfscratch.core.recipes import RecipeError
from hfscratch.prompting.templates import CHAT_ROLES, messages_from_record

PREFERENCE_FIELDS = ("prompt", "chosen", "rejected")


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


def _read_records(path: str | Path, kind: str) -> list[tuple[Any, str]]:
    """(record, "file:line") for every record of a .jsonl (one object a line; blank lines skipped) or .json (a
    list) file; `kind` names the records in errors."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: {kind} file not found (expected JSONL, one record a line)")
    text = path.read_text(encoding="utf-8")
    records = []
    if path.suffix == ".json":
        try:
            listed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecipeError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(listed, list):
            raise RecipeError(f"{path}: a .json {kind} file must hold a list of records")
        records = [(record, f"{path}: record {i}") for i, record in enumerate(listed)]
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((json.loads(line), f"{path}:{number}"))
            except json.JSONDecodeError as exc:
                raise RecipeError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
    if not records:
        raise RecipeError(f"{path}: no records")
    return records


def read_instruction_file(path: str | Path, system_prompt: str | None = None) -> list[list[dict[str, str]]]:
    """Every Alpaca or chat record of a JSONL (or JSON list) file, as chat messages."""
    return [_check_record(record, where, system_prompt) for record, where in _read_records(path, "instruction")]


def _check_preference(record: Any, where: str, system_prompt: str | None) -> dict[str, list[dict[str, str]]]:
    """One {prompt, chosen, rejected} record (strings) as TRL's conversational preference row, or a `RecipeError`."""
    if not isinstance(record, dict):
        raise RecipeError(f"{where}: expected a JSON object, got {type(record).__name__}")
    for field in PREFERENCE_FIELDS:
        if field not in record:
            raise RecipeError(f"{where}: missing field {field!r} (a preference record needs prompt, chosen, rejected)")
        if not isinstance(record[field], str) or not record[field].strip():
            raise RecipeError(f"{where}: field {field!r} must be a non-empty string")
    if record["chosen"].strip() == record["rejected"].strip():
        raise RecipeError(f"{where}: 'chosen' and 'rejected' are the same answer, so there is no preference to learn")
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return {
        "prompt": [*system, {"role": "user", "content": record["prompt"].strip()}],
        "chosen": [{"role": "assistant", "content": record["chosen"].strip()}],
        "rejected": [{"role": "assistant", "content": record["rejected"].strip()}],
    }


def read_preference_file(path: str | Path, system_prompt: str | None = None) -> list[dict[str, list[dict[str, str]]]]:
    """Every {prompt, chosen, rejected} record of a JSONL file, as conversational rows for TRL's `DPOTrainer`."""
    return [_check_preference(record, where, system_prompt) for record, where in _read_records(path, "preference")]


def split_validation(records: list, fraction: float, seed: int) -> tuple[list, list]:
    """A seeded random split of the records: (train, validation), with at least one of each."""
    import random

    if len(records) < 2:
        raise RecipeError("validation_fraction: needs at least 2 records to hold some out")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    held = min(max(1, round(fraction * len(order))), len(order) - 1)
    validation = sorted(order[:held])
    train = sorted(order[held:])
    return [records[i] for i in train], [records[i] for i in validation]


def _linked_groups(keys_per_record: list[list[str]]) -> list[list[int]]:
    """Record indices grouped so that records sharing any key are in one group (union-find), in first-seen order."""
    parent = list(range(len(keys_per_record)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, keys in enumerate(keys_per_record):
        for key in keys:
            if key in owner:
                parent[root(i)] = root(owner[key])
            else:
                owner[key] = i
    groups: dict[int, list[int]] = {}
    for i in range(len(keys_per_record)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def split_preferences(rows: list[dict], fraction: float, seed: int) -> tuple[list, list]:
    """A seeded split of preference rows (train, validation) in which no prompt and no answer is on both sides.

    Rows that share a prompt or an answer are linked, and whole groups are held out (up to the share asked). A
    row-level split leaks: a held-out answer that training saw as the rejected one of another question is pushed
    down for every question, so the held-out margin measures the leak, not a preference learned from the prompt.
    """
    import json
    import random

    if len(rows) < 2:
        raise RecipeError("validation_fraction: needs at least 2 records to hold some out")
    keys = [
        [f"prompt:{json.dumps(row['prompt'], sort_keys=True)}"]
        + [f"answer:{json.dumps(row[side], sort_keys=True)}" for side in ("chosen", "rejected")]
        for row in rows
    ]
    groups = _linked_groups(keys)
    random.Random(seed).shuffle(groups)
    target = min(max(1, round(fraction * len(rows))), len(rows) - 1)
    held: list[int] = []
    for group in groups:
        if len(held) + len(group) <= target:
            held += group
    if not held:
        raise RecipeError(
            f"validation_fraction: the {len(rows)} preference pairs are linked by shared prompts or answers into "
            f"{len(groups)} group(s), none small enough to hold out {fraction:.0%} apart from training; pass a "
            "validation_file"
        )
    held_set = set(held)
    return [r for i, r in enumerate(rows) if i not in held_set], [r for i, r in enumerate(rows) if i in held_set]
