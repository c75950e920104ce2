"""`hfscratch finetune --method dpo`: TRL's DPOTrainer with a LoRA adapter, on the built-in python-docs preference
pairs, after full SFT on the python-docs instructions (SFT, then DPO, as a chat model is made, with the shipped
tiny-cpu-dpo recipe's settings); the held-out reward margin grows, the saved adapter prefers the chosen answers more
than its base does; held-out pairs share no question or answer with training ones; bad preference files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from finetuning_helpers import PYTHON_DOCS_HELD_OUT, python_docs_base, run_finetune_cli, write_jsonl

from hfscratch.core.recipes import RecipeError
from hfscratch.finetuning.arguments import FinetuneDataArguments
from hfscratch.finetuning.data import read_preference_file, split_preferences
from hfscratch.finetuning.python_docs import (
    preference_pairs,
    python_docs_instructions,
    python_docs_preferences,
    split_held_out,
    write_python_docs_split,
)
from hfscratch.finetuning.train import load_records


@pytest.fixture(scope="module")
def python_docs_sft(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Full SFT of the python-docs base on the built-in instructions (their held-out share is never trained on)."""
    return run_finetune_cli(
        tmp_path_factory.mktemp("sft") / "python-docs", "--method", "full", "--model_name_or_path",
        str(python_docs_base(tmp_path_factory)), "--train_file", "python-docs", "--learning_rate", "3e-3",
        "--num_train_epochs", "1", "--per_device_train_batch_size", "4", "--max_length", "512",
    )  # fmt: skip


