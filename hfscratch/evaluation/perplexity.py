"""Perplexity and bits per byte on held-out text, with a sliding window for documents longer than the context.

As in transformers' perplexity guide: windows of `window` tokens advance by `stride`; each token is scored
once, in the window where it has the most context (at least `window - stride` tokens, except near the start
of a document). Each document is preceded by EOS, the separator it followed in the packed training stream,
so its first token is scored too. Bits per byte = total NLL / ln 2 / UTF-8 bytes: unlike perplexity it
compares models with different tokenizers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import torch
from tqdm.auto import tqdm

from hfscratch.evaluation.scores import PerplexityScore, now

MIN_DOCUMENTS = 2  # scored whatever the time (a loaded machine takes seconds per document): a number, however rough


def windows(length: int, window: int, stride: int) -> Iterator[tuple[int, int, int]]:
    """(begin, end, new tokens) of each window over a document of `length` token ids; token 0 is context only."""
    previous_end = 1
    for begin in range(0, max(1, length - 1), stride):
        end = min(begin + window, length)
        new_tokens = end - previous_end  # tokens not scored by an earlier window
        if new_tokens <= 0:
            break
        yield begin, end, new_tokens
        previous_end = end
        if end == length:
            break


@torch.no_grad()
def document_nll(model: Any, token_ids: list[int], window: int, stride: int) -> tuple[float, int]:
    """Summed NLL (nats) of `token_ids[1:]` given the tokens before them, and how many tokens were scored."""
    device = next(model.parameters()).device
    ids = torch.tensor(token_ids, device=device).unsqueeze(0)
    total, scored = 0.0, 0
    for begin, end, new_tokens in windows(ids.size(1), window, stride):
        inputs = ids[:, begin:end]
        logits = model(input_ids=inputs).logits.float()
        # logits at position t predict token t+1: score the last `new_tokens` tokens of the window
        log_probs = torch.log_softmax(logits[0, -new_tokens - 1 : -1], dim=-1)
        targets = inputs[0, -new_tokens:]
        total -= log_probs.gather(1, targets.unsqueeze(1)).sum().item()
        scored += new_tokens
    return total, scored


def document_ids(tokenizer: Any, text: str) -> list[int]:
    """A document's token ids after the separator it followed in the packed training stream ([] when empty)."""
    separator = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.bos_token_id
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return [separator, *ids] if ids else []


def forwarded_tokens(
    model: Any, tokenizer: Any, documents: list[str], window: int | None, stride: int | None
) -> list[int]:
    """Tokens the model runs to score each document (windows overlap): what scoring it costs."""
    window, stride = window_and_stride(model, window, stride)
    return [
        sum(end - begin for begin, end, _ in windows(len(document_ids(tokenizer, text)), window, stride))
        for text in documents
    ]


def window_and_stride(model: Any, window: int | None, stride: int | None) -> tuple[int, int]:
    window = window or context_length(model)
    stride = stride or max(1, window // 2)
    if not 0 < stride <= window - 1 and window > 1:
        raise ValueError(f"perplexity stride must be in [1, window - 1] = [1, {window - 1}], got {stride}")
    return window, stride


def perplexity(
    model: Any,
    tokenizer: Any,
    documents: list[str],
    dataset: str,
    window: int | None = None,
    stride: int | None = None,
    deadline: float | None = None,
    costs: list[int] | None = None,
) -> PerplexityScore:
    """scores.json's perplexity entry for `documents`.

    With a `deadline` (a `time.monotonic()` value), documents are scored in order while the next one is expected
    to end before it (from the seconds per forwarded token so far and the document's cost, `forwarded_tokens`),
    and always the first `MIN_DOCUMENTS`; the entry then records how many of them were scored.
    """
    window, stride = window_and_stride(model, window, stride)
    costs = costs or forwarded_tokens(model, tokenizer, documents, window, stride)
    was_training = model.training
    model.eval()
    nats, tokens, nbytes = 0.0, 0, 0
    scored, forwarded, began = 0, 0, time.monotonic()
    for text, cost in zip(tqdm(documents, desc="perplexity", unit="doc"), costs):
        if deadline is not None and scored >= MIN_DOCUMENTS and forwarded:
            seconds_per_token = (time.monotonic() - began) / forwarded
            if time.monotonic() + cost * seconds_per_token > deadline:
                print(f"[evaluate] perplexity: {scored:,} of {len(documents):,} documents fit the time left")
                break
        ids = document_ids(tokenizer, text)
        scored += 1
        if not ids:
            continue
        doc_nats, doc_tokens = document_nll(model, ids, window, stride)
        nats += doc_nats
        tokens += doc_tokens
        nbytes += len(text.encode("utf-8"))
        forwarded += cost
    model.train(was_training)
    if tokens == 0:
        raise ValueError(f"no tokens to score in {dataset}")
    return PerplexityScore(
        dataset=dataset,
        documents=scored,
        tokens=tokens,
        bytes=nbytes,
        window=window,
        stride=stride,
        nats_per_token=nats / tokens,
        perplexity=math.exp(nats / tokens),
        bits_per_byte=nats / math.log(2) / nbytes,
        date=now(),
        of_documents=len(documents) if scored < len(documents) else None,
    )


def context_length(model: Any) -> int:
    config = model.config
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return min(value, 4096)
    return 1024
