"""The main job: `hfscratch quickstart` runs every step of the kit end to end, in minutes on a laptop.

    plan -> curate -> tokenize -> pretrain -> samples -> evaluate -> model card -> report.md

Each step runs the same recipe its own command would (named in recipes/quickstart.yaml, so a user knows which
file to change to do it for real), writes into its own folder of the run folder, and is skipped when the file
it writes last already exists: a rerun after an interruption picks up where it stopped (pretraining resumes from
its last checkpoint), and `--fresh` starts over.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from hfscratch.core.artifacts import Artifact, ArtifactError, read_json_object, write_json_atomic
from hfscratch.core.recipes import RecipeError, parse_recipe, read_recipe
from hfscratch.plan import GPUName, PlanArguments, format_table, make_plan, render_plan

EVAL_DATA_ENV = "HFSCRATCH_EVAL_DATA"
SAMPLE_PROMPTS = ("The Python standard library", "To install the package, run", "This module provides")


@dataclass
class QuickstartArguments:
    out: str = field(default="runs/quickstart", metadata={"help": "Run folder for every step's output."})
    target_params: str = field(default="1B", metadata={"help": "Size of the model you would train for real."})
    target_gpu: GPUName = field(default="H100", metadata={"help": "GPU of the real run, for the plan."})
    eval_data: str | None = field(
        default=None,
        metadata={
            "help": f"Local benchmark mirror (Hub layout, like ../shared/data/benchmarks) for decontamination and "
            f"ARC/HellaSwag/MMLU/TruthfulQA; default ${EVAL_DATA_ENV}, else the Hub when reachable, else skipped."
        },
    )
    minutes: float = field(
        default=10.0,
        metadata={
            "help": "Wall-clock budget of the whole run: the steps after pretraining are reserved, and pretraining "
            "lays its learning-rate schedule over the time left (it ends early, its decay completed, to keep it)."
        },
    )
    fresh: bool = field(default=False, metadata={"help": "Delete the run folder and start over."})
    # The recipes each step runs: change these (or the files) to do it for real.
    curate_recipe: str = field(default="curate/python-docs")
    tokenize_recipe: str = field(default="tokenize/python-docs")
    pretrain_recipe: str = field(default="pretrain/tiny-cpu")
    evaluate_recipe: str = field(default="evaluate/quickstart")
    train_tokens: int | None = field(
        default=None,
        metadata={
            "help": "Pretraining tokens (the run may then end early); default: as many as the time budget allows, "
            "up to max_epochs passes over the packed data."
        },
    )
    max_epochs: float = field(
        default=4.0, metadata={"help": "The most passes over the packed data that time-bound pretraining makes."}
    )
    pretrain_args: str | None = field(
        default=None, metadata={"help": 'More pretrain keys, as one string: "--save_steps 8 --eval_steps 8".'}
    )
    eval_limit: int | None = field(
        default=None, metadata={"help": "Items per benchmark task, instead of the evaluate recipe's limit."}
    )

    def __post_init__(self) -> None:
        if self.minutes <= 0:
            raise ValueError(f"minutes must be positive, got {self.minutes}")
        if self.max_epochs <= 0:
            raise ValueError(f"max_epochs must be positive, got {self.max_epochs}")
        self.eval_data = self.eval_data or os.environ.get(EVAL_DATA_ENV) or None


def process_started() -> float:
    """When this process started, as a `time.monotonic()` value: the budget covers the imports too (seconds on a
    loaded machine). Now, where the process start cannot be read (not Linux)."""
    try:
        since_boot = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        return time.monotonic() - (time.clock_gettime(time.CLOCK_BOOTTIME) - since_boot)
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic()


@dataclass
class StepResult:
    name: str
    seconds: float
    summary: str
    reused: bool = False


@dataclass
class Quickstart:
    """One run: where it writes, when it started (for the time budget), what each step reported."""

    args: QuickstartArguments
    out: Path
    started: float = field(default_factory=lambda: process_started())
    results: list[StepResult] = field(default_factory=list)

    @property
    def tokenized(self) -> Path:
        return self.out / "tokenize"

    @property
    def model_dir(self) -> Path:
        return self.out / "pretrain"

    def step(
        self,
        name: str,
        done: Path,
        run: Callable[[], str],
        complete: Callable[[Path], bool] = Path.exists,
        settings: dict[str, Any] | None = None,
    ) -> StepResult:
        """Run a step unless `done` (the file it writes last) is `complete`; either way say what it produced.

        `settings` are what the step's output depends on (its recipe's values, the options that reach it). They
        are recorded in the run folder's quickstart.json when the step finishes, and a complete step is reused
        only with the same settings: with others it stops the run with a line naming the first that differs
        (reusing it would present output made one way as made another; redoing it would discard it).
        """
        settings = json.loads(json.dumps(settings or {}, default=str))  # as they read back from the file
        if complete(done):
            check_same_settings(name, done, self.recorded_settings().get(name, settings), settings)
            print(f"\n[{name}] already complete ({done}), reused", flush=True)
            result = StepResult(name, 0.0, f"reused {done.parent}", reused=True)
        else:
            print(f"\n[{name}] running", flush=True)
            start = time.monotonic()
            summary = run()
            result = StepResult(name, time.monotonic() - start, summary)
            print(f"[{name}] done in {result.seconds:.1f} s: {summary}", flush=True)
        write_json_atomic(self.out / SETTINGS_FILE, self.recorded_settings() | {name: settings})
        self.results.append(result)
        return result

    def recorded_settings(self) -> dict[str, Any]:
        path = self.out / SETTINGS_FILE
        return read_json_object(path) if path.is_file() else {}

    @property
    def deadline(self) -> float:
        """When the whole run must end (`time.monotonic()`)."""
        return self.started + self.args.minutes * 60


SETTINGS_FILE = "quickstart.json"  # each finished step's settings


def check_same_settings(step: str, done: Path, recorded: dict[str, Any], asked: dict[str, Any]) -> None:
    """Raise `RecipeError` naming the first setting that differs between a finished step and this run."""
    for key in sorted(set(recorded) | set(asked)):
        if recorded.get(key) != asked.get(key):
            old, new = recorded.get(key), asked.get(key)
            if isinstance(old, dict) and isinstance(new, dict):  # a recipe: name the recipe key
                inner = next(k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))
                key, old, new = f"{key}: {inner}", old.get(inner), new.get(inner)
            raise RecipeError(
                f"[{step}] {done.parent} was made with {key} = {old!r}, this run asks for {new!r}: rerun with "
                "--fresh to redo the run, or give another --out"
            )


def recipe_settings(name: str, *kinds: type) -> dict[str, Any]:
    """A recipe's values that differ from its dataclasses' defaults: a key written out with its default value
    is the same setting as the key left out."""
    defaults = {f.name: f.default for kind in kinds for f in fields(kind) if f.default is not MISSING}
    return {k: v for k, v in read_recipe(name, *kinds).items() if k not in defaults or defaults[k] != v}


# -- The steps --------------------------------------------------------------------------------------------


def curate(run: Quickstart) -> str:
    from hfscratch.curation.pipeline import CurateArguments, run_curation

    recipe = read_recipe(run.args.curate_recipe, CurateArguments)
    stats = run_curation(CurateArguments(**(recipe | {"output_dir": str(run.out / "curate")})))
    kept = sum(s["documents_kept"] for s in stats["sources"].values())
    read = sum(s["documents_read"] for s in stats["sources"].values())
    return f"{kept:,} of {read:,} documents kept"


def tokenize(run: Quickstart) -> str:
    from hfscratch.tokenization.arguments import TokenizeArguments
    from hfscratch.tokenization.pipeline import run_tokenize

    recipe = read_recipe(run.args.tokenize_recipe, TokenizeArguments)
    recipe |= {"corpus": str(run.out / "curate"), "out": str(run.tokenized), "benchmarks_dir": run.args.eval_data}
    if not run.args.eval_data:
        recipe["decontaminate"] = "none"
        print(f"[tokenize] benchmark decontamination skipped: give --eval_data DIR (or ${EVAL_DATA_ENV}) to enable it")
    stats = run_tokenize(TokenizeArguments(**recipe))
    return (
        f"{stats.train['tokens']:,} training tokens in {stats.train['blocks']:,} blocks, "
        f"{stats.validation['tokens']:,} validation tokens"
    )


# What the steps after pretraining cost, in validation blocks (pretraining measures how long one takes to score, at
# the machine's current load): evaluation scores the held-out tokens about 6 times over (perplexity in windows
# that overlap by half, the domain benchmark's 4 choices per passage), a benchmark item about 1.5 blocks (4
# choices of ~100 tokens); loading lm-eval and the model, the card, the samples and the report take about as long
# as scoring 400 blocks. Measured on the CI machine (2 cores), quiet and loaded: see the README's quickstart.
EVALUATION_PASSES = 6.0
BLOCKS_PER_BENCHMARK_ITEM = 1.5
FIXED_BLOCKS = 400.0
MMLU_SUBJECTS = 57  # lm-eval's mmlu group: `limit` items from each
BEFORE_FIRST_VALIDATION_S = 60.0  # the estimate until pretraining's first validation has been timed
EVALUATION_SHARE = 0.25  # at most this share of the time left after the data steps is kept for the steps after
AFTER_EVALUATION_S = 2.0  # the model card and the report (the samples come before evaluation, which runs to the end)


def after_pretraining_estimate(run: Quickstart) -> Callable[[float | None], float]:
    """Seconds the steps after pretraining will take (evaluate, model card, samples, report), as a function of the
    seconds one validation block takes to score: what the pretraining's time budget keeps free.

    On a loaded machine a full evaluation would take most of the budget; it is capped at `EVALUATION_SHARE` of the
    time left now, and evaluation then scores the share of its items that fits (`evaluation/budget.py`)."""
    from hfscratch.tokenization.artifacts import TokenizeStats

    held_out = TokenizeStats.read(run.tokenized).validation["blocks"]
    blocks = FIXED_BLOCKS + EVALUATION_PASSES * held_out + BLOCKS_PER_BENCHMARK_ITEM * benchmark_items(run)
    cap = EVALUATION_SHARE * max(0.0, run.deadline - time.monotonic())
    return lambda seconds_per_block: min(
        cap, BEFORE_FIRST_VALIDATION_S if seconds_per_block is None else blocks * seconds_per_block
    )


def benchmark_items(run: Quickstart) -> int:
    """Items the evaluate step will score on the standard benchmarks (0 when it skips them)."""
    from hfscratch.evaluation import EvaluateArguments
    from hfscratch.evaluation.harness import PRESETS

    recipe = read_recipe(run.args.evaluate_recipe, EvaluateArguments)
    if not benchmarks_reachable(run):
        return 0
    tasks = [name for name, _ in PRESETS[recipe["preset"]].tasks] if recipe.get("preset") else []
    tasks += recipe.get("tasks", [])
    limit = run.args.eval_limit if run.args.eval_limit is not None else recipe.get("limit") or 100
    return int(limit * sum(MMLU_SUBJECTS if task == "mmlu" else 1 for task in tasks))


def benchmarks_reachable(run: Quickstart) -> bool:
    return bool(run.args.eval_data) or hub_reachable()


def finished(kind: type[Artifact]) -> Callable[[Path], bool]:
    """A step is complete when its artifact (`kind`, written last) reads back through its dataclass."""

    def complete(path: Path) -> bool:
        try:
            return kind.read_or_none(path.parent) is not None
        except ArtifactError as exc:
            raise RecipeError(f"{exc}; rerun with --fresh") from None

    return complete


def pretrain(run: Quickstart) -> str:
    import torch

    from hfscratch.tokenization.artifacts import TokenizeStats
    from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments
    from hfscratch.training.budget import TimeBudget
    from hfscratch.training.run_log import library_messages_to

    argv = [run.args.pretrain_recipe, "--data_dir", str(run.tokenized), "--output_dir", str(run.model_dir)]
    # Time-bound by default: the budget sets how much is trained, up to max_epochs passes over the data.
    train_tokens = run.args.train_tokens or int(run.args.max_epochs * TokenizeStats.read(run.tokenized).train["tokens"])
    argv += ["--train_tokens", str(train_tokens)]
    argv += shlex.split(run.args.pretrain_args or "")
    if torch.cuda.is_available():  # the CPU recipe, on the GPU when there is one
        argv += ["--use_cpu", "false", "--bf16", str(torch.cuda.is_bf16_supported()).lower()]
    model_args, data_args, args = parse_recipe(
        [ModelArguments, DataArguments, PretrainingArguments], argv, prog="hfscratch quickstart (pretrain)"
    )
    library_messages_to(run.model_dir / "pretrain.log")
    from hfscratch.training.pretrain import build_trainer, train

    budget = TimeBudget(run.deadline, closing=after_pretraining_estimate(run))
    trainer = build_trainer(model_args, data_args, args, callbacks=[budget])
    if train(trainer, data_args.data_dir) != 0:
        raise RecipeError(f"pretraining stopped by the stability guard; see {run.model_dir}")
    losses = [row["eval_loss"] for row in trainer.state.log_history if "eval_loss" in row]
    cut = f" (of {trainer.state.max_steps}: the {run.args.minutes:g}-minute budget)" if budget.cut_short else ""
    curve = f"validation loss {losses[0]:.2f} -> {losses[-1]:.2f} nats/token" if losses else "no validation loss"
    kept = budget.closing(budget.seconds_per_block)
    return (
        f"{trainer.state.global_step} steps, {trainer.state.num_input_tokens_seen:,} tokens{cut}; {curve}; "
        f"{kept:.0f} s kept for the steps after it; {run.model_dir / 'loss_curve.png'}"
    )


def evaluate(run: Quickstart) -> str:
    from hfscratch.evaluation import EvaluateArguments, run_evaluation
    from hfscratch.evaluation.report import render_table, summary

    recipe = read_recipe(run.args.evaluate_recipe, EvaluateArguments)
    recipe |= {"model_name_or_path": str(run.model_dir), "data_dir": run.args.eval_data}
    recipe |= {"perplexity_data": str(run.tokenized), "domain_data": str(run.tokenized), "output_dir": None}
    if run.args.eval_limit is not None:
        recipe["limit"] = run.args.eval_limit
    if not benchmarks_reachable(run):
        recipe |= {"preset": None, "tasks": []}
        print(
            f"[evaluate] ARC/HellaSwag/MMLU/TruthfulQA skipped: the Hub is not reachable; give --eval_data DIR "
            f"(a local mirror in Hub layout, like ../shared/data/benchmarks) or set ${EVAL_DATA_ENV} to run them"
        )
    # Scores as many items as fit the time left, less what the card and the report take.
    scores = run_evaluation(EvaluateArguments(**recipe), deadline=run.deadline - AFTER_EVALUATION_S)
    print(render_table(scores))
    return summary(scores)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether stock lm-eval could read the benchmarks from the Hub (never tried when offline is set)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    import urllib.request

    try:
        urllib.request.urlopen(f"{constants.ENDPOINT}/api/datasets/allenai/ai2_arc", timeout=timeout)
    except OSError:
        return False
    return True


def model_card(run: Quickstart) -> str:
    from hfscratch.hub import write_model_card

    return f"{write_model_card(run.model_dir)}"


def samples(run: Quickstart) -> str:
    from hfscratch.prompting.generation import (
        SamplingOptions,
        as_document_start,
        generate_text,
        load_model_and_tokenizer,
    )

    model, tokenizer = load_model_and_tokenizer(run.model_dir)
    options = SamplingOptions(max_new_tokens=48, temperature=0.8, top_p=0.95, seed=0)
    lines = ["# Samples", "", f"Sampled from `{run.model_dir}` (temperature 0.8, top-p 0.95, seed 0).", ""]
    for prompt in SAMPLE_PROMPTS:
        text = generate_text(model, tokenizer, as_document_start(tokenizer, prompt), options)
        print(f"  {prompt!r} -> {text!r}")
        lines += [f"**{prompt}**{text}", ""]
    (run.out / "samples.md").write_text("\n".join(lines))
    return f"{len(SAMPLE_PROMPTS)} samples in {run.out / 'samples.md'}"


# -- The run and its report -------------------------------------------------------------------------------


def quickstart_model_plan(run: Quickstart) -> dict:
    """Step 0 for the quickstart's own model: the pretrain recipe's model with the tokenize recipe's vocabulary
    and block length (the recipe alone cannot know them: pretraining takes both from the tokenizer), counted
    exactly on the meta device, trained on the recipe's tokens."""
    from hfscratch.models.hfscratch import HFScratchConfig
    from hfscratch.plan import model_size_from_config
    from hfscratch.tokenization.arguments import TokenizeArguments
    from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments

    tokenize = read_recipe(run.args.tokenize_recipe, TokenizeArguments)
    pretrain = read_recipe(run.args.pretrain_recipe, ModelArguments, DataArguments, PretrainingArguments)
    model = ModelArguments(
        **{k: pretrain[k] for k in ("model_preset", "model_size", "config_overrides") if k in pretrain}
    )
    block = tokenize.get("block_size", 256)
    config = HFScratchConfig.from_preset(
        model.model_preset,
        size=model.model_size,
        **{"vocab_size": tokenize.get("vocab_size"), "max_position_embeddings": block, **model.overrides()},
    )
    size = model_size_from_config(config, block, "counted exactly")
    tokens = run.args.train_tokens or pretrain.get("train_tokens") or size.params * 20
    return make_plan(PlanArguments(params=str(size.params), tokens=str(tokens), gpu=run.args.target_gpu))


