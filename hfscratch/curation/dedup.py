"""Near-duplicate detection: datatrove's MinHash LSH, tuned by its S-curve, with candidate pairs verified.

MinHash with `bands` x `rows` hashes makes a pair of documents whose shingle sets have Jaccard similarity s a
candidate with probability

    P(s) = 1 - (1 - s^rows)^bands

(datatrove's `MinhashConfig`: `num_buckets` = bands, `hashes_per_bucket` = rows). The recipe states the
similarity that makes two documents duplicates, `minhash_threshold` t, and the settings follow from it:
the fewest bands that make P(t) >= 99% at the given rows (`bands_for`). LSH alone also nominates pairs below
t (P(0.2) is 23% at 35 x 3), so every candidate pair is verified: the exact Jaccard similarity of the two
shingle sets must reach t. datatrove has no such check, hence the blocks here:

- `FastMinhashSignature`: datatrove's stage 1, the same signatures in its file format, about 2x faster;
- `ShingleMinhashSignature`: the same, which also writes each document's shingle hashes;
- `MinhashVerifyPairs`: between stage 2 (candidate pairs) and stage 3 (clusters), keeps the pairs whose exact
  Jaccard similarity reaches the threshold, in datatrove's own `.dups` format.

Measured on planted sets in benchmarks/near_dedup.py and tests/curation/test_dedup.py.
"""

from __future__ import annotations

import math
import re
import struct
import unicodedata
from typing import Any, BinaryIO

import numpy as np
import xxhash
from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import SENTINEL, MinhashConfig, MinhashDedupSignature, _mersenne_prime
from datatrove.utils import text as dt_text
from datatrove.utils.binaryio import read_tuples_from_file
from datatrove.utils.hashes import xxhash as dt_xxhash
from datatrove.utils.text import TextNormConfig

from hfscratch.curation.blocks import RegexWordTokenizer


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """The LSH S-curve: how likely a pair at this Jaccard similarity shares at least one band."""
    return 1 - (1 - similarity**rows) ** bands


def bands_for(threshold: float, rows: int, recall: float = 0.99) -> int:
    """The fewest bands with which pairs at `threshold` become candidates with probability >= `recall`."""
    return math.ceil(math.log(1 - recall) / math.log(1 - threshold**rows))


# -- MinHash stage 1, faster ------------------------------------------------------------------------------
#
# Profiled on the default corpus (benchmarks/curation_throughput.py), datatrove's stage 1 spent about 45% of
# its time in `simplify_text`'s last step, a Python generator over every character that drops combining
# marks; the rest went to `str.translate` by dict, the regex word tokenizer, a Python loop that joins and
# hashes each shingle through a wrapper function, and the signature, one temporary array after another. The same
# results, faster: ASCII text has no marks to drop (NFD leaves it alone), other text drops the marks among
# its distinct characters, one `str.replace` each; punctuation goes by table lookups; a text without symbols
# has its whitespace-separated runs as words; shingles are joined and hashed by C-level `map`s straight
# into numpy; the signature is taken in blocks of hash functions x shingles, in place, with the
# Mersenne-prime remainder by shifts. tests/curation/test_fast_minhash.py compares every step with datatrove's.


def strip_combining_marks(text: str) -> str:
    """`"".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")`."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFD", text)
    for mark in [c for c in set(text) if unicodedata.category(c) == "Mn"]:  # few: one fast scan each
        text = text.replace(mark, "")
    return text


# datatrove's punctuation-to-space table (`PUNCTUATION_TRANS`, code point to code point), as a bytes table for
# ASCII text (bytes.translate is a plain lookup) and as a numpy lookup over UTF-32 code units for the rest
_ASCII_PUNCTUATION = bytes(dt_text.PUNCTUATION_TRANS.get(i, i) for i in range(128)) + bytes(range(128, 256))
_PUNCTUATION_TABLE = np.arange(0x110000, dtype=np.uint32)
_PUNCTUATION_TABLE[list(dt_text.PUNCTUATION_TRANS)] = list(dt_text.PUNCTUATION_TRANS.values())


def replace_punctuation(text: str) -> str:
    """`text.translate(PUNCTUATION_TRANS)`, datatrove's punctuation (not all of `PUNCTUATION_SET`) to spaces."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_PUNCTUATION).decode("ascii")
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    return _PUNCTUATION_TABLE[codes].tobytes().decode("utf-32-le", "surrogatepass")


# A text of word characters and whitespace only (`re`'s \w and \s; \s is exactly what str.split splits on)
# has its whitespace-separated runs as RegexWordTokenizer's words. Every ASCII character is a word character,
# whitespace or datatrove punctuation, so an ASCII text without punctuation needs no check.
_SYMBOL = re.compile(r"[^\w\s]")
_ASCII_WORDS_SPLIT = all(chr(i).isalnum() or chr(_ASCII_PUNCTUATION[i]).isspace() for i in range(128))