@pytest.fixture(scope="module")
def dpo(python_docs_sft: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The shipped recipe on the SFT model: `hfscratch finetune tiny-cpu-dpo --model_name_or_path SFT`."""
    return run_finetune_cli(
        tmp_path_factory.mktemp("dpo") / "adapter", "tiny-cpu-dpo", "--model_name_or_path", str(python_docs_sft["out"])
    )


def held_out_pairs(dpo: dict) -> list[dict]:
    return [json.loads(line) for line in (dpo["out"] / "data" / "python-docs-preferences-validation.jsonl").open()]


def test_dpo_grows_the_held_out_reward_margin_on_python_docs_pairs(dpo: dict) -> None:
    r = dpo["results"]
    print(f"DPO held-out margin {r['eval_margin_before']:.4f} -> {r['eval_margin_after']:.4f}, accuracy "
          f"{r['eval_reward_accuracy_before']:.3f} -> {r['eval_reward_accuracy_after']:.3f}, "
          f"loss {r['eval_loss_before']:.4f} -> {r['eval_loss_after']:.4f}, {r['steps']} steps, "
          f"{r['train_seconds']:.0f} s training, {dpo['seconds']:.0f} s wall")  # fmt: skip
    assert r["method"] == "dpo" and r["train_file"] == "python-docs" and r["trainable_percent"] < 50
    assert r["validation_records"] == len(held_out_pairs(dpo)) > 100
    assert r["eval_margin_before"] == pytest.approx(0.0, abs=1e-6)  # the policy starts as its reference
    assert r["eval_margin_after"] > 0.5  # in beta units: beta 0.5 times a log-ratio gap of more than 1 nat
    assert r["eval_reward_accuracy_after"] > 0.6  # 135 held-out pairs: 0.6 is 2.3 standard errors above chance
    assert r["train_seconds"] < 60.0


def test_held_out_python_docs_pairs_share_no_question_or_answer_with_training(dpo: dict) -> None:
    """The leak that made the margin fall: each answer is the chosen one of its question and the rejected one of
    another, so pairs made across the split trained every held-out answer with the opposite label."""
    train = [json.loads(line) for line in (dpo["out"] / "data" / "python-docs-preferences-train.jsonl").open()]
    held_out = held_out_pairs(dpo)
    trained_answers = {p["chosen"] for p in train} | {p["rejected"] for p in train}
    assert not {p["prompt"] for p in held_out} & {p["prompt"] for p in train}
    assert not ({p["chosen"] for p in held_out} | {p["rejected"] for p in held_out}) & trained_answers


def sequence_logprob(model, tokenizer, prompt: str, answer: str) -> float:
    messages = [{"role": "user", "content": prompt}]
    prompt_ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
    reply = [*messages, {"role": "assistant", "content": answer}]
    ids = torch.tensor([tokenizer.apply_chat_template(reply, return_dict=True)["input_ids"]])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
    targets = ids[0, 1:]
    picked = logprobs.gather(-1, targets[:, None])[:, 0]
    return picked[len(prompt_ids) - 1 :].sum().item()


def test_saved_adapter_prefers_chosen_answers_more_than_its_base(dpo: dict, python_docs_sft: dict) -> None:
    """Measured apart from TRL's logging, on the saved folders: log p(chosen) - log p(rejected) on held-out pairs."""
    from hfscratch.models.loading import load_adapter_model, load_model, load_tokenizer

    pairs = held_out_pairs(dpo)[:48]
    tokenizer = load_tokenizer(dpo["out"])
    base = load_model(python_docs_sft["out"], "float32")
    tuned = load_adapter_model(python_docs_sft["out"], dpo["out"], "float32")

    def gap(model) -> float:
        return sum(
            sequence_logprob(model, tokenizer, p["prompt"], p["chosen"])
            - sequence_logprob(model, tokenizer, p["prompt"], p["rejected"])
            for p in pairs
        ) / len(pairs)

    assert gap(tuned) > gap(base) + 1.0


def test_python_docs_pairs_are_deterministic_and_never_reject_the_chosen_answer() -> None:
    pairs = python_docs_preferences()
    instructions = python_docs_instructions()
    assert len(pairs) > 0.95 * len(instructions)
    assert pairs == python_docs_preferences()  # the same set on every call (and machine with this Python)
    assert all(p["chosen"] != p["rejected"] for p in pairs)
    # the rejected answer is a real answer, to another question
    answers = {r["output"] for r in instructions}
    assert all(p["rejected"] in answers for p in pairs)


def test_python_docs_split_is_by_answer_and_the_same_for_sft_and_dpo(tmp_path: Path) -> None:
    records = python_docs_instructions(seed=3)
    train, held_out = split_held_out(records, PYTHON_DOCS_HELD_OUT)
    assert 0.07 < len(held_out) / len(records) < 0.13
    assert not {r["output"] for r in train} & {r["output"] for r in held_out}  # a shared answer stays on one side
    assert {r["output"] for r in split_held_out(python_docs_instructions(seed=4), PYTHON_DOCS_HELD_OUT)[1]} == {
        r["output"] for r in held_out
    }  # the order (seed) does not move a record across the split
    sft_train, sft_held = write_python_docs_split(tmp_path / "sft", False, PYTHON_DOCS_HELD_OUT)
    dpo_train, dpo_held = write_python_docs_split(tmp_path / "dpo", True, PYTHON_DOCS_HELD_OUT)
    sft_questions = {json.loads(line)["output"] for line in sft_held.open()}
    assert {json.loads(line)["chosen"] for line in dpo_held.open()} <= sft_questions
    assert all(json.loads(line)["rejected"] in sft_questions for line in dpo_held.open())


def test_preference_split_holds_out_no_shared_prompt_or_answer(tmp_path: Path) -> None:
    """A user file of pairs that reuse answers (the python-docs ring, made across everything) or prompts is split
    by linked groups; a set that is one linked group cannot be split and says so."""
    rows = [
        {"prompt": [{"role": "user", "content": f"q{i // 2}"}], "chosen": [{"role": "assistant", "content": f"a{i}"}],
         "rejected": [{"role": "assistant", "content": f"b{i}"}]}
        for i in range(40)
    ]  # fmt: skip
    train, validation = split_preferences(rows, 0.25, seed=0)
    assert len(validation) == 10 and len(train) == 30
    assert not {r["prompt"][0]["content"] for r in train} & {r["prompt"][0]["content"] for r in validation}
    signatures = [r for r in python_docs_instructions() if r["instruction"].startswith("Give the call signature")]
    ring = preference_pairs(signatures[:100])  # one kind: every answer chosen once and rejected once, one group
    linked = r"^validation_fraction: the 100 preference pairs are linked by shared prompts or answers into 1 group"
    with pytest.raises(RecipeError, match=linked):
        split_preferences(ring, 0.1, seed=0)
    # and it is the split `finetune --method dpo` makes of a file without a validation_file
    ring_file = write_jsonl(tmp_path / "ring.jsonl", ring)
    data = FinetuneDataArguments(model_name_or_path="unused", method="dpo", train_file=str(ring_file))
    with pytest.raises(RecipeError, match=linked):
        load_records(data, tmp_path / "out", seed=0)


def test_bad_preference_records_are_named_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "q", "chosen": "a"}\n')
    with pytest.raises(RecipeError, match=rf"^{path}:2: missing field 'rejected'"):
        read_preference_file(path)
    path.write_text('{"prompt": "q", "chosen": "same", "rejected": " same "}\n')
    with pytest.raises(RecipeError, match=rf"^{path}:1: 'chosen' and 'rejected' are the same answer"):
        read_preference_file(path)
    ok = write_jsonl(tmp_path / "ok.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}])
    rows = read_preference_file(ok, system_prompt="Be brief.")
    assert rows[0]["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert rows[0]["chosen"] == [{"role": "assistant", "content": "a"}]
