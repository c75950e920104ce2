"""The tokenizer as GGUF metadata, spelled as llama.cpp's own converter spells a GPT-2-style vocabulary.

A GGUF carries no tokenizer.json: it stores the vocabulary, the merges and the special-token ids under llama.cpp's
keys (`tokenizer.ggml.*`), and every reader rebuilds the tokenizer from those. For a byte-level BPE that means
`tokenizer.ggml.model = "gpt2"` and the pre-tokenizer named by `tokenizer.ggml.pre`: llama.cpp then splits text with
the regex of that name, and transformers (`integrations/gguf/gguf_tokenizer_mapping.py`) builds a `GPT2Tokenizer`,
whose pre-tokenizer is `ByteLevel` with GPT-2's regex. So only a tokenizer that *is* that (the kit's byte-level
BPE: no normalizer, `ByteLevel(add_prefix_space=False)` with its regex, BPE without byte fallback) can be exported
with the same ids on both sides; anything else is refused by name rather than written to tokenize differently.

The token list and types follow `conversion/base.py:get_vocab_base` of llama.cpp: ids the tokenizer does not
use, up to the model's `vocab_size`, become `[PAD<id>]` (UNUSED); special added tokens are CONTROL, other added
tokens USER_DEFINED.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hfscratch.core.recipes import RecipeError

TOKENIZER_MODEL = "gpt2"  # llama.cpp's LLAMA_VOCAB_TYPE_BPE
# llama.cpp's name for GPT-2's split regex (LLAMA_VOCAB_PRE_TYPE_GPT2), the regex `ByteLevel(use_regex=True)` uses;
# transformers has no entry for it in GGUF_PRE_TOKENIZER_SPLITS and so keeps GPT2Tokenizer's ByteLevel regex.
PRE_TOKENIZER = "gpt-2"
SPECIAL_TOKENS = ("bos", "eos", "unk", "pad")
PROBE = "a"  # encoded with and without special tokens, to see what the post-processor adds


@dataclass(frozen=True)
class GGUFVocab:
    tokens: list[str]  # index = token id, byte-level spelling (" the" is "Ġthe")
    token_types: list[int]  # gguf.TokenType per token
    merges: list[str]  # "a b", in rank order
    special_ids: dict[str, int]  # bos / eos / unk / pad -> id, for the ones the tokenizer has
    add_bos: bool  # the tokenizer puts BOS in front of every encoded text
    add_eos: bool
    chat_template: str | None

    def add_to(self, writer: Any) -> None:
        """Write the `tokenizer.ggml.*` keys to a `gguf.GGUFWriter`."""
        writer.add_tokenizer_model(TOKENIZER_MODEL)
        writer.add_tokenizer_pre(PRE_TOKENIZER)
        writer.add_token_list(self.tokens)
        writer.add_token_types(self.token_types)
        writer.add_token_merges(self.merges)
        for kind, token_id in self.special_ids.items():
            getattr(writer, f"add_{kind}_token_id")(token_id)
        # Written either way: without the key llama.cpp decides by vocabulary type, which is not what we know.
        writer.add_add_bos_token(self.add_bos)
        writer.add_add_eos_token(self.add_eos)
        if self.chat_template:
            writer.add_chat_template(self.chat_template)


def backend_problem(backend: dict[str, Any]) -> str | None:
    """Why a tokenizer.json (as a dict) is not a byte-level BPE that llama.cpp and transformers rebuild the same,
    or None."""
    model, pre, decoder = backend.get("model") or {}, backend.get("pre_tokenizer") or {}, backend.get("decoder") or {}
    if model.get("type") != "BPE":
        return f"its model is {model.get('type')!r} (GGUF's byte-level vocabulary needs BPE)"
    if model.get("byte_fallback") or model.get("ignore_merges"):
        return "its BPE uses byte_fallback or ignore_merges, which llama.cpp's gpt2 vocabulary does not"
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        return "its BPE has a subword prefix or word suffix, which llama.cpp's gpt2 vocabulary does not"
    if backend.get("normalizer") is not None:
        return f"it has a normalizer ({backend['normalizer'].get('type')}), which a GGUF cannot carry"
    if pre.get("type") != "ByteLevel" or pre.get("add_prefix_space") or not pre.get("use_regex", True):
        return (
            f"its pre-tokenizer is {json.dumps(pre, sort_keys=True)} (expected ByteLevel with GPT-2's regex and no "
            "prefix space, llama.cpp's 'gpt-2' pre-tokenizer)"
        )
    if decoder.get("type") != "ByteLevel":
        return f"its decoder is {decoder.get('type')!r} (expected ByteLevel)"
    return None


def added_specials(tokenizer: Any) -> tuple[bool, bool]:
    """(add_bos, add_eos): what the tokenizer's post-processor puts around a text, when that is BOS and/or EOS."""
    bare = tokenizer(PROBE, add_special_tokens=False)["input_ids"]
    full = tokenizer(PROBE)["input_ids"]
    starts = [i for i in range(len(full) - len(bare) + 1) if full[i : i + len(bare)] == bare]
    prefix, suffix = (full[: starts[0]], full[starts[0] + len(bare) :]) if starts else (full, [])
    if not starts or prefix not in ([], [tokenizer.bos_token_id]) or suffix not in ([], [tokenizer.eos_token_id]):
        raise RecipeError(
            f"tokenizer: its post-processor turns {PROBE!r} {bare} into {full}; a GGUF can only say "
            "'add BOS' and 'add EOS'"
        )
    return bool(prefix), bool(suffix)


def gguf_vocab(tokenizer: Any, vocab_size: int) -> GGUFVocab:
    """The GGUF vocabulary of a fast tokenizer for a model with `vocab_size` embedding rows; a one-line
    `RecipeError` for a tokenizer GGUF cannot express."""
    import gguf

    if not getattr(tokenizer, "is_fast", False):
        raise RecipeError("tokenizer: not a fast (tokenizers) tokenizer; a GGUF export reads tokenizer.json")
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    problem = backend_problem(backend)
    if problem:
        raise RecipeError(f"tokenizer: cannot be written to GGUF: {problem}")
    vocab = tokenizer.get_vocab()
    if max(vocab.values()) >= vocab_size:
        raise RecipeError(f"tokenizer: has ids up to {max(vocab.values())}, beyond the model's vocab_size {vocab_size}")
    by_id = {token_id: token for token, token_id in vocab.items()}
    added = tokenizer.added_tokens_decoder  # id -> AddedToken
    tokens, types = [], []
    for token_id in range(vocab_size):
        if token_id not in by_id:
            tokens.append(f"[PAD{token_id}]")
            types.append(gguf.TokenType.UNUSED)
        elif token_id in added:
            tokens.append(by_id[token_id])
            types.append(gguf.TokenType.CONTROL if added[token_id].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[token_id])
            types.append(gguf.TokenType.NORMAL)
    # tokenizers writes merges as pairs (since 0.20) or "a b" strings; a byte-level token never holds a space.
    merges = [merge if isinstance(merge, str) else " ".join(merge) for merge in backend["model"].get("merges", [])]
    special_ids = {
        kind: token_id
        for kind in SPECIAL_TOKENS
        if (token_id := getattr(tokenizer, f"{kind}_token_id", None)) is not None
    }
    add_bos, add_eos = added_specials(tokenizer)
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    return GGUFVocab(tokens, [int(t) for t in types], merges, special_ids, add_bos, add_eos, template)


__all__ = ["GGUFVocab", "PRE_TOKENIZER", "TOKENIZER_MODEL", "backend_problem", "gguf_vocab"]
