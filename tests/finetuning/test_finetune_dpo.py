"""`hfscratch finetune --method dpo`: TRL's DPOTrainer with a LoRA adapter on the full-SFT model (SFT, then DPO);
the held-out reward margin grows, the saved adapter prefers the chosen answers more than its base does; the
offline python-docs pairs; bad preference files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from finetuning_helpers import grammar_preference, run_finetune_cli, write_jsonl

from hfscratch.core.recipes import RecipeError
from hfscratch.finetuning.data import read_preference_file
from hfscratch.finetuning.python_docs import python_docs_instructions, python_docs_preferences


@pytest.fixture(scope="module")
def preference_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("preferences")
    rng = random.Random(2)
    train = write_jsonl(folder / "train.jsonl", [grammar_preference(rng) for _ in range(256)])
    return train, write_jsonl(folder / "validation.jsonl", [grammar_preference(rng) for _ in range(64)])


@pytest.fixture(scope="module")
def dpo(full_sft: dict, preference_files, tmp_path_factory: pytest.TempPathFactory) -> dict:
    train, validation = preference_files
    return run_finetune_cli(
        tmp_path_factory.mktemp("dpo") / "adapter", "--method", "dpo", "--model_name_or_path", str(full_sft["out"]),
        "--train_file", str(train), "--validation_file", str(validation), "--learning_rate", "3e-3",
        "--num_train_epochs", "2", "--per_device_train_batch_size", "8", "--beta", "0.1", "--lora_dropout", "0",
    )  # fmt: skip


def test_dpo_grows_the_held_out_reward_margin(dpo: dict) -> None:
    r = dpo["results"]
    print(f"DPO held-out margin {r['eval_margin_before']:.4f} -> {r['eval_margin_after']:.4f}, accuracy "
          f"{r['eval_reward_accuracy_before']:.3f} -> {r['eval_reward_accuracy_after']:.3f}, "
          f"loss {r['eval_loss_before']:.4f} -> {r['eval_loss_after']:.4f}, {dpo['seconds']:.0f} s")  # fmt: skip
    assert r["method"] == "dpo" and r["lora"]["lora_r"] == 8 and r["trainable_percent"] < 50
    assert r["eval_margin_before"] == pytest.approx(0.0, abs=1e-6)  # the policy starts as its reference
    assert r["eval_margin_after"] > 0.3
    assert r["eval_reward_accuracy_after"] > 0.75
    assert r["eval_loss_after"] < r["eval_loss_before"]
    assert r["train_seconds"] < 60.0


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


def test_saved_adapter_prefers_chosen_answers_more_than_its_base(dpo: dict, full_sft: dict, preference_files):
    """Measured apart from TRL's logging, on the saved folders: log p(chosen) - log p(rejected) on held-out pairs."""
    from hfscratch.models.loading import load_adapter_model, load_model, load_tokenizer

    pairs = [json.loads(line) for line in preference_files[1].read_text().splitlines()[:24]]
    tokenizer = load_tokenizer(dpo["out"])
    base = load_model(full_sft["out"], "float32")
    tuned = load_adapter_model(full_sft["out"], dpo["out"], "float32")

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