def plan_both(run: Quickstart) -> str:
    """Step 0 twice: what the quickstart's model costs, and what the user's target model would."""
    ours = quickstart_model_plan(run)
    target = make_plan(PlanArguments(params=run.args.target_params, gpu=run.args.target_gpu))
    (run.out / "plan.json").write_text(json.dumps({"quickstart": ours, "target": target}, indent=2))
    print(render_plan(target))
    return (
        f"quickstart model {ours['params']:,.0f} parameters, {ours['tokens']:,.0f} tokens; target "
        f"{run.args.target_params}: {target['tokens']:.3g} tokens, {target['flops']:.3g} FLOPs"
    )


def write_report(run: Quickstart) -> Path:
    plan = json.loads((run.out / "plan.json").read_text())
    lines = [
        "# hfscratch quickstart",
        "",
        f"Run folder `{run.out}`, total {time.monotonic() - run.started:.0f} s.",
        "",
    ]
    lines += [
        "```",
        format_table(
            [(r.name, "reused" if r.reused else f"{r.seconds:.1f}", r.summary) for r in run.results],
            ["step", "seconds", "result"],
            align="lrl",
        ),
        "```",
        "",
        f"## Step 0: plan for {run.args.target_params} parameters",
        "",
        "```",
        render_plan(plan["target"]),
        "```",
        "",
        f"The quickstart's own model: {plan['quickstart']['params']:,.0f} parameters, "
        f"{plan['quickstart']['tokens']:,.0f} tokens, {plan['quickstart']['flops']:.3g} FLOPs.",
        "",
    ]
    summaries = {r.name: r.summary for r in run.results}
    sections = [  # step, title, its own markdown report (title dropped), its plot
        ("curate", "Step 1a: curation", run.out / "curate" / "report.md", run.out / "curate" / "funnel.png"),
        ("tokenize", "Step 1b: tokenizer and packed data", None, run.tokenized / "doc_lengths.png"),
        ("pretrain", "Step 3: pretraining", None, run.model_dir / "loss_curve.png"),
        (
            "evaluate",
            "Step 4: evaluation",
            run.model_dir / "evaluation" / "report.md",
            run.model_dir / "evaluation" / "scores.png",
        ),
        ("model card", "Model card", None, None),
    ]
    for step, title, text, image in sections:
        lines += [f"## {title}", "", summaries.get(step, "not run"), ""]
        if text is not None and text.exists():
            lines += [text.read_text().split("\n", 1)[-1].strip(), ""]
        if image is not None and image.exists():
            lines += [f"![{title}]({image.relative_to(run.out)})", ""]
    if (run.out / "samples.md").exists():
        lines += ["## Samples", "", (run.out / "samples.md").read_text().split("\n", 1)[-1].strip(), ""]
    lines += ["## Next", "", "```", *next_commands(run), "```", ""]
    path = run.out / "report.md"
    path.write_text("\n".join(lines))
    return path


