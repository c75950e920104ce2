"""Prompt templates: few-shot prompts for base models and the chat format of fine-tuned ones.

A base model continues text, so it is prompted with a few solved examples and an unsolved one (GPT-3's
few-shot prompting); the multiple-choice layout is the one lm-eval's MMLU task scores. A fine-tuned model is
prompted through its tokenizer's chat template, the Jinja template `hfscratch finetune` saves with the adapter,
so `tokenizer.apply_chat_template` gives users the exact text the model was trained on.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The chat format of fine-tuned models. Role headers are plain text ("### User:") rather than new special tokens:
# new tokens would need their embedding rows trained (and saved) beside the LoRA weights, and a small model
# already knows Markdown headers from its pretraining text. The assistant's turn ends with the EOS token, so
# generation stops by itself; `{% generation %}` marks the tokens that carry the loss
# (`apply_chat_template(..., return_assistant_tokens_mask=True)`, the mechanism TRL's SFTTrainer uses too).
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '### ' + (message['role'] | capitalize) + ':\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{%- generation %}{{- message['content'] + eos_token }}{%- endgeneration %}"
    "{{- '\\n\\n' }}"
    "{%- else %}"
    "{{- message['content'] + '\\n\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '### Assistant:\\n' }}{%- endif %}"
)
CHAT_ROLES = ("system", "user", "assistant")


def messages_from_record(record: Mapping[str, Any], system_prompt: str | None = None) -> list[dict[str, str]]:
    """An Alpaca record (instruction, optional input, output) as chat messages; the input follows the instruction
    after a blank line, as in Alpaca's own prompt."""
    user = record["instruction"].strip()
    if (record.get("input") or "").strip():
        user += "\n\n" + record["input"].strip()
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*messages, {"role": "user", "content": user}, {"role": "assistant", "content": record["output"].strip()}]


def format_chat(tokenizer: Any, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = True) -> str:
    """The text a chat model sees for `messages` (its tokenizer's chat template, else ours), ending with the
    assistant header when `add_generation_prompt` so the model answers next."""
    template = getattr(tokenizer, "chat_template", None) or CHAT_TEMPLATE
    return tokenizer.apply_chat_template(
        list(messages), chat_template=template, tokenize=False, add_generation_prompt=add_generation_prompt
    )


ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
)
ALPACA_PREAMBLE_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request."
)


def alpaca_prompt(instruction: str, input: str = "", output: str | None = None) -> str:
    """Stanford Alpaca's prompt for a base model; with `output`, the solved example (for few-shot prompts)."""
    if input:
        text = (
            f"{ALPACA_PREAMBLE_WITH_INPUT}\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
        )
    else:
        text = f"{ALPACA_PREAMBLE}\n\n### Instruction:\n{instruction}\n\n### Response:\n"
    return text if output is None else text + output


@dataclass(frozen=True)
class FewShotTemplate:
    """A k-shot prompt: an optional preamble, solved examples, then the query with its answer left open.

    `example` and `query` are `str.format` templates over the fields of each item (a mapping). The query
    template is the example template cut before its answer field, so the model continues exactly where the
    examples taught it to write an answer.
    """

    example: str = "Q: {question}\nA: {answer}"
    answer_field: str = "answer"
    preamble: str = ""
    separator: str = "\n\n"
    # The answer follows its label after one space ("A: 4"): the space belongs to the answer, as lm-eval's
    # target_delimiter, because BPE tokenizers spell a word with its leading space.
    answer_delimiter: str = " "

    def __post_init__(self) -> None:
        fields = {name for _, name, _, _ in string.Formatter().parse(self.example) if name}
        if self.answer_field not in fields:
            raise ValueError(f"the example template {self.example!r} has no {{{self.answer_field}}} field")

    @property
    def query(self) -> str:
        head = self.example.split("{" + self.answer_field + "}")[0]
        return head.removesuffix(self.answer_delimiter)

    def format(self, shots: Sequence[Mapping[str, Any]], query: Mapping[str, Any]) -> str:
        parts = [self.preamble] if self.preamble else []
        parts += [self.example.format(**shot) for shot in shots]
        parts.append(self.query.format(**query))
        return self.separator.join(parts)


@dataclass(frozen=True)
class MultipleChoiceItem:
    question: str
    choices: Sequence[str]
    answer: int | None = None  # index into choices; None for the query

    def format(self, labels: str = string.ascii_uppercase) -> str:
        if len(self.choices) > len(labels):
            raise ValueError(f"{len(self.choices)} choices but only {len(labels)} labels")
        lines = [f"Question: {self.question.strip()}", "Choices:"]
        lines += [f"{label}. {choice.strip()}" for label, choice in zip(labels, self.choices)]
        answer = "Answer:" if self.answer is None else f"Answer: {labels[self.answer]}"
        return "\n".join([*lines, answer])


def multiple_choice_prompt(
    shots: Sequence[MultipleChoiceItem], query: MultipleChoiceItem, subject: str | None = None
) -> str:
    """The multiple-choice layout ("Question: ... Choices: A. ... Answer:"), k solved questions then the query.

    With a `subject`, MMLU's preamble comes first ("The following are multiple choice questions (with answers)
    about high school physics."). The model's answer is the label it puts after "Answer:", which lm-eval
    scores by comparing the log-likelihoods of " A", " B", ...
    """
    if query.answer is not None:
        query = MultipleChoiceItem(query.question, query.choices)
    parts = []
    if subject:
        parts.append(f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.")
    parts += [shot.format() for shot in shots]
    parts.append(query.format())
    return "\n\n".join(parts)


SELF_INSTRUCT_PREAMBLE = (
    "You are asked to come up with a set of diverse tasks. Each task has an instruction, an optional input "
    "and an output that completes the instruction."
)


def self_instruct_task(number: int, record: Mapping[str, Any]) -> str:
    """One numbered task of a Self-Instruct prompt; with no output, the open task the model is to write."""
    instruction = record.get("instruction")
    if instruction is None:
        return f"Task {number}\nInstruction:"
    text = f"Task {number}\nInstruction: {instruction.strip()}\nInput: {(record.get('input') or '<noinput>').strip()}"
    return f"{text}\nOutput: {record['output'].strip()}"


def self_instruct_prompt(seed_tasks: Sequence[Mapping[str, Any]]) -> str:
    """Self-Instruct's generation prompt (Wang et al., 2023): numbered seed tasks, then the next number opened."""
    tasks = [self_instruct_task(i + 1, task) for i, task in enumerate(seed_tasks)]
    return "\n\n".join([SELF_INSTRUCT_PREAMBLE, *tasks, self_instruct_task(len(seed_tasks) + 1, {})])
