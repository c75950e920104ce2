"""Helpers for the tokenization tests: small corpora in the curation step's format, and step arguments.

A module of its own (not conftest.py) so that tests import it by a name no other test folder uses.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

from hfscratch.curation.artifacts import CurationStats, SourceStats

# Unicode that byte-level BPE must carry through unchanged: scripts, emoji (with joiners and skin tones),
# combining marks, right-to-left text, control characters, odd whitespace, and special-token look-alikes.
UNICODE_SAMPLES = [
    "Ünïcödé: naïve café, Straße, ﬁligree, Ångström, ½ ≠ ⅓",
    "中文分词测试：我们训练一个分词器。日本語のテキストとカタカナ、한국어 문장도 있습니다.",
    "emoji 👩🏽‍💻 🏳️‍🌈 👍🏿 family 👨‍👩‍👧‍👦 and flags 🇫🇷🇯🇵",
    "combining: e\u0301 a\u0308 n\u0303 and zero\u200bwidth, NBSP\u00a0here, tab\there\r\nCRLF line",
    "RTL: שלום עולם, مرحبا بالعالم; Devanagari: नमस्ते दुनिया; Thai: สวัสดีชาวโลก",
    "math 𝔸𝕓𝕔 ∮ E⋅da = Q/ε₀, ancient 𐍈 𓀀, control \x01\x7f and trailing spaces   ",
    "special look-alikes: <|end_of_text|> <|pad|> <|begin_of_text|> </s> <unk> must stay text",
]

WORDS = (
    "the model reads tokens from blocks of text and learns to predict the next token across many documents "
    "while the tokenizer merges frequent byte pairs into a compact vocabulary for its own domain"
).split()


def make_text(rng: random.Random, words: int) -> str:
    sentence = " ".join(rng.choice(WORDS) for _ in range(words))
    return sentence[0].upper() + sentence[1:] + "."


def make_documents(source: str, count: int, seed: int, words: tuple[int, int] = (20, 60)) -> list[dict]:
    """`count` records of the curation step's format, with ids unique per source."""
    rng = random.Random(seed)
    return [
        {"text": make_text(rng, rng.randint(*words)), "id": f"{source}-{i}", "metadata": {"source": source}}
        for i in range(count)
    ]


def write_curated(folder: Path, records: list[dict], weights: dict[str, float] | None = None, shards: int = 2) -> Path:
    """A curated folder as step 1a writes it: documents/*.jsonl.gz shards and stats.json."""
    (folder / "documents").mkdir(parents=True, exist_ok=True)
    for shard in range(shards):
        with gzip.open(folder / "documents" / f"{shard:05d}.jsonl.gz", "wt", encoding="utf-8") as f:
            for record in records[shard::shards]:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    tags = sorted({r["metadata"]["source"] for r in records})
    sources = {tag: SourceStats(type="jsonl", weight=(weights or {}).get(tag, 1.0)) for tag in tags}
    CurationStats(
        wall_time_s=0.0, output={}, sources=sources, funnel=[], skipped_records={}, pii_redacted={}, stages={}
    ).write(folder)
    return folder


def step_argv(corpus: Path, out: Path, **overrides) -> list[str]:
    """Command-line arguments for a small, fast run of the step."""
    options = {"vocab_size": 300, "block_size": 32, "validation_fraction": 0.2, "num_proc": 1, **overrides}
    argv = ["--corpus", str(corpus), "--out", str(out)]
    for key, value in options.items():
        argv += [f"--{key}", str(value)]
    return argv