def next_commands(run: Quickstart) -> list[str]:
    return [
        f"hfscratch generate {run.model_dir} --prompt 'The Python standard library'",
        f"hfscratch push {run.model_dir} --repo_id YOUR_ORG/python-docs-tiny --dry_run",
        f"hfscratch finetune recipes/finetune/tiny-cpu-lora.yaml --model_name_or_path {run.model_dir}",
        "hfscratch plan --pretrain_recipe recipes/pretrain/1b.yaml",
        "accelerate launch --config_file recipes/accelerate/zero2.yaml -m hfscratch.training.pretrain "
        "recipes/pretrain/125m.yaml",
    ]


def run_quickstart(args: QuickstartArguments) -> Path:
    """Run every step (reusing complete ones) and write report.md; return the run folder."""
    out = Path(args.out).resolve()  # every step records absolute paths: the lineage survives a `cd`
    if args.fresh:
        shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    run = Quickstart(args, out)
    run.step("plan", out / "plan.json", lambda: plan_both(run), complete=lambda _: False)  # cheap: always redone
    from hfscratch.curation.artifacts import CurationStats
    from hfscratch.curation.pipeline import CurateArguments
    from hfscratch.evaluation import EvaluateArguments
    from hfscratch.evaluation.scores import Scores
    from hfscratch.tokenization.arguments import TokenizeArguments
    from hfscratch.tokenization.artifacts import TokenizeStats
    from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments
    from hfscratch.training.run_info import RunInfo

    curate_settings = {"curate_recipe": recipe_settings(args.curate_recipe, CurateArguments)}
    tokenize_settings = curate_settings | {
        "tokenize_recipe": recipe_settings(args.tokenize_recipe, TokenizeArguments),
        "eval_data": args.eval_data,
    }
    pretrain_settings = tokenize_settings | {
        "pretrain_recipe": recipe_settings(args.pretrain_recipe, ModelArguments, DataArguments, PretrainingArguments),
        "train_tokens": args.train_tokens,
        "max_epochs": args.max_epochs,
        "pretrain_args": args.pretrain_args,
    }
    evaluate_settings = pretrain_settings | {
        "evaluate_recipe": recipe_settings(args.evaluate_recipe, EvaluateArguments),
        "eval_limit": args.eval_limit,
    }
    run.step("curate", out / "curate" / "stats.json", lambda: curate(run), finished(CurationStats), curate_settings)
    run.step(
        "tokenize", run.tokenized / "stats.json", lambda: tokenize(run), finished(TokenizeStats), tokenize_settings
    )
    run.step("pretrain", run.model_dir / "run_info.json", lambda: pretrain(run), finished(RunInfo), pretrain_settings)
    # The samples before the evaluation: the evaluation fits the time left, and so absorbs how long they took.
    run.step("samples", out / "samples.md", lambda: samples(run))
    run.step(
        "evaluate",
        run.model_dir / "evaluation" / "scores.json",
        lambda: evaluate(run),
        finished(Scores),
        evaluate_settings,
    )
    run.step("model card", run.model_dir / "README.md", lambda: model_card(run))
    report = write_report(run)
    print(f"\nDone in {time.monotonic() - run.started:.0f} s. Report: {report}\nNext:")
    print("\n".join(f"  {command}" for command in next_commands(run)))
    return out


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0].startswith("-"):
        argv = ["quickstart", *argv]  # the shipped recipes/quickstart.yaml
    (args,) = parse_recipe(
        [QuickstartArguments],
        argv,
        prog="hfscratch quickstart",
        description="The main job: every step of the kit, end to end, in minutes on a laptop.",
    )
    run_quickstart(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
