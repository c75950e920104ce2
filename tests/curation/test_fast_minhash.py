"""The fast MinHash stage 1 (dedup.py) against datatrove's `MinhashDedupSignature`: the same simplified text,
shingles and signatures document by document, and byte-identical signature files, so datatrove's stages 2-4
(and the exact check between them) see exactly what they saw before."""

from __future__ import annotations

import dataclasses
import functools
import random
import sys
import unicodedata

import numpy as np
import pytest
from curation_corpora import english_documents, spam
from datatrove.data import Document
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.utils.hashing import HashConfig
from datatrove.utils.text import PUNCTUATION_SET, TextNormConfig
from datatrove.utils.text import simplify_text as datatrove_simplify_text
from test_fast_filters import planted_bad_documents, random_documents, spacy_example_texts

from hfscratch.curation.blocks import RegexWordTokenizer
from hfscratch.curation.dedup import FastMinhashSignature, ShingleMinhashSignature, simplify_text
from hfscratch.curation.pipeline import CurateArguments, build_stages

WHITESPACE = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
MARKS = "".join(c for c in map(chr, range(0x300, 0x370)) if unicodedata.category(c) == "Mn")


def edge_documents() -> list[str]:
    """Every punctuation character datatrove knows (its table covers only part of them), every whitespace
    character, combining marks at the edges, digits of other scripts, a lone surrogate, empty text."""
    punctuation = "".join(sorted(PUNCTUATION_SET))
    return [
        "",
        " ",
        "one two",
        f"words {punctuation} between punctuation {punctuation[::-1]} and more words here",
        f"runs{WHITESPACE}of{WHITESPACE[::-1]}white space",
        f"{MARKS}leading marks, and trailing ones {MARKS}",
        "Café naïve résumé Ångström coöperate ﬁnance Ǆ ᾯ e\u0301 \u212b",
        "\u0301 x \u0301",
        "numbers 12 3.14 ١٢٣ ४५६ 1,000 ٣٫١٤ and Monday in January",
        "lone \ud800 surrogate and \udfff another one here",
        "UPPER lower MiXeD Straße İstanbul ΣΊΣΥΦΟΣ",
        "emoji 🎉 and 👍🏽 and symbols © ® ™ ± ≠ → in text",
        "\x00\x01 control \x7f\x9f characters \x1c\x1d\x1e\x1f between",
        "tabs\tand\nnew\r\nlines\u2028and\u2029separators",
    ]


@functools.cache
def documents(surrogates: bool = True) -> tuple[str, ...]:
    """Reference topics with near copies, 60-odd languages, spam, planted and random documents, edge cases.
    datatrove's hashing cannot encode lone surrogates (UTF-8): `surrogates=False` leaves those out."""
    rng = random.Random(0)
    english = list(english_documents(min_chars=50, max_chars=100_000, max_overlap=1.0).values())
    near = [" ".join(rng.sample(t.split(" "), len(t.split(" ")))[:50]) + t for t in english[:20]]
    texts = [
        *english,
        *near,
        *spacy_example_texts(),
        *(spam(rng) for _ in range(10)),
        *planted_bad_documents(),
        *random_documents(100, seed=1),
        *edge_documents(),
    ]
    return tuple(t for t in texts if surrogates or not any("\ud800" <= c <= "\udfff" for c in t))


NORM_CONFIGS = [
    TextNormConfig(),
    TextNormConfig(norm_weekdays=True, norm_monthnames=True),
    TextNormConfig(lowercase=False, norm_numbers=False),
    TextNormConfig(remove_punctuation=False, norm_whitespace=False),
    TextNormConfig(norm_unicode_diacritics=False),
]


@pytest.mark.parametrize("config", NORM_CONFIGS, ids=range(len(NORM_CONFIGS)))
def test_simplify_text_matches_datatrove(config):
    for text in documents():
        assert simplify_text(text, config) == datatrove_simplify_text(text, config), text[:200]


