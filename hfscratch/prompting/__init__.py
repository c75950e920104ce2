"""Prompting a model: few-shot templates, chat formatting, and sampling with streaming (`hfscratch generate`).

Everything here is plain strings and transformers calls, so a prompt built for `hfscratch generate` is the
same prompt a user builds in a notebook with `tokenizer.apply_chat_template` or `model.generate`.
"""

from hfscratch.prompting.templates import (
    CHAT_TEMPLATE,
    FewShotTemplate,
    MultipleChoiceItem,
    alpaca_prompt,
    format_chat,
    messages_from_record,
    multiple_choice_prompt,
)

__all__ = [
    "CHAT_TEMPLATE",
    "FewShotTemplate",
    "MultipleChoiceItem",
    "alpaca_prompt",
    "format_chat",
    "messages_from_record",
    "multiple_choice_prompt",
]
