"""Sampling from a model with `generate()`; the model and tokenizer come from `hfscratch.models.loading`.

Sampling is transformers' own (`GenerationConfig`: temperature, top-p, top-k, repetition penalty), and a
`TextStreamer` prints tokens as they come. Temperature 0 means greedy decoding, which is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from hfscratch.core.recipes import RecipeError
from hfscratch.models.loading import load_model_and_tokenizer

__all__ = ["SamplingOptions", "as_document_start", "generate_text", "load_model_and_tokenizer"]


@dataclass
class SamplingOptions:
    max_new_tokens: int = 64
    temperature: float = 0.8  # 0: greedy
    top_p: float = 0.95
    top_k: int = 50
    repetition_penalty: float = 1.0
    seed: int = 0

    def generation_config(self, tokenizer: Any, base: Any = None) -> Any:
        from transformers import GenerationConfig

        config = GenerationConfig.from_dict(base.to_dict()) if base is not None else GenerationConfig()
        sample = self.temperature > 0
        config.update(
            max_new_tokens=self.max_new_tokens,
            do_sample=sample,
            temperature=self.temperature if sample else None,
            top_p=self.top_p if sample else None,
            top_k=self.top_k if sample else None,
            repetition_penalty=self.repetition_penalty,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        return config


def as_document_start(tokenizer: Any, prompt: str) -> str:
    """A base model's prompt as the start of a document: in the packed pretraining blocks every document follows
    an EOS (not a BOS), so the model has learned what comes after one."""
    if tokenizer.eos_token and not prompt.startswith(tokenizer.eos_token):
        return tokenizer.eos_token + prompt
    return prompt


@torch.inference_mode()
def generate_text(model: Any, tokenizer: Any, prompt: str, options: SamplingOptions, streamer: Any = None) -> str:
    """The continuation of `prompt` (without the prompt); `streamer` (e.g. a `TextStreamer`) sees it token by token.

    The prompt is tokenized as is: a chat prompt from `format_chat` already starts with the BOS token.
    """
    from transformers import set_seed

    set_seed(options.seed)
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
    if inputs["input_ids"].shape[1] == 0:
        raise RecipeError("prompt: empty after tokenization")
    base = getattr(model, "generation_config", None)
    output = model.generate(**inputs, generation_config=options.generation_config(tokenizer, base), streamer=streamer)
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
