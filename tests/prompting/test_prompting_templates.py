"""Few-shot templates and chat formatting: the exact strings a model sees."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer
from tokenizers.models import BPE
from transformers import PreTrainedTokenizerFast

from hfscratch.prompting.templates import (
    CHAT_TEMPLATE,
    FewShotTemplate,
    MultipleChoiceItem,
    alpaca_prompt,
    format_chat,
    messages_from_record,
    multiple_choice_prompt,
    self_instruct_prompt,
)


def test_multiple_choice_prompt_exact() -> None:
    shots = [MultipleChoiceItem("What is 2 + 2?", ["3", "4", "5", "22"], answer=1)]
    query = MultipleChoiceItem("Which keyword defines a function in Python?", ["func", "def", "lambda", "fn"])
    assert multiple_choice_prompt(shots, query) == (
        "Question: What is 2 + 2?\nChoices:\nA. 3\nB. 4\nC. 5\nD. 22\nAnswer: B\n\n"
        "Question: Which keyword defines a function in Python?\nChoices:\nA. func\nB. def\nC. lambda\nD. fn\nAnswer:"
    )


def test_multiple_choice_with_subject_and_hidden_query_answer() -> None:
    query = MultipleChoiceItem(" Is water wet? ", ["yes ", "no"], answer=0)  # the query's answer is never shown
    assert multiple_choice_prompt([], query, subject="high_school_physics") == (
        "The following are multiple choice questions (with answers) about high school physics.\n\n"
        "Question: Is water wet?\nChoices:\nA. yes\nB. no\nAnswer:"
    )
    with pytest.raises(ValueError, match="3 choices but only 2 labels"):
        MultipleChoiceItem("q", ["a", "b", "c"]).format(labels="AB")


def test_few_shot_template_exact() -> None:
    template = FewShotTemplate(preamble="Translate English to French.", example="{en} => {fr}", answer_field="fr")
    shots = [{"en": "sea otter", "fr": "loutre de mer"}, {"en": "cheese", "fr": "fromage"}]
    assert template.format(shots, {"en": "peppermint"}) == (
        "Translate English to French.\n\nsea otter => loutre de mer\n\ncheese => fromage\n\npeppermint =>"
    )
    qa = FewShotTemplate()  # "Q: ...\nA: ..."
    assert (
        qa.format([{"question": "1 + 1?", "answer": "2"}], {"question": "2 + 2?"}) == "Q: 1 + 1?\nA: 2\n\nQ: 2 + 2?\nA:"
    )
    with pytest.raises(ValueError, match="has no {answer} field"):
        FewShotTemplate(example="Q: {question}")


def test_alpaca_prompt_exact() -> None:
    assert alpaca_prompt("Name a color.") == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
        "\n\n### Instruction:\nName a color.\n\n### Response:\n"
    )
    assert alpaca_prompt("Add them.", "2 and 3", "5").endswith(
        "the request.\n\n### Instruction:\nAdd them.\n\n### Input:\n2 and 3\n\n### Response:\n5"
    )


def test_self_instruct_prompt_exact() -> None:
    seeds = [
        {"instruction": "Name a color.", "input": "", "output": "Red"},
        {"instruction": "Add.", "input": "2, 3", "output": "5"},
    ]
    assert self_instruct_prompt(seeds) == (
        "You are asked to come up with a set of diverse tasks. Each task has an instruction, an optional input and "
        "an output that completes the instruction.\n\n"
        "Task 1\nInstruction: Name a color.\nInput: <noinput>\nOutput: Red\n\n"
        "Task 2\nInstruction: Add.\nInput: 2, 3\nOutput: 5\n\n"
        "Task 3\nInstruction:"
    )


@pytest.fixture
def bare_tokenizer() -> PreTrainedTokenizerFast:
    """Enough of a tokenizer to render templates: its special tokens (no vocabulary needed for text)."""
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer(BPE()), bos_token="<s>", eos_token="</s>")


def test_chat_format_exact(bare_tokenizer: PreTrainedTokenizerFast) -> None:
    messages = messages_from_record({"instruction": "Add.", "input": "2, 3", "output": "5"}, system_prompt="Be brief.")
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Add.\n\n2, 3"},
        {"role": "assistant", "content": "5"},
    ]
    assert format_chat(bare_tokenizer, messages, add_generation_prompt=False) == (
        "<s>### System:\nBe brief.\n\n### User:\nAdd.\n\n2, 3\n\n### Assistant:\n5</s>\n\n"
    )
    assert (
        format_chat(bare_tokenizer, messages[:2])
        == "<s>### System:\nBe brief.\n\n### User:\nAdd.\n\n2, 3\n\n### Assistant:\n"
    )


def test_chat_format_uses_the_tokenizers_own_template(bare_tokenizer: PreTrainedTokenizerFast) -> None:
    bare_tokenizer.chat_template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
    assert format_chat(bare_tokenizer, [{"role": "user", "content": "hi"}]) == "<user>hi"
    assert "{%- generation %}" in CHAT_TEMPLATE  # ours marks the reply for the response-only loss
