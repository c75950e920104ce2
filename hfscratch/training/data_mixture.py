"""Token shards mixed at load time: the training blocks of a `hfscratch tokenize` output made with `executor:
local | slurm` (tokens/<split>/<source>/, datatrove's format), drawn from each source by a recipe's
`data_mixture`, so that a new mixture needs no new tokenization.

Each source's blocks are read by datatrove's `DatatroveFolderDataset` (block_size tokens per item, the tail of
each file dropped). `data_mixture: {python-docs: 0.7, web: 0.3}` gives each source that share of the run's
training blocks (weights are normalised; a source left out gets none). The run's order interleaves the sources
as Megatron's `BlendedDataset` does, deterministically: block i comes from the source furthest behind its
share, so every prefix of the run, a run stopped at any step included, holds each source within one block of
its share. Within a source, blocks come in a seeded random order, each block once before any repeats
(a source given more than its natural share is repeated, one with less is sampled).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from datatrove.utils.dataset import DatatroveFolderDataset

from hfscratch.core.recipes import RecipeError
from hfscratch.tokenization.stages import TOKENS_DIR

UINT16_VOCAB = 2**16  # datatrove stores tokens in 2 bytes up to this vocabulary size, else 4


def source_blocks(folder: Path, block_size: int, vocab_size: int) -> DatatroveFolderDataset:
    """The full blocks of one source's token files (datatrove reads `seq_len + 1` tokens per item)."""
    return DatatroveFolderDataset(
        str(folder),
        seq_len=block_size - 1,
        filename_pattern="**/*.ds",
        token_size=2 if vocab_size <= UINT16_VOCAB else 4,
    )


def blend_order(counts: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """The k-th block of source s is due at time (k + 0.5) / count_s: sorting those times interleaves the
    sources so that after any number of blocks each has within one block of its share. Returns, per position
    of the run, the source's position in `counts` and k (arrays: a run may have billions of tokens)."""
    sizes = list(counts.values())
    times = np.concatenate([(np.arange(n) + 0.5) / n for n in sizes] or [np.empty(0)])
    sources = np.concatenate([np.full(n, i, dtype=np.int32) for i, n in enumerate(sizes)] or [np.empty(0, np.int32)])
    ranks = np.concatenate([np.arange(n, dtype=np.int64) for n in sizes] or [np.empty(0, np.int64)])
    order = np.lexsort((sources, times))  # ties by source, in a fixed order
    return sources[order], ranks[order]


def block_counts(weights: dict[str, float], total: int) -> dict[str, int]:
    """`total` blocks shared by `weights` (normalised), by largest remainders so that they add up exactly."""
    norm = sum(weights.values())
    exact = {tag: total * w / norm for tag, w in weights.items()}
    counts = {tag: int(x) for tag, x in exact.items()}
    for tag in sorted(exact, key=lambda t: counts[t] - exact[t])[: total - sum(counts.values())]:
        counts[tag] += 1
    return {tag: n for tag, n in counts.items() if n > 0}


class MixtureDataset(torch.utils.data.Dataset):
    """Training blocks of several sources in their blended order; `counts` and `shares` say what it holds."""

    def __init__(self, sources: dict[str, Any], weights: dict[str, float], seed: int, total: int | None = None):
        self.sources = sources
        self.weights = weights
        self.counts = block_counts(weights, total if total is not None else sum(len(d) for d in sources.values()))
        self.tags = list(self.counts)  # the sources that get blocks, in the order of `source_of`
        self.source_of, self.rank = blend_order(self.counts)
        self.seeds = {tag: [seed, i] for i, tag in enumerate(sorted(sources))}  # stable across processes
        self.permutations: dict[tuple[str, int], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.source_of)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        tag = self.tags[self.source_of[index]]
        cycle, position = divmod(int(self.rank[index]), len(self.sources[tag]))
        return {"input_ids": self.sources[tag][int(self.permutation(tag, cycle)[position])]["input_ids"]}

    def permutation(self, tag: str, cycle: int) -> np.ndarray:
        """The order of a source's blocks in its `cycle`-th pass (a fresh one for each repeat)."""
        if (tag, cycle) not in self.permutations:
            self.permutations[(tag, cycle)] = np.random.default_rng([*self.seeds[tag], cycle]).permutation(
                len(self.sources[tag])
            )
        return self.permutations[(tag, cycle)]

    def shares(self, first: int | None = None) -> dict[str, float]:
        """Each source's share of the first `first` blocks (all of them by default)."""
        taken = np.bincount(self.source_of[: first or len(self)], minlength=len(self.tags))
        blocks = dict(zip(self.tags, taken.tolist()))
        return {tag: blocks.get(tag, 0) / max(int(taken.sum()), 1) for tag in self.sources}


def load_token_shards(
    folder: Path, block_size: int, vocab_size: int, data_mixture: dict[str, float] | None, seed: int
) -> dict[str, Any]:
    """{"train": MixtureDataset, "validation": every source's validation blocks} of a token-shard folder."""
    train = {
        p.name: source_blocks(p, block_size, vocab_size) for p in sorted((folder / TOKENS_DIR / "train").glob("*"))
    }
    train = {tag: blocks for tag, blocks in train.items() if len(blocks)}
    if not train:
        raise RecipeError(f"key 'data_dir': {folder}/{TOKENS_DIR}/train holds no full training block")
    weights = natural = {tag: float(len(blocks)) for tag, blocks in train.items()}
    if data_mixture is not None:
        unknown = sorted(set(data_mixture) - set(train))
        if unknown:
            raise RecipeError(
                f"key 'data_mixture': no training blocks of source(s) {unknown} in {folder}; it has {sorted(train)}"
            )
        weights = {tag: float(data_mixture.get(tag, 0.0)) for tag in train}
        if sum(weights.values()) <= 0:
            raise RecipeError(f"key 'data_mixture': every weight is 0 ({data_mixture}); nothing would be trained on")
    mixture = MixtureDataset(train, weights, seed, total=int(sum(natural.values())))
    validation_folder = folder / TOKENS_DIR / "validation"
    has_validation = any(validation_folder.glob("*/*.ds"))
    validation = source_blocks(validation_folder, block_size, vocab_size) if has_validation else None
    return {"train": mixture, "validation": validation}
