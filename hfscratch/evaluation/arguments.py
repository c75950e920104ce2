"""The keys of an evaluate recipe (`recipes/evaluate/*.yaml`), and the checks that run before any long work."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hfscratch.core.recipes import RecipeError
from hfscratch.models.loading import check_model_folder


@dataclass
class EvaluateArguments:
    model_name_or_path: str = field(
        metadata={"help": "The model folder to evaluate (a `hfscratch pretrain` output_dir or any causal LM folder)."}
    )
    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "Where results.json, scores.json, scores.png, model-index.yaml go (default: MODEL/evaluation)."
        },
    )

    # -- lm-eval benchmarks ----------------------------------------------------------------------------
    preset: str | None = field(
        default=None,
        metadata={"help": "leaderboard-v1 (the Open LLM Leaderboard's original settings) or zero-shot."},
    )
    tasks: list[str] = field(
        default_factory=list,
        metadata={"help": "lm-eval task or group names (arc_easy, mmlu, ...), added to the preset's."},
    )
    num_fewshot: int | None = field(
        default=None, metadata={"help": "Few-shot examples for `tasks` (default: each task's own, else 0)."}
    )
    limit: float | None = field(
        default=None, metadata={"help": "At most this many items per task (a fraction if < 1): for quick checks."}
    )
    data_dir: str | None = field(
        default=None,
        metadata={
            "help": "Local benchmark mirror in the Hub layout (e.g. ../shared/data/benchmarks); default: the Hub."
        },
    )
    batch_size: str = field(default="auto", metadata={"help": "lm-eval batch size: a number or auto."})
    max_batch_size: int = field(default=64, metadata={"help": "Upper bound of the automatic batch size."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, cuda:1, ... (default: cuda if available)."})
    dtype: str = field(default="auto", metadata={"help": "Weights dtype: auto (the config's), float32, bfloat16."})
    bootstrap_iters: int = field(
        default=100000, metadata={"help": "Bootstrap resamples for the standard errors of non-mean metrics."}
    )
    log_samples: bool = field(default=False, metadata={"help": "Also write every item's prompt and answers."})

    # -- perplexity on the user's held-out data ---------------------------------------------------------
    perplexity_data: str | None = field(
        default=None,
        metadata={"help": "A `hfscratch tokenize` folder (its validation documents) or a .txt/.jsonl file."},
    )
    perplexity_stride: int | None = field(
        default=None, metadata={"help": "Sliding-window stride in tokens (default: half the window)."}
    )
    perplexity_window: int | None = field(
        default=None, metadata={"help": "Sliding-window length in tokens (default: the model's context length)."}
    )

    # -- the domain benchmark ---------------------------------------------------------------------------
    domain_data: str | None = field(
        default=None,
        metadata={
            "help": "Held-out documents for the domain cloze benchmark: a `hfscratch tokenize` folder or a file."
        },
    )
    domain_context_words: int = field(default=48, metadata={"help": "Words of context per domain item."})
    domain_ending_words: int = field(default=16, metadata={"help": "Words of the continuation to choose."})
    domain_choices: int = field(default=4, metadata={"help": "Choices per item: the real one and distractors."})
    domain_max_items: int = field(default=1000, metadata={"help": "At most this many domain items."})

    # -- open-ended generation --------------------------------------------------------------------------
    open_ended: bool = field(
        default=False, metadata={"help": "Generate answers and score them with BLEU and ROUGE (TruthfulQA gen)."}
    )
    prompts: str | None = field(
        default=None,
        metadata={"help": "A JSONL prompt file (prompt, reference(s)) instead of TruthfulQA's generation split."},
    )
    open_ended_limit: int | None = field(default=100, metadata={"help": "At most this many prompts (null: all)."})
    max_new_tokens: int = field(default=48, metadata={"help": "Tokens generated per answer (greedy)."})
    judge_model: str | None = field(
        default=None, metadata={"help": "A second local causal LM folder that grades each answer (P(yes))."}
    )
    judge_prompt: str | None = field(
        default=None,
        metadata={"help": "The judge's grading prompt (a file or inline), with {question} {reference} {answer}."},
    )

    # -- human evaluation -------------------------------------------------------------------------------
    human_sheet: bool = field(
        default=False, metadata={"help": "Write a rating sheet (CSV + HTML) of the model's answers to `prompts`."}
    )
    raters: int = field(default=1, metadata={"help": "Rows per answer in the sheet, one for each rater."})
    human_scores: list[str] = field(
        default_factory=list, metadata={"help": "Filled rating sheets (CSV) to aggregate: mean, CI, agreement."}
    )

    seed: int = field(default=1234, metadata={"help": "Seed of few-shot sampling, the domain items and generation."})
    minutes: float | None = field(
        default=None,
        metadata={
            "help": "Time budget: the domain benchmark, the lm-eval tasks and perplexity each score the same share "
            "of their items, as many as fit (the record says how many); open-ended generation is not bounded."
        },
    )

    def __post_init__(self) -> None:
        if self.preset is not None and self.preset not in PRESET_NAMES:
            raise ValueError(f"key 'preset' must be one of {', '.join(PRESET_NAMES)}, got {self.preset!r}")
        if self.batch_size != "auto" and not self.batch_size.isdigit():
            raise ValueError(f"key 'batch_size' must be a positive integer or 'auto', got {self.batch_size!r}")
        if self.limit is not None and self.limit <= 0:
            raise ValueError(f"key 'limit' must be positive, got {self.limit}")
        if self.limit is not None and self.limit >= 1:
            if not float(self.limit).is_integer():
                raise ValueError(f"key 'limit' must be a whole number of items or a fraction below 1, got {self.limit}")
            self.limit = int(self.limit)  # items per task, as lm-eval's --limit 100 means it
        if self.domain_choices < 2:
            raise ValueError(f"key 'domain_choices' must be at least 2, got {self.domain_choices}")
        if self.domain_context_words < 1 or self.domain_ending_words < 1:
            raise ValueError("keys 'domain_context_words' and 'domain_ending_words' must be positive")
        if self.minutes is not None and self.minutes <= 0:
            raise ValueError(f"key 'minutes' must be positive, got {self.minutes}")
        if self.raters < 1:
            raise ValueError(f"key 'raters' must be at least 1, got {self.raters}")

    @property
    def evaluation_dir(self) -> Path:
        return Path(self.output_dir) if self.output_dir else Path(self.model_name_or_path) / "evaluation"

    def runs_anything(self) -> bool:
        return bool(
            self.preset
            or self.tasks
            or self.perplexity_data
            or self.domain_data
            or self.open_ended
            or self.human_sheet
            or self.human_scores
        )


PRESET_NAMES = ("leaderboard-v1", "zero-shot")


def check_paths(args: EvaluateArguments) -> None:
    check_model_folder(args.model_name_or_path)  # every step's checks: config, causal LM, weights, tokenizer
    for key in ("data_dir", "perplexity_data", "domain_data", "prompts", "judge_model"):
        value = getattr(args, key)
        if value is not None and not Path(value).exists():
            raise RecipeError(f"key '{key}': {value} does not exist")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise RecipeError(f"key 'data_dir': {args.data_dir} is not a folder (expected a mirror in the Hub layout)")
    if args.judge_model is not None:
        check_model_folder(args.judge_model)
    for sheet in args.human_scores:
        if not Path(sheet).is_file():
            raise RecipeError(f"key 'human_scores': {sheet} not found (expected a filled rating sheet CSV)")
