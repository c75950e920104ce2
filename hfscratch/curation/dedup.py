"""Near-duplicate detection: datatrove's MinHash LSH, tuned by its S-curve, with candidate pairs verified.

MinHash with `bands` x `rows` hashes makes a pair of documents whose shingle sets have Jaccard similarity s a
candidate with probability

    P(s) = 1 - (1 - s^rows)^bands

(datatrove's `MinhashConfig`: `num_buckets` = bands, `hashes_per_bucket` = rows). The recipe states the
similarity that makes two documents duplicates, `minhash_threshold` t, and the settings follow from it:
the fewest bands that make P(t) >= 99% at the given rows (`bands_for`). LSH alone also nominates pairs below
t (P(0.2) is 23% at 35 x 3), so every candidate pair is verified: the exact Jaccard similarity of the two
shingle sets must reach t. datatrove has no such check, hence the two blocks here:

- `ShingleMinhashSignature`: datatrove's stage 1, which also writes each document's shingle hashes;
- `MinhashVerifyPairs`: between stage 2 (candidate pairs) and stage 3 (clusters), keeps the pairs whose exact
  Jaccard similarity reaches the threshold, in datatrove's own `.dups` format.

Measured on planted sets in benchmarks/near_dedup.py and tests/curation/test_dedup.py.
"""

from __future__ import annotations

import math
import struct
from typing import Any, BinaryIO

import numpy as np
from datatrove.data import DocumentsPipeline
from datatrove.io import DataFolderLike, get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import SENTINEL, MinhashConfig, MinhashDedupSignature
from datatrove.utils.binaryio import read_tuples_from_file


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """The LSH S-curve: how likely a pair at this Jaccard similarity shares at least one band."""
    return 1 - (1 - similarity**rows) ** bands


def bands_for(threshold: float, rows: int, recall: float = 0.99) -> int:
    """The fewest bands with which pairs at `threshold` become candidates with probability >= `recall`."""
    return math.ceil(math.log(1 - recall) / math.log(1 - threshold**rows))


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


class ShingleMinhashSignature(MinhashDedupSignature):
    """datatrove's MinHash stage 1, also keeping every document's shingle set for `MinhashVerifyPairs`."""

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
