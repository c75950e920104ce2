"""`run_evaluation`: every evaluation a recipe asks for, on one loaded model, into one output folder."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hfscratch.core.artifacts import ArtifactError
from hfscratch.core.recipes import RecipeError
from hfscratch.evaluation.arguments import EvaluateArguments, check_paths
from hfscratch.evaluation.budget import MARGIN, Part, ScoringBudget, model_probe
from hfscratch.evaluation.report import model_index_yaml, plot_scores, render_report
from hfscratch.evaluation.scores import HumanScore, Scores, now


def _write(path: Path, text: str) -> None:
    """Write via a temporary name, so a file present is a file complete."""
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def model_name(path: str) -> str:
    return Path(path).resolve().name


def run_evaluation(args: EvaluateArguments, deadline: float | None = None) -> Scores:
    """Run what `args` asks for and add it to the output folder's record; returns the whole record.

    The folder gets results.json (lm-eval's own, merged per task with earlier runs), report.md, scores.png,
    model-index.yaml and, last, scores.json: all of them show every task recorded for the model so far.
    With `args.minutes`, or `deadline` (a `time.monotonic()` value: the quickstart's), the scoring fits the time
    (`budget.py`): the domain benchmark and the lm-eval tasks first, perplexity last, scoring documents until the
    deadline.
    """
    from hfscratch.evaluation import harness
    from hfscratch.evaluation.tasks import quiet_lm_eval
    from hfscratch.models.loading import weights_fingerprint

    if deadline is None and args.minutes is not None:
        deadline = time.monotonic() + args.minutes * 60
    check_paths(args)
    if not args.runs_anything():
        raise RecipeError(
            "nothing to evaluate: give a preset (--preset zero-shot), --tasks, --perplexity_data, --domain_data, "
            "--open_ended, --human_sheet or --human_scores"
        )
    out = args.evaluation_dir
    try:  # a record that does not parse stops the run now, not after an hour of scoring
        earlier = Scores.read_or_none(out)
    except ArtifactError as exc:
        raise RecipeError(f"{exc}; move it away (or give another --output_dir) to start a new record") from None
    earlier_results = read_results(out / "results.json")
    quiet_lm_eval()
    run = Scores(
        model=model_name(args.model_name_or_path), weights_fingerprint=weights_fingerprint(args.model_name_or_path)
    )
    pairs = harness.requested_tasks(args.preset, args.tasks, args.num_fewshot)
    needs_model = bool(pairs or args.domain_data or args.perplexity_data or args.open_ended or args.human_sheet)
    lm = None
    if needs_model:
        lm = harness.make_lm(args.model_name_or_path, args.batch_size, args.max_batch_size, args.device, args.dtype)
    out.mkdir(parents=True, exist_ok=True)

    jobs = [
        *([domain_job(lm, args, out / "domain", run)] if args.domain_data else []),
        *benchmark_jobs(lm, args, pairs, out, run, timed=deadline is not None),
        *([perplexity_job(lm, args, run)] if args.perplexity_data else []),
    ]
    budget = None
    if deadline is not None and jobs:
        budget = ScoringBudget.probed(deadline, model_probe(lm.model, rows=harness.CPU_BATCH_SIZE, length=128))
    results: dict = {}
    for number, job in enumerate(jobs):
        items = job.part.items
        if budget and not job.until_deadline:
            margin = MARGIN if any(later.until_deadline for later in jobs[number + 1 :]) else 1.0
            items = budget.items(job.part, [j.part for j in jobs[number:]], margin)
            if items < job.part.items:
                print(
                    f"[evaluate] {job.part.name}: {items:,} of {job.part.items:,} items fit the time left", flush=True
                )
        began = time.monotonic()
        results = harness.merge_results(results, job.run(items, budget.deadline if budget else None))
        if budget:
            budget.observe(job.part, items, time.monotonic() - began)
    if args.preset and harness.PRESETS[args.preset].average:
        preset_tasks = [name for name, _ in harness.PRESETS[args.preset].tasks]
        run.averages[args.preset] = harness.average(args.preset, [run.tasks[name] for name in preset_tasks])

    if args.open_ended or args.human_sheet:
        run_generation(lm, args, out, run)

    if args.human_scores:
        from hfscratch.evaluation.human import aggregate
        from hfscratch.evaluation.human import read_scores as read_ratings

        human = aggregate(read_ratings(args.human_scores))
        if human["exact_agreement"] is not None:
            human["exact_agreement"] *= 100.0  # percent, as every score in scores.json
        run.human = HumanScore(**human, date=now())

    same_weights = earlier is not None and earlier.weights_fingerprint == run.weights_fingerprint
    scores = run.merged_into(earlier)
    if results:
        write_results(out, results, earlier_results if same_weights else {}, args.log_samples)
    _write(out / "report.md", render_report(scores))
    png = out / ".scores.png.partial.png"
    plot_scores(scores, png)
    os.replace(png, out / "scores.png")
    _write(out / "model-index.yaml", model_index_yaml(scores, scores.model))
    scores.write(out)  # last: its presence means the record and the files beside it are complete
    return scores


def read_results(path: Path) -> dict:
    """lm-eval's results.json of earlier runs (empty when there is none)."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RecipeError(f"{path}: not valid JSON ({exc}); move it away to start a new record") from None


def write_results(out: Path, results: dict, earlier: dict, log_samples: bool) -> None:
    """results.json: this run's lm-eval results merged over the earlier runs' (the newest run of a task wins);
    with log_samples, samples.jsonl keeps the earlier runs' items of the tasks this run did not score."""
    from lm_eval.utils import handle_non_serializable

    from hfscratch.evaluation.harness import merge_results

    samples = results.pop("samples", None)
    merged = merge_results(earlier, results) if earlier else results
    _write(out / "results.json", json.dumps(merged, indent=2, default=handle_non_serializable))
    if log_samples and samples:
        kept = []
        if (out / "samples.jsonl").is_file():
            kept = [
                line
                for line in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("task") not in samples
            ]
        lines = (json.dumps({"task": t, **s}, default=handle_non_serializable) for t, ss in samples.items() for s in ss)
        _write(out / "samples.jsonl", "\n".join([*kept, *lines]) + "\n")


@dataclass
class Job:
    """One part of an evaluation: its cost (for a time budget) and how to run `items` of its items."""

    part: Part
    run: Callable[[int, float | None], dict]  # (items, deadline) -> lm-eval's results ({} if not lm-eval's)
    until_deadline: bool = False  # scores items in order until the deadline, rather than a share of them


def domain_job(lm: Any, args: EvaluateArguments, folder: Path, scores: Scores) -> Job:
    """The domain cloze benchmark on the first `items` of its items (they are in random order)."""
    from hfscratch.evaluation import harness
    from hfscratch.evaluation.documents import held_out_documents
    from hfscratch.evaluation.domain import TASK_NAME, build_items, domain_scores, write_task

    documents = held_out_documents(args.domain_data, "domain_data")
    try:
        items = build_items(
            documents,
            args.domain_context_words,
            args.domain_ending_words,
            args.domain_choices,
            args.domain_max_items,
            args.seed,
        )
    except ValueError as exc:
        raise RecipeError(f"key 'domain_data': {args.domain_data}: {exc}") from None

    def run(count: int, deadline: float | None) -> dict:
        write_task(items[:count], folder)
        results, _ = harness.run_harness(
            lm,
            [(TASK_NAME, 0)],
            extra_include=[folder],
            include_defaults=False,
            bootstrap_iters=args.bootstrap_iters,
            seed=args.seed,
        )
        score = domain_scores(results, args.domain_choices)
        scores.tasks[TASK_NAME] = replace(score, limit=count) if count < len(items) else score
        return results

    def request_tokens(item: dict) -> int:
        # each choice is scored after the context, and once more alone (lm-eval's acc_mutual_info)
        context = len(lm.tok_encode(item["ctx"]))
        endings = [len(lm.tok_encode(" " + ending)) for ending in item["endings"]]
        return sum(min(context + n, lm.max_length) + n for n in endings)

    return Job(Part("domain benchmark", len(items), float(sum(map(request_tokens, items)))), run)


def benchmark_jobs(
    lm: Any, args: EvaluateArguments, pairs: list[tuple[str, int | None]], out: Path, scores: Scores, timed: bool
) -> list[Job]:
    """One job per requested lm-eval task, each loaded once (mmlu's 57 subjects take a while to load); `timed`:
    its cost is counted (on the requests lm-eval builds for a few items) for a time budget."""
    from hfscratch.evaluation import harness

    if not pairs:
        return []
    try:
        manager, hub_ids = harness.task_manager_for(
            pairs, data_dir=Path(args.data_dir) if args.data_dir else None, overrides_dir=out / "lm_eval_tasks"
        )
        loaded = [harness.load_task(manager, name, shots) for name, shots in pairs]
    except KeyError as exc:  # lm-eval's own word for a name it does not know
        raise RecipeError(f"key 'tasks': {exc.args[0] if exc.args else exc}") from None

    def job(task: harness.LoadedTask) -> Job:
        items = task.items(args.limit)
        per_item = harness.request_tokens_per_item(task, lm, args.seed) if timed else 0.0

        def run(count: int, deadline: float | None) -> dict:
            limit = args.limit if count >= items else max(1, count // len(task.docs))
            results = harness.evaluate_tasks(
                lm, [task.task], task.shots, manager, limit=limit, bootstrap_iters=args.bootstrap_iters, seed=args.seed
            )
            (score,) = harness.task_scores(results, [(task.name, task.shots)], limit, hub_ids)
            scores.tasks[task.name] = score
            return results

        return Job(Part(task.name, items, per_item * items), run)

    return [job(task) for task in loaded]


def perplexity_job(lm: Any, args: EvaluateArguments, scores: Scores) -> Job:
    """Perplexity, last: it scores documents in order until the deadline (its share is what is left)."""
    from hfscratch.evaluation.documents import held_out_documents
    from hfscratch.evaluation.perplexity import forwarded_tokens, perplexity

    documents = held_out_documents(args.perplexity_data, "perplexity_data")
    dataset = str(args.perplexity_data)
    window, stride = args.perplexity_window, args.perplexity_stride
    costs = forwarded_tokens(lm.model, lm.tokenizer, documents, window, stride)

    def run(count: int, deadline: float | None) -> dict:
        scores.perplexity[dataset] = perplexity(
            lm.model, lm.tokenizer, documents, dataset, window, stride, deadline=deadline, costs=costs
        )
        return {}

    return Job(Part("perplexity", len(documents), float(sum(costs))), run, until_deadline=True)


def run_generation(lm: Any, args: EvaluateArguments, out: Path, scores: Scores) -> None:
    from hfscratch.evaluation import open_ended

    if args.prompts:
        prompts, source = open_ended.file_prompts(args.prompts, args.open_ended_limit), str(args.prompts)
    else:
        prompts, source = open_ended.truthfulqa_prompts(args.data_dir, args.open_ended_limit), "truthfulqa_gen"
    answers = open_ended.generate_answers(lm.model, lm.tokenizer, prompts, args.max_new_tokens)
    if args.open_ended:
        judge = open_ended.Judge(args.judge_model, args.judge_prompt, args.device) if args.judge_model else None
        scores.open_ended[source] = open_ended.open_ended_scores(prompts, answers, source, args.max_new_tokens, judge)
    if args.human_sheet:
        from hfscratch.evaluation.human import write_sheet

        rows = [
            {"id": p.id, "prompt": p.question, "reference": p.references[0] if p.references else "", "completion": a}
            for p, a in zip(prompts, answers)
        ]
        csv_path, html_path = write_sheet(rows, out, args.raters, scores.model)
        print(f"rating sheet: {csv_path} and {html_path}", file=sys.stderr)
