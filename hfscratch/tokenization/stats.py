"""Per-source statistics of a tokenized corpus, and the histogram of document lengths in tokens."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hfscratch.tokenization.mixture import token_shares


def source_stats(documents: pd.DataFrame, weights: dict[str, float], epoch_tokens: dict[str, int]) -> dict:
    """Per source: documents, `tokens` and `characters` of all its documents (compression is their ratio),
    its training tokens before (`train_tokens`) and after mixing (`epoch_tokens`, what one epoch holds), both
    counting one EOS per document, and the requested and realised shares of the epoch's tokens.

    `documents` has one row per document: source, num_tokens, num_chars, stream_tokens, is_validation.
    """
    train = documents[~documents["is_validation"]]
    natural = train.groupby("source")["stream_tokens"].sum()
    requested = token_shares({tag: weights[tag] * int(natural.get(tag, 0)) for tag in weights})
    realised = token_shares(epoch_tokens)
    stats = {}
    for tag, rows in documents.groupby("source"):
        tokens, chars = int(rows["num_tokens"].sum()), int(rows["num_chars"].sum())
        stats[tag] = {
            "documents": len(rows),
            "tokens": tokens,
            "characters": chars,
            "characters_per_token": round(chars / tokens, 4) if tokens else None,
            "validation_documents": int(rows["is_validation"].sum()),
            "weight": weights[tag],
            "train_tokens": int(natural.get(tag, 0)),
            "epoch_tokens": epoch_tokens.get(tag, 0),
            "requested_share": round(requested.get(tag, 0.0), 6),
            "realised_share": round(realised.get(tag, 0.0), 6),
        }
    return stats


class LengthCounts:
    """How many documents have each length in tokens (`counts[n]`: the documents of n tokens). Its memory grows
    with the longest document, not with the number of documents: the stats of a billion documents fit."""

    def __init__(self, counts: np.ndarray | None = None) -> None:
        self.counts = np.zeros(0, dtype=np.int64) if counts is None else np.asarray(counts, dtype=np.int64)

    def add(self, lengths: np.ndarray) -> None:
        self.counts = padded_sum(self.counts, np.bincount(lengths))

    def __add__(self, other: LengthCounts) -> LengthCounts:
        return LengthCounts(padded_sum(self.counts, other.counts))

    def without_eos(self) -> LengthCounts:
        """Each document one token shorter: its length without the EOS that follows it in the stream."""
        return LengthCounts(self.counts[1:])

    def at_least_one(self) -> LengthCounts:
        """Empty documents counted as 1 token long."""
        counts = np.pad(self.counts, (0, max(0, 2 - len(self.counts))))
        counts[1] += counts[0]
        counts[0] = 0
        return LengthCounts(counts)

    @property
    def documents(self) -> int:
        return int(self.counts.sum())

    @property
    def tokens(self) -> int:
        return int(self.counts @ np.arange(len(self.counts)))

    def median(self) -> float:
        """The median length, as numpy's: the mean of the two middle lengths for an even count."""
        cumulative = np.cumsum(self.counts)
        n = int(cumulative[-1])
        return float(np.searchsorted(cumulative, [(n - 1) // 2 + 1, n // 2 + 1]).mean())


def padded_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    size = max(len(a), len(b))
    return np.pad(a, (0, size - len(a))) + np.pad(b, (0, size - len(b)))


def length_counts(lengths: pd.Series | np.ndarray) -> LengthCounts:
    counts = LengthCounts()
    counts.add(np.asarray(lengths, dtype=np.int64))
    return counts


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def import_pyplot_in_background() -> threading.Thread:
    """Import matplotlib's pyplot in a thread started now: a process's first plot took about 1 s on 2 cores,
    half of it the import. A plot drawn meanwhile waits for it on the import lock."""
    thread = threading.Thread(target=pyplot, name="import-pyplot", daemon=True)
    thread.start()
    return thread


def plot_document_lengths(lengths: dict[str, LengthCounts], path: Path) -> None:
    """Histogram of document lengths in tokens, one series per source, on log-spaced bins."""
    plt = pyplot()
    lengths = {tag: counts.at_least_one() for tag, counts in lengths.items()}  # the axis is logarithmic
    everything = sum(lengths.values(), LengthCounts())
    present = np.flatnonzero(everything.counts)
    bins = np.logspace(np.log10(present.min()), np.log10(max(present.max(), present.min() + 1)), 40)
    fig, ax = plt.subplots(figsize=(7, 4))
    for tag, counts in sorted(lengths.items()):
        sizes = np.arange(len(counts.counts))
        ax.hist(sizes, bins=bins, weights=counts.counts, alpha=0.6, label=f"{tag} ({counts.documents:,} docs)")
    ax.set_xscale("log")
    ax.set_xlabel("document length (tokens)")
    ax.set_ylabel("documents")
    median = int(everything.median())
    ax.set_title(f"Document lengths: {everything.documents:,} documents, median {median:,} tokens")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