def simplify_text(text: str, config: TextNormConfig) -> str:
    """datatrove's `simplify_text`, step for step with its own patterns and tables, faster where the result is
    provably the same: punctuation by table lookups, whitespace runs by `str.split` (which splits on
    exactly the characters `re`'s `\\s` matches), combining marks as above."""
    if config.lowercase:
        text = text.lower()
    if config.norm_numbers:
        text = dt_text.NUMBERS_PATTERN.sub("0", text)
    if config.norm_weekdays:
        text = dt_text.WEEKDAYS_PATTERN.sub("WEEKDAY", text)
    if config.norm_monthnames:
        text = dt_text.MONTHS_PATTERN.sub("MONTH", text)
    if config.remove_punctuation:
        text = replace_punctuation(text)
    if config.norm_whitespace:
        text = " ".join(text.split())  # = WHITESPACE_PATTERN.sub(" ", text.strip())
    if config.norm_unicode_diacritics:
        text = strip_combining_marks(text)
    return text.strip()


# datatrove's hash wrappers, by the xxhash functions they call (one Python call less per shingle)
_DIRECT_HASH = {dt_xxhash.xxhash64: xxhash.xxh64_intdigest, dt_xxhash.xxhash32: xxhash.xxh32_intdigest}
_SHIFT = np.uint64(61)


class FastMinhashSignature(MinhashDedupSignature):
    """datatrove's MinHash stage 1 (its `run`, file format and sorting), with the same shingles and
    signatures computed faster; tests/curation/test_fast_minhash.py compares both on every document."""

    SIGNATURE_COLUMNS = 4096  # distinct shingles per block of the signature (hash functions x shingles)

    def get_shingles(self, text: str) -> np.ndarray:
        text = simplify_text(text, self.config.norm_config)
        if isinstance(self.word_tokenizer, RegexWordTokenizer) and (
            (_ASCII_WORDS_SPLIT and self.config.norm_config.remove_punctuation and text.isascii())
            or not _SYMBOL.search(text)
        ):
            words = text.split()
        else:
            words = self.word_tokenizer.word_tokenize(text)
        grams = map(" ".join, zip(*(words[i:] for i in range(self.config.n_grams))))
        hash_function = _DIRECT_HASH.get(self._hash_func, self._hash_func)
        return np.fromiter(map(hash_function, grams), dtype=np.uint64).reshape((-1, 1))

    def get_signature(self, shingles: np.ndarray) -> list[list[int]]:
        a, b = (p.reshape((-1, 1)) for p in self.parameters)  # one row per hash function
        shingles = shingles.reshape((1, -1))  # (dropping repeats first costs more than it saves)
        buffers = getattr(self, "_buffers", None)  # reused: fresh pages for every document cost more than the maths
        if buffers is None or buffers.shape[1] < a.shape[0] * self.SIGNATURE_COLUMNS:
            self._buffers = buffers = np.empty((2, a.shape[0] * self.SIGNATURE_COLUMNS), dtype=np.uint64)
        minimum = np.full(a.shape[0], np.iinfo(np.uint64).max, dtype=np.uint64)
        for start in range(0, shingles.shape[1], self.SIGNATURE_COLUMNS):
            block = shingles[:, start : start + self.SIGNATURE_COLUMNS]
            x, top = (buffer[: a.shape[0] * block.shape[1]].reshape((a.shape[0], -1)) for buffer in buffers)
            np.multiply(a, block, out=x)  # uint64, wrapping like datatrove's
            x += b
            # x % (2**61 - 1), as 2**61 = 1 modulo the prime: the low 61 bits plus the high 3, at most the
            # prime + 7; only those at least the prime (about 8 in 2**61) need the prime taken off once more
            np.right_shift(x, _SHIFT, out=top)
            x &= _mersenne_prime
            x += top
            if x.max() >= _mersenne_prime:
                np.subtract(x, _mersenne_prime, out=top)  # below the prime, this wraps around above x
                np.minimum(x, top, out=x)
            if self.config.hash_config.precision == 32:
                x &= np.uint64(self.config.hash_config.max)
            np.minimum(minimum, x.min(axis=1), out=minimum)
        return minimum.astype(self.config.hash_config.np_dtype).reshape((self.config.num_buckets, -1)).tolist()


