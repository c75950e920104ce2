"""`hfscratch curate train-classifier`: a fastText quality classifier from reference text and negatives.

The GPT-3 / LLaMA recipe: text that looks like a trusted reference (`__label__hq`) against samples of the
raw pool (`__label__lq`). A held-out fraction measures accuracy; the model is then used by the curation
pipeline's `quality_classifier` step with a threshold on P(hq).
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfscratch.core.recipes import RecipeError
from hfscratch.curation.blocks import QualityClassifierFilter, classifier_input


@dataclass
class ClassifierArguments:
    positive: str = field(metadata={"help": "High-quality reference text: a folder of text files or a JSONL file."})
    negative: str = field(metadata={"help": "Low-quality samples: a folder of text files or a JSONL file."})
    output: str = field(default="quality.bin", metadata={"help": "Where to save the fastText model."})
    test_fraction: float = field(default=0.2, metadata={"help": "Share of each class held out for accuracy."})
    chunk_chars: int = field(default=2000, metadata={"help": "Split long documents into examples of this size."})
    epoch: int = field(default=25, metadata={"help": "fastText epochs."})
    lr: float = field(default=1.0, metadata={"help": "fastText learning rate."})
    word_ngrams: int = field(default=2, metadata={"help": "fastText word n-grams."})
    seed: int = field(default=0, metadata={"help": "Seed for the held-out split."})

    def __post_init__(self) -> None:
        for key in ("positive", "negative"):
            if not Path(getattr(self, key)).exists():
                raise RecipeError(f"--{key}: {getattr(self, key)} does not exist")
        if not 0 < self.test_fraction < 1:
            raise RecipeError(f"--test_fraction: expected a fraction in (0, 1), got {self.test_fraction}")


def read_texts(path: str | Path) -> Iterable[str]:
    """Documents of a folder (every UTF-8 file) or of a JSONL file (its `text` field)."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if file.suffix in (".jsonl", ".json"):
            with file.open(encoding="utf-8") as f:
                yield from (json.loads(line)["text"] for line in f if line.strip())
        else:
            try:
                yield file.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue


def examples(texts: Iterable[str], chunk_chars: int) -> list[str]:
    """One example per chunk of a document, normalised as the filter normalises at prediction time."""
    out = []
    for text in texts:
        for start in range(0, len(text), chunk_chars):
            chunk = classifier_input(text[start : start + chunk_chars])
            if len(chunk) > 20:
                out.append(chunk)
    return out


def train_classifier(args: ClassifierArguments) -> dict[str, Any]:
    """Train, evaluate on the held-out split, save; returns the measured accuracy and sizes."""
    import fasttext

    rng = random.Random(args.seed)
    labelled = {
        "__label__hq": examples(read_texts(args.positive), args.chunk_chars),
        "__label__lq": examples(read_texts(args.negative), args.chunk_chars),
    }
    train, test = [], []
    for label, texts in labelled.items():
        if len(texts) < 2:
            raise RecipeError(f"{label.removeprefix('__label__')} examples: need at least 2, found {len(texts)}")
        rng.shuffle(texts)
        cut = max(1, round(len(texts) * args.test_fraction))
        test += [(label, t) for t in texts[:cut]]
        train += [(label, t) for t in texts[cut:]]
    rng.shuffle(train)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as f:
        f.writelines(f"{label} {text}\n" for label, text in train)
        f.flush()
        try:
            model = fasttext.train_supervised(
                input=f.name,
                epoch=args.epoch,
                lr=args.lr,
                wordNgrams=args.word_ngrams,
                seed=args.seed,
                thread=1,
                verbose=0,
            )
        except RuntimeError as exc:  # fastText stops with "Encountered NaN" when the learning rate is too high
            raise RecipeError(
                f"--lr {args.lr}: fastText training diverged ({exc}); try a lower learning rate"
            ) from None
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    model.save_model(args.output)
    scorer = QualityClassifierFilter(args.output)
    correct = sum((scorer.score(text) >= 0.5) == (label == "__label__hq") for label, text in test)
    return {
        "model": args.output,
        "train_examples": len(train),
        "test_examples": len(test),
        "test_accuracy": correct / len(test),
    }
