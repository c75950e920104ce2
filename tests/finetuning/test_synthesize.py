"""`hfscratch synthesize`: parsing and filtering of generated tasks, and the whole path on the tiny base model.

The tiny base was pretrained on Self-Instruct style task lists over six instruction kinds, so prompted with
three seed kinds it writes parseable tasks; most repeat a kind already known, which the ROUGE-L filter drops.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from finetuning_helpers import TASK_KINDS, sentence_words, single_thread, write_jsonl

from hfscratch.core.recipes import RecipeError
from hfscratch.finetuning.data import read_instruction_file
from hfscratch.finetuning.synthesize import (
    NearDuplicateFilter,
    SynthesizeArguments,
    check_instruction,
    parse_task,
)
from hfscratch.finetuning.synthesize_cli import main as synthesize_main


def test_parse_task_reads_fields_up_to_the_next_task() -> None:
    text = " Name the verb.\nInput: The old cat sees the dog.\nOutput: sees\n\nTask 5\nInstruction: Name"
    task, reason = parse_task(text, finished=False)
    assert reason == "parsed"
    assert task == {"instruction": "Name the verb.", "input": "The old cat sees the dog.", "output": "sees"}
    task, _ = parse_task(" Write a haiku.\nInput: <noinput>\nOutput: Leaves fall\nquietly", finished=True)
    assert task == {"instruction": "Write a haiku.", "input": "", "output": "Leaves fall\nquietly"}


@pytest.mark.parametrize(
    ("text", "finished", "reason"),
    [
        (" Name the verb.\nInput: The cat.\nOutput: se", False, "truncated"),  # cut by the token limit
        (" Name the verb.\nOutput: sees", True, "missing_fields"),
        (" Name the verb.\nInput: x\nOutput:   \n\nTask 5\n", True, "empty_field"),
        (" Name the verb.\nInput: x\nOutput: y Instruction: z", True, "missing_fields"),  # run-on into a new task
    ],
)
def test_parse_task_rejects_malformed(text: str, finished: bool, reason: str) -> None:
    assert parse_task(text, finished) == (None, reason)


def test_self_instruct_heuristic_filters() -> None:
    args = SynthesizeArguments(model_name_or_path="unused")
    assert check_instruction("Name the verb of the sentence.", args) is None
    assert check_instruction("Name it.", args) == "instruction_length"
    assert check_instruction("Draw a picture of the cat.", args) == "blocked_word"
    assert check_instruction("- Name the verb of it.", args) == "bad_start"


def test_near_duplicates_by_rouge_l() -> None:
    dedup = NearDuplicateFilter(0.7, ["Name the subject of the sentence."])
    assert dedup.admit("Name the subject of this sentence.") == (False, pytest.approx(5 / 6))
    assert dedup.admit("Count the words in the text.")[0]
    assert not dedup.admit("Count the words in the text please.")[0]  # against the one just kept


@pytest.mark.slow
def test_synthesize_end_to_end(tiny_base_model: Path, tmp_path: Path) -> None:
    rng = random.Random(3)
    seeds = [
        {"instruction": kind, "input": " ".join(words), "output": TASK_KINDS[kind](words)}
        for kind, words in ((kind, sentence_words(rng)) for kind in list(TASK_KINDS)[:3])
    ]
    out = tmp_path / "synth" / "instructions.jsonl"
    argv = [
        "--model_name_or_path", str(tiny_base_model), "--seed_tasks", str(write_jsonl(tmp_path / "seeds.jsonl", seeds)),
        "--output", str(out), "--num_instructions", "20", "--max_prompts", "6", "--samples_per_prompt", "4",
        "--max_new_tokens", "48", "--num_prompt_tasks", "3", "--seed", "0",
    ]  # fmt: skip
    with single_thread():
        assert synthesize_main(argv) == 0
    stats = json.loads((tmp_path / "synth" / "instructions.stats.json").read_text())
    records = [json.loads(line) for line in out.read_text().splitlines()]
    malformed = sum(v for k, v in stats.items() if k.startswith("malformed_"))
    print(stats)
    assert stats["prompts"] == 6 and stats["samples"] == 24
    assert stats["parsed"] + malformed == stats["samples"]
    assert stats["parsed"] == stats["kept"] + stats["near_duplicate"]
    assert stats["parsed"] >= 12  # the model learned the format: most samples parse
    assert stats["near_duplicate"] >= 1  # and repeats known kinds, which ROUGE-L drops
    assert 1 <= stats["kept"] == len(records)
    # what is kept is new: near-duplicate of no seed and of no other kept instruction
    known = NearDuplicateFilter(0.7, [s["instruction"] for s in seeds])
    for record in records:
        assert known.admit(record["instruction"]) == (True, pytest.approx(record["metadata"]["rouge_l_max"], abs=1e-4))
    # finetune reads the file as Alpaca records ...
    conversations = read_instruction_file(out)
    assert [c[0]["content"].split("\n\n")[0] for c in conversations] == [r["instruction"] for r in records]
    # ... and curate takes it as a jsonl source: text and id
    from hfscratch.curation.sources import SourceSpec, reader_for

    spec = SourceSpec.from_recipe({"type": "jsonl", "path": str(out.parent), "tag": "synthetic"}, "test")
    documents = list(reader_for(spec, max_doc_bytes=1_000_000).run())
    assert sorted(d.id for d in documents) == [r["id"] for r in records]
    assert all(d.metadata["source"] == "synthetic" and "### Response:" in d.text for d in documents)


def test_seed_file_errors_name_the_line(tmp_path: Path) -> None:
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [{"instruction": "a b c", "output": "x"}, {"instruction": "d"}])
    with pytest.raises(RecipeError, match=rf"{seeds}:2: missing field 'output'"):
        synthesize_main(["--model_name_or_path", str(tmp_path), "--seed_tasks", str(seeds)])