class ShingleWriter:
    """One task's shingle sets: `{rank}.shingles` (sorted unique uint64 hashes, document after document) and
    `{rank}.offsets` (uint64, where each document starts, then the end), indexed like datatrove's doc ids."""

    def __init__(self, folder: Any, rank: int) -> None:
        self.folder, self.rank = folder, rank
        self.offsets = [0]

    def __enter__(self) -> ShingleWriter:
        self.file = self.folder.open(f"{self.rank:05d}.shingles", "wb")
        return self

    def add(self, shingles: np.ndarray) -> None:
        unique = np.unique(shingles).astype("<u8")
        self.file.write(unique.tobytes())
        self.offsets.append(self.offsets[-1] + unique.size)

    def __exit__(self, *exc: object) -> None:
        self.file.close()
        with self.folder.open(f"{self.rank:05d}.offsets", "wb") as f:
            f.write(np.asarray(self.offsets, dtype="<u8").tobytes())


class ShingleMinhashSignature(FastMinhashSignature):
    """datatrove's MinHash stage 1 (fast), also keeping every document's shingle set for `MinhashVerifyPairs`."""

    name = "🎯 MinHash stage 1 (+ shingles)"

    def __init__(
        self, output_folder: DataFolderLike, shingles_folder: DataFolderLike, config: MinhashConfig, language: Any
    ) -> None:
        super().__init__(output_folder, config, language=language)
        self.shingles_folder = get_datafolder(shingles_folder)
        self._writer: ShingleWriter | None = None

    def get_shingles(self, text: str) -> np.ndarray:
        shingles = super().get_shingles(text)
        if self._writer is not None:  # stage 1 calls this once per document, in document order
            self._writer.add(shingles)
        return shingles

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> None:
        with ShingleWriter(self.shingles_folder, rank) as self._writer:
            super().run(data, rank, world_size)
        self._writer = None


class ShingleStore:
    """Reads the shingle sets `ShingleWriter` wrote, by (signature task, document index)."""

    def __init__(self, folder: Any) -> None:
        self.folder = folder
        self.offsets: dict[int, np.ndarray] = {}
        self.files: dict[int, BinaryIO] = {}

    def get(self, task: int, doc: int) -> np.ndarray:
        if task not in self.files:
            with self.folder.open(f"{task:05d}.offsets", "rb") as f:
                self.offsets[task] = np.frombuffer(f.read(), dtype="<u8")
            self.files[task] = self.folder.open(f"{task:05d}.shingles", "rb")
        start, end = (int(x) for x in self.offsets[task][doc : doc + 2])
        file = self.files[task]
        file.seek(start * 8)
        return np.frombuffer(file.read((end - start) * 8), dtype="<u8")

    def close(self) -> None:
        for file in self.files.values():
            file.close()


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted sets of unique hashes."""
    if not a.size and not b.size:
        return 1.0
    shared = np.intersect1d(a, b, assume_unique=True).size
    return shared / (a.size + b.size - shared)


class MinhashVerifyPairs(PipelineStep):
    """Keeps the candidate pairs of MinHash stage 2 whose shingle sets' exact Jaccard similarity reaches
    `threshold`; writes them, in the same `.dups` files and format, for datatrove's stage 3."""

    type = "🫂 - DEDUP"
    name = "🎯 MinHash candidate check (exact Jaccard)"

    def __init__(
        self,
        input_folder: DataFolderLike,
        shingles_folder: DataFolderLike,
        output_folder: DataFolderLike,
        threshold: float,
    ) -> None:
        super().__init__()
        self.input_folder = get_datafolder(input_folder)
        self.shingles_folder = get_datafolder(shingles_folder)
        self.output_folder = get_datafolder(output_folder)
        self.threshold = threshold

    def similar(self, store: ShingleStore, pair: tuple[int, int, int, int]) -> bool:
        if pair[0] == SENTINEL:  # a match against a datatrove index, which keeps no shingles: trust it
            return True
        return jaccard(store.get(*pair[:2]), store.get(*pair[2:])) >= self.threshold

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> None:
        store = ShingleStore(self.shingles_folder)
        verdicts: dict[tuple[int, int, int, int], bool] = {}  # a pair recurs in every band it shares
        try:
            for name in sorted(self.input_folder.list_files(glob_pattern="*.dups"))[rank::world_size]:
                with self.input_folder.open(name, "rb") as dups, self.output_folder.open(name, "wb") as out:
                    for pair in read_tuples_from_file(dups, "4I"):
                        self.stat_update("candidate_pairs")
                        with self.track_time():
                            if pair not in verdicts:
                                verdicts[pair] = self.similar(store, pair)
                            if verdicts[pair]:
                                out.write(struct.pack("<4I", *pair))
                        self.stat_update("verified_pairs" if verdicts[pair] else "rejected_pairs")
        finally:
            store.close()
