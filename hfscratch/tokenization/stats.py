"""Per-source statistics of a tokenized corpus, and the histogram of document lengths in tokens."""

from __future__ import annotations

from pathlib import Path

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


def plot_document_lengths(documents: pd.DataFrame, path: Path) -> None:
    """Histogram of document lengths in tokens, one series per source, on log-spaced bins."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    lengths = documents["num_tokens"].clip(lower=1)
    bins = np.logspace(np.log10(lengths.min()), np.log10(max(lengths.max(), lengths.min() + 1)), 40)
    fig, ax = plt.subplots(figsize=(7, 4))
    for tag, rows in documents.groupby("source"):
        ax.hist(rows["num_tokens"].clip(lower=1), bins=bins, alpha=0.6, label=f"{tag} ({len(rows):,} docs)")
    ax.set_xscale("log")
    ax.set_xlabel("document length (tokens)")
    ax.set_ylabel("documents")
    ax.set_title(f"Document lengths: {len(documents):,} documents, median {int(lengths.median()):,} tokens")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