PROJECT = MinhashConfig(n_grams=3, num_buckets=35, hashes_per_bucket=3)
CONFIGS = {
    "project": PROJECT,
    "datatrove-default": MinhashConfig(),
    "32-bit": dataclasses.replace(PROJECT, hash_config=HashConfig(precision=32)),
    "sha1": dataclasses.replace(PROJECT, hash_config=HashConfig(hash_fc="sha1")),
    "1-gram, weekdays": dataclasses.replace(PROJECT, n_grams=1, norm_config=NORM_CONFIGS[1]),
    "no punctuation removal": dataclasses.replace(PROJECT, norm_config=NORM_CONFIGS[3]),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_shingles_and_signatures_match_datatrove(tmp_path, name):
    config = CONFIGS[name]
    old = MinhashDedupSignature(str(tmp_path / "old"), config, language=RegexWordTokenizer())
    new = FastMinhashSignature(str(tmp_path / "new"), config, language=RegexWordTokenizer())
    for text in documents(surrogates=False):
        old_shingles, new_shingles = old.get_shingles(text), new.get_shingles(text)
        assert new_shingles.dtype == old_shingles.dtype and new_shingles.shape == old_shingles.shape
        assert np.array_equal(old_shingles, new_shingles), text[:200]
        if old_shingles.size:
            assert new.get_signature(new_shingles) == old.get_signature(old_shingles), text[:200]


def test_signature_blocks_and_the_mersenne_remainder_match_datatrove(tmp_path):
    """Many shingles (several blocks), including hashes near 2**64 where the remainder's correction is needed."""
    old = MinhashDedupSignature(str(tmp_path / "old"), PROJECT)
    new = FastMinhashSignature(str(tmp_path / "new"), PROJECT)
    rng = np.random.default_rng(0)
    for size in (1, 2, 1023, 1024, 1025, 5000):
        shingles = rng.integers(0, 2**64 - 1, size=(size, 1), dtype=np.uint64, endpoint=True)
        shingles[: size // 2] = shingles[size // 2 :][: size // 2]  # repeats
        assert new.get_signature(shingles) == old.get_signature(shingles)
    # shingles whose a * s + b (wrapped to 64 bits) lands where the remainder needs its correction: just
    # below and above multiples of the prime, and at the top of the range
    a, b = new.parameters
    column = next(j for j in range(a.shape[1]) if int(a[0, j]) % 2)  # odd: invertible modulo 2**64
    inverse, offset = pow(int(a[0, column]), -1, 2**64), int(b[0, column])
    prime = 2**61 - 1
    targets = [k * prime + d for k in range(1, 8) for d in range(-3, 4)] + [2**64 - 1 - d for d in range(16)]
    shingles = np.array([[(t - offset) * inverse % 2**64] for t in targets], dtype=np.uint64)
    assert ((shingles * a + b)[:, column] == np.array(targets, dtype=np.uint64)).all()
    assert new.get_signature(shingles) == old.get_signature(shingles)
    for target in range(len(targets)):
        assert new.get_signature(shingles[target : target + 1]) == old.get_signature(shingles[target : target + 1])


def test_spacy_words_take_datatrove_path(tmp_path):
    config = PROJECT
    old = MinhashDedupSignature(str(tmp_path / "old"), config, language="en")
    new = FastMinhashSignature(str(tmp_path / "new"), config, language="en")
    for text in documents(surrogates=False)[:20] + tuple(edge_documents()[:9]):
        assert np.array_equal(old.get_shingles(text), new.get_shingles(text))


def test_lone_surrogates_fail_as_in_datatrove(tmp_path):
    old = MinhashDedupSignature(str(tmp_path / "old"), PROJECT, language=RegexWordTokenizer())
    new = FastMinhashSignature(str(tmp_path / "new"), PROJECT, language=RegexWordTokenizer())
    for step in (old, new):
        with pytest.raises(UnicodeEncodeError):
            step.get_shingles("a lone \ud800 surrogate in the text")


def test_stage_one_files_are_byte_identical(tmp_path):
    """datatrove's `run` writes and sorts the same bucket files from both: stages 2-4 are unchanged."""
    docs = [Document(text=text, id=str(i)) for i, text in enumerate(documents(surrogates=False))]
    old = MinhashDedupSignature(str(tmp_path / "old"), PROJECT, language=RegexWordTokenizer())
    new = ShingleMinhashSignature(str(tmp_path / "new"), str(tmp_path / "shingles"), PROJECT, RegexWordTokenizer())
    old.run(iter(docs))
    new.run(iter(docs))
    files = sorted(p.relative_to(tmp_path / "old") for p in (tmp_path / "old").rglob("*.sig"))
    assert len(files) == PROJECT.num_buckets
    for path in files:
        assert (tmp_path / "old" / path).read_bytes() == (tmp_path / "new" / path).read_bytes(), path
    assert (tmp_path / "new" / "bucket_000" / "00000.minhash.sig").stat().st_size > 0


def test_the_recipe_builds_the_fast_stage():
    for threshold, step_class in ((0.5, ShingleMinhashSignature), (0.0, FastMinhashSignature)):
        stages = build_stages(CurateArguments(minhash_threshold=threshold, exact_dedup=False))
        step = next(s for s in stages if s.name == "minhash-signatures").steps[-1]
        assert type(step) is step_class
        assert step.name.startswith(MinhashDedupSignature.name)  # the report's funnel row
