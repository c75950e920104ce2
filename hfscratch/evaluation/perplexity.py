"""Perplexity and bits per byte on held-out text, with a sliding window for documents longer than the context.

As in transformers' perplexity guide: windows of `window` tokens advance by `stride`; each token is scored
once, in the window where it has the most context (at least `window - stride` tokens, except near the start
of a document). Each document is preceded by EOS, the separator it followed in the packed training stream,
so its first token is scored too. Bits per byte = total NLL / ln 2 / UTF-8 bytes: unlike perplexity it
compares models with different tokenizers.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from tqdm.auto import tqdm

from hfscratch.evaluation.scores import PerplexityScore, now


@torch.no_grad()
def document_nll(model: Any, token_ids: list[int], window: int, stride: int) -> tuple[float, int]:
    """Summed NLL (nats) of `token_ids[1:]` given the tokens before them, and how many tokens were scored."""
    device = next(model.parameters()).device
    ids = torch.tensor(token_ids, device=device).unsqueeze(0)
    total, scored, previous_end = 0.0, 0, 1  # token 0 (the separator) is context only
    for begin in range(0, max(1, ids.size(1) - 1), stride):
        end = min(begin + window, ids.size(1))
        new_tokens = end - previous_end  # tokens not scored by an earlier window
        if new_tokens <= 0:
            break
        inputs = ids[:, begin:end]
        logits = model(input_ids=inputs).logits.float()
        # logits at position t predict token t+1: score the last `new_tokens` tokens of the window
        log_probs = torch.log_softmax(logits[0, -new_tokens - 1 : -1], dim=-1)
        targets = inputs[0, -new_tokens:]
        total -= log_probs.gather(1, targets.unsqueeze(1)).sum().item()
        scored += new_tokens
        previous_end = end
        if end == ids.size(1):
            break
    return total, scored


def perplexity(
    model: Any, tokenizer: Any, documents: list[str], dataset: str, window: int | None = None, stride: int | None = None
) -> PerplexityScore:
    """scores.json's perplexity entry for `documents`."""
    window = window or context_length(model)
    stride = stride or max(1, window // 2)
    if not 0 < stride <= window - 1 and window > 1:
        raise ValueError(f"perplexity stride must be in [1, window - 1] = [1, {window - 1}], got {stride}")
    separator = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.bos_token_id
    was_training = model.training
    model.eval()
    nats, tokens, nbytes = 0.0, 0, 0
    for text in tqdm(documents, desc="perplexity", unit="doc"):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            continue
        doc_nats, doc_tokens = document_nll(model, [separator, *ids], window, stride)
        nats += doc_nats
        tokens += doc_tokens
        nbytes += len(text.encode("utf-8"))
    model.train(was_training)
    if tokens == 0:
        raise ValueError(f"no tokens to score in {dataset}")
    return PerplexityScore(
        dataset=dataset,
        documents=len(documents),
        tokens=tokens,
        bytes=nbytes,
        window=window,
        stride=stride,
        nats_per_token=nats / tokens,
        perplexity=math.exp(nats / tokens),
        bits_per_byte=nats / math.log(2) / nbytes,
        date=now(),
    )


def context_length(model: Any) -> int:
    config = model.config
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return min(value, 4096)
    return 1024
