"""Held-out documents of the user's own data, for perplexity and the domain benchmark.

From a `hfscratch tokenize` output folder they are exactly the validation documents the model never trained
on: the packed validation blocks are one token stream of documents each followed by EOS (and padding after
the last), so splitting that stream at EOS and decoding each piece gives the documents back (byte-level BPE
is lossless). That needs neither the corpus nor the split's settings, and stats.json's count checks it.
Any .txt file (one document) or JSONL file (a `text` field per line) works as well.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from hfscratch.core.recipes import RecipeError


def held_out_documents(path: str | Path, key: str) -> list[str]:
    """The documents of `path`; `key` names the recipe key in errors."""
    source = Path(path)
    if source.is_dir():
        if (source / "packed").is_dir() and (source / "tokenizer").is_dir():
            return validation_documents(source, key)
        raise RecipeError(
            f"key '{key}': {source} is a folder without packed/ and tokenizer/ "
            "(expected a `hfscratch tokenize` output folder, or a .txt/.jsonl file)"
        )
    if not source.is_file():
        raise RecipeError(f"key '{key}': {source} not found")
    name = source.name
    if name.endswith((".jsonl", ".jsonl.gz", ".json.gz")):
        opener = gzip.open if name.endswith(".gz") else open
        documents = []
        with opener(source, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    text = json.loads(line).get("text")
                except (json.JSONDecodeError, AttributeError):
                    raise RecipeError(f"key '{key}': {source} line {number} is not a JSON object") from None
                if isinstance(text, str) and text.strip():
                    documents.append(text)
        if not documents:
            raise RecipeError(f"key '{key}': {source} has no records with a non-empty 'text' field")
        return documents
    if name.endswith(".txt"):
        text = source.read_text(encoding="utf-8")
        if not text.strip():
            raise RecipeError(f"key '{key}': {source} is empty")
        return [text]
    raise RecipeError(f"key '{key}': {source} is not a .txt or .jsonl(.gz) file or a `hfscratch tokenize` folder")


def validation_documents(folder: Path, key: str) -> list[str]:
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    packed = load_from_disk(str(folder / "packed"))
    if "validation" not in packed or len(packed["validation"]) == 0:
        raise RecipeError(
            f"key '{key}': {folder}/packed has no validation blocks; tokenize with a larger validation_fraction"
        )
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    documents, current = [], []
    for block in packed["validation"].with_format("numpy")["input_ids"]:
        for token in block.tolist():
            if token == eos:
                documents.append(tokenizer.decode(current))
                current = []
            elif token != pad:
                current.append(token)
    if current:  # a last block cut without its EOS (last_block: drop)
        documents.append(tokenizer.decode(current))
    stats_file = folder / "stats.json"
    if stats_file.is_file():
        expected = json.loads(stats_file.read_text(encoding="utf-8")).get("validation", {}).get("documents")
        if expected is not None and expected != len(documents) and not current:
            raise RecipeError(
                f"key '{key}': {folder}/packed holds {len(documents)} validation documents but stats.json "
                f"records {expected}; the folder is inconsistent (re-run `hfscratch tokenize`)"
            )
    return [d for d in documents if d.strip()]
