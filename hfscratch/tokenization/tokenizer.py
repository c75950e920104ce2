"""Train a byte-level BPE (or SentencePiece-style Unigram) tokenizer with `tokenizers`, or load an existing one.

The result is a `PreTrainedTokenizerFast` whose `save_pretrained` folder `AutoTokenizer.from_pretrained`
loads offline. Byte-level BPE maps every string to bytes first, so it never needs `<unk>` and decoding gives
back the exact text; the Unigram model works on characters (Metaspace, as SentencePiece does) and maps
characters it never saw in training to `<unk>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from hfscratch.core.recipes import RecipeError
from hfscratch.tokenization.arguments import TokenizeArguments
from hfscratch.tokenization.documents import as_plain_text


def train_tokenizer(texts: Iterable[list[str]], args: TokenizeArguments) -> PreTrainedTokenizerFast:
    """Train on batches of texts (streamed: `train_from_iterator` never holds the corpus)."""
    specials = args.special_tokens()
    if args.tokenizer_type == "bpe":
        backend = Tokenizer(models.BPE())
        # No prefix space and no normalizer: the byte-level round trip must give back the text exactly.
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=args.vocab_size,
            min_frequency=args.min_frequency,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen in training or not
            show_progress=False,
        )
    else:
        backend = Tokenizer(models.Unigram())
        backend.pre_tokenizer = pre_tokenizers.Metaspace()
        backend.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(
            vocab_size=args.vocab_size, special_tokens=specials, unk_token=args.unk_token, show_progress=False
        )
    backend.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=args.bos_token,
        eos_token=args.eos_token,
        pad_token=args.pad_token,
        unk_token=args.unk_token,
        clean_up_tokenization_spaces=False,  # would rewrite " ." to "." on decode
    )


def read_chat_template(value: str) -> str:
    """A chat template given inline or as the path of a .jinja file."""
    return Path(value).read_text(encoding="utf-8") if value.endswith(".jinja") else value


def load_tokenizer(name: str) -> PreTrainedTokenizerFast:
    """An existing fast tokenizer with an end-of-sequence token (packing puts it between documents)."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise RecipeError(
            f"key 'tokenizer': cannot load {name!r} (not a tokenizer folder, or offline): {reason}"
        ) from None
    if not tokenizer.is_fast:
        raise RecipeError(f"key 'tokenizer': {name!r} has no fast (tokenizers) version")
    if tokenizer.eos_token_id is None:
        raise RecipeError(f"key 'tokenizer': {name!r} has no eos_token to separate documents")
    return tokenizer


def encoding_backend(tokenizer: PreTrainedTokenizerFast) -> Tokenizer:
    """A copy of the Rust tokenizer that reads special-token strings in documents as plain text (documents.py)."""
    return as_plain_text(Tokenizer.from_str(tokenizer.backend_tokenizer.to_str()))
