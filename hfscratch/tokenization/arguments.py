"""The keys of a tokenize recipe (`recipes/tokenize/*.yaml`), and the checks that run before any long work."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hfscratch.core.recipes import RecipeError
from hfscratch.curation.executors import SlurmOptions

BYTE_ALPHABET_SIZE = 256  # byte-level BPE starts from one token per byte value
DEFAULT_BENCHMARKS = ["arc_easy", "arc_challenge", "hellaswag", "mmlu", "truthfulqa"]


@dataclass
class TokenizeArguments(SlurmOptions):
    corpus: str = field(
        metadata={
            "help": "A curated folder (documents/*.jsonl.gz or *.parquet, stats.json), a folder of .txt/.jsonl "
            "files, or one .txt/.jsonl/.jsonl.gz/.parquet file. Files without a source tag are tagged by file stem."
        }
    )
    out: str = field(default="runs/tokenize", metadata={"help": "Output folder: tokenizer/, packed/, stats.json."})
    overwrite: bool = field(
        default=False, metadata={"help": "Replace a finished tokenization in `out` made with other settings."}
    )
    executor: Literal["datasets", "local", "slurm"] = field(
        default="datasets",
        metadata={
            "help": "datasets: Dataset.map on this machine, packed Arrow blocks (small corpora); local or slurm: "
            "datatrove stages on the curation engine, token shards per source mixed at load time (data_mixture)."
        },
    )
    tasks: int = field(default=4, metadata={"help": "executor local/slurm: tasks of the tokenize stage."})
    text_sample_by: Literal["paragraph", "line", "document"] = field(
        default="paragraph", metadata={"help": "How a .txt file splits into documents (paragraph: at blank lines)."}
    )

    tokenizer: str | None = field(
        default=None, metadata={"help": "An existing tokenizer (folder or Hub id) to use instead of training one."}
    )
    tokenizer_type: Literal["bpe", "unigram"] = field(
        default="bpe", metadata={"help": "bpe: byte-level BPE (lossless); unigram: SentencePiece-style Unigram."}
    )
    vocab_size: int = field(default=8192, metadata={"help": "Vocabulary size of the trained tokenizer."})
    min_frequency: int = field(default=2, metadata={"help": "BPE: the fewest occurrences of a pair to merge it."})
    tokenizer_max_documents: int | None = field(
        default=None, metadata={"help": "Train the tokenizer on at most this many training documents."}
    )
    bos_token: str = field(default="<|begin_of_text|>", metadata={"help": "Special token: start of a sequence."})
    eos_token: str = field(default="<|end_of_text|>", metadata={"help": "Special token packed after each document."})
    pad_token: str = field(default="<|pad|>", metadata={"help": "Special token that fills the last partial block."})
    unk_token: str = field(default="<|unk|>", metadata={"help": "Special token for unknown characters (Unigram)."})
    chat_template: str | None = field(
        default=None, metadata={"help": "A Jinja chat template, inline or as the path of a .jinja file."}
    )

    block_size: int = field(default=512, metadata={"help": "Tokens per packed training block."})
    max_position_embeddings: int | None = field(
        default=None, metadata={"help": "The model's positions; block_size may not exceed it."}
    )
    model_config: str | None = field(
        default=None,
        metadata={"help": "A model folder or config.json whose max_position_embeddings bounds block_size."},
    )
    last_block: Literal["pad", "drop"] | None = field(
        default=None,
        metadata={
            "help": "The tail that does not fill a last block: pad it (the LM collator masks pads) or drop it; "
            "default pad, and drop for token shards (executor local/slurm), whose reader drops it."
        },
    )
    validation_fraction: float = field(
        default=0.01, metadata={"help": "Share of documents held out, chosen by a hash of each document id."}
    )
    mixture: dict[str, float] | None = field(
        default=None,
        metadata={"help": "Recipe only: source tag -> weight (token multiplier); default: stats.json's, else 1.0."},
    )
    seed: int = field(default=42, metadata={"help": "Seed of the document order and of down-sampling."})
    num_proc: int | None = field(
        default=None, metadata={"help": "Worker processes, or local tasks run at once (default: all CPU cores)."}
    )
    allocator: Literal["auto", "mimalloc", "jemalloc", "system"] = field(
        default="auto",
        metadata={
            "help": "C allocator of the encoding processes (preloaded; the tokens are the same): auto is mimalloc, "
            "else jemalloc where installed, else the system's; the Rust encoder ran 1.3-1.6x faster with either."
        },
    )
    max_shard_size: str = field(default="500MB", metadata={"help": "Shard size of the saved packed dataset."})

    decontaminate: Literal["none", "report", "remove"] = field(
        default="none", metadata={"help": "Benchmark n-gram check: none, report the documents, or remove them."}
    )
    benchmarks: list[str] = field(
        default_factory=lambda: list(DEFAULT_BENCHMARKS), metadata={"help": "Benchmarks to decontaminate against."}
    )
    benchmarks_dir: str | None = field(
        default=None, metadata={"help": "Local mirror of the benchmarks in Hub layout (default: the Hub)."}
    )
    ngram_size: int = field(default=13, metadata={"help": "Words per n-gram (GPT-3 used 13)."})
    min_item_words: int = field(
        default=8, metadata={"help": "Benchmark items shorter than ngram_size but this long are matched whole."}
    )

    def __post_init__(self) -> None:
        # Checks on values alone; parse_recipe turns these ValueErrors into one-line RecipeErrors.
        sharded = self.executor != "datasets"
        if self.last_block is None:
            self.last_block = "drop" if sharded else "pad"
        if sharded and self.last_block == "pad":
            raise ValueError(f"key 'last_block': token shards (executor {self.executor}) drop the tail; set drop")
        if sharded and self.mixture is not None:
            raise ValueError(
                f"key 'mixture': token shards (executor {self.executor}) are mixed at load time; "
                "give data_mixture in the pretraining recipe instead"
            )
        if self.tasks < 1:
            raise ValueError(f"key 'tasks' must be at least 1, got {self.tasks}")
        if self.executor == "slurm" and not self.slurm_partition:
            raise ValueError("key 'slurm_partition': the slurm executor needs a partition")
        specials = self.special_tokens()
        if self.tokenizer is None and self.vocab_size < BYTE_ALPHABET_SIZE + len(specials):
            raise ValueError(
                f"key 'vocab_size' is {self.vocab_size}, smaller than the byte alphabet ({BYTE_ALPHABET_SIZE}) plus "
                f"{len(specials)} special tokens; use at least {BYTE_ALPHABET_SIZE + len(specials)}"
            )
        if len(set(specials)) != len(specials):
            raise ValueError(f"the special tokens must differ from each other, got {specials}")
        if self.block_size < 1:
            raise ValueError(f"key 'block_size' must be a positive integer, got {self.block_size}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"key 'validation_fraction' must be in [0, 1), got {self.validation_fraction}")
        for tag, weight in (self.mixture or {}).items():
            if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
                raise ValueError(f"key 'mixture': weight of {tag!r} must be a number >= 0, got {weight!r}")
        if self.min_item_words > self.ngram_size:
            raise ValueError(f"key 'min_item_words' ({self.min_item_words}) exceeds 'ngram_size' ({self.ngram_size})")

    def special_tokens(self) -> list[str]:
        return [self.bos_token, self.eos_token, self.pad_token, self.unk_token]

    def workers(self) -> int:
        return self.num_proc or os.cpu_count() or 1


def check_paths(args: TokenizeArguments) -> None:
    """Checks that need the file system, run before any long work: each failure is one `RecipeError`."""
    if not Path(args.corpus).exists():
        raise RecipeError(f"key 'corpus': {args.corpus} does not exist (expected a curated folder or a text file)")
    positions = args.max_position_embeddings
    if args.model_config is not None:
        positions = read_max_positions(Path(args.model_config))
    if positions is not None and args.block_size > positions:
        raise RecipeError(
            f"key 'block_size' is {args.block_size}, larger than the model's max_position_embeddings ({positions})"
        )
    if args.decontaminate != "none" and args.benchmarks_dir is not None and not Path(args.benchmarks_dir).is_dir():
        raise RecipeError(f"key 'benchmarks_dir': {args.benchmarks_dir} is not a folder")
    if args.chat_template is not None and args.chat_template.endswith(".jinja"):
        if not Path(args.chat_template).is_file():
            raise RecipeError(f"key 'chat_template': {args.chat_template} not found")


def read_max_positions(path: Path) -> int:
    """`max_position_embeddings` from a model folder or its config.json (plain JSON: no model code needed)."""
    config_file = path / "config.json" if path.is_dir() else path
    if not config_file.is_file():
        raise RecipeError(f"key 'model_config': {path} has no config.json")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if not isinstance(config.get("max_position_embeddings"), int):
        raise RecipeError(f"key 'model_config': {config_file} has no integer 'max_position_embeddings'")
    return config["max_position_embeddings"]
