"""`run_evaluation`: every evaluation a recipe asks for, on one loaded model, into one output folder."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from hfscratch.evaluation.arguments import EvaluateArguments, check_paths
from hfscratch.core.recipes import RecipeError


def _write(path: Path, text: str) -> None:
    """Write via a temporary name, so a file present is a file complete."""
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def model_name(path: str) -> str:
    return Path(path).resolve().name


def run_evaluation(args: EvaluateArguments) -> dict:
    """Run what `args` asks for; write results.json, scores.json, scores.png and model-index.yaml into the
    output folder and return the scores (the dict written to scores.json)."""
    from hfscratch.evaluation import harness, report
    from hfscratch.evaluation.tasks import quiet_lm_eval

    check_paths(args)
    if not args.runs_anything():
        raise RecipeError(
            "nothing to evaluate: give a preset (--preset zero-shot), --tasks, --perplexity_data, --domain_data, "
            "--open_ended, --human_sheet or --human_scores"
        )
    quiet_lm_eval()
    out = args.evaluation_dir
    out.mkdir(parents=True, exist_ok=True)
    scores: dict[str, Any] = {"model": model_name(args.model_name_or_path), "results": []}
    pairs = harness.requested_tasks(args.preset, args.tasks, args.num_fewshot)
    needs_model = bool(pairs or args.domain_data or args.perplexity_data or args.open_ended or args.human_sheet)
    lm = None
    if needs_model:
        lm = harness.make_lm(args.model_name_or_path, args.batch_size, args.max_batch_size, args.device, args.dtype)
    results: dict = {}

    if pairs:
        try:
            results, hub_ids = harness.run_harness(
                lm,
                pairs,
                limit=args.limit,
                data_dir=Path(args.data_dir) if args.data_dir else None,
                overrides_dir=out / "lm_eval_tasks",
                bootstrap_iters=args.bootstrap_iters,
                seed=args.seed,
            )
        except KeyError as exc:  # lm-eval's own word for a name it does not know
            raise RecipeError(f"key 'tasks': {exc.args[0] if exc.args else exc}") from None
        scores["results"] = harness.task_scores(results, pairs, args.limit, hub_ids)
        if args.preset and harness.PRESETS[args.preset].average:
            preset_tasks = {name for name, _ in harness.PRESETS[args.preset].tasks}
            scores["average"] = harness.average([r for r in scores["results"] if r["task"] in preset_tasks])

    if args.domain_data:
        scores["domain"], domain_results = run_domain(lm, args, out / "domain")
        results = harness.merge_results(results, domain_results)

    if args.perplexity_data:
        from hfscratch.evaluation.documents import held_out_documents
        from hfscratch.evaluation.perplexity import perplexity

        documents = held_out_documents(args.perplexity_data, "perplexity_data")
        scores["perplexity"] = perplexity(
            lm.model, lm.tokenizer, documents, str(args.perplexity_data), args.perplexity_window, args.perplexity_stride
        )

    if args.open_ended or args.human_sheet:
        run_generation(lm, args, out, scores)

    if args.human_scores:
        from hfscratch.evaluation.human import aggregate, read_scores

        scores["human"] = aggregate(read_scores(args.human_scores))

    if results:
        samples = results.pop("samples", None)
        from lm_eval.utils import handle_non_serializable

        _write(out / "results.json", json.dumps(results, indent=2, default=handle_non_serializable))
        if args.log_samples and samples:
            lines = (
                json.dumps({"task": t, **s}, default=handle_non_serializable) for t, ss in samples.items() for s in ss
            )
            _write(out / "samples.jsonl", "\n".join(lines) + "\n")
    _write(out / "scores.json", json.dumps(scores, indent=2))
    png = out / ".scores.png.partial.png"
    report.plot_scores(scores, png)
    os.replace(png, out / "scores.png")
    _write(out / "model-index.yaml", report.model_index_yaml(scores, scores["model"]))
    return scores


def run_domain(lm: Any, args: EvaluateArguments, folder: Path) -> tuple[dict, dict]:
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
    write_task(items, folder)
    results, _ = harness.run_harness(
        lm,
        [(TASK_NAME, 0)],
        extra_include=[folder],
        include_defaults=False,
        bootstrap_iters=args.bootstrap_iters,
        seed=args.seed,
    )
    return domain_scores(results, args.domain_choices), results


def run_generation(lm: Any, args: EvaluateArguments, out: Path, scores: dict) -> None:
    from hfscratch.evaluation import open_ended

    if args.prompts:
        prompts, source = open_ended.file_prompts(args.prompts, args.open_ended_limit), str(args.prompts)
    else:
        prompts, source = open_ended.truthfulqa_prompts(args.data_dir, args.open_ended_limit), "truthfulqa_gen"
    answers = open_ended.generate_answers(lm.model, lm.tokenizer, prompts, args.max_new_tokens)
    if args.open_ended:
        judge = open_ended.Judge(args.judge_model, args.judge_prompt, args.device) if args.judge_model else None
        scores["open_ended"] = open_ended.open_ended_scores(prompts, answers, source, judge)
    if args.human_sheet:
        from hfscratch.evaluation.human import write_sheet

        rows = [
            {"id": p.id, "prompt": p.question, "reference": p.references[0] if p.references else "", "completion": a}
            for p, a in zip(prompts, answers)
        ]
        csv_path, html_path = write_sheet(rows, out, args.raters, scores["model"])
        print(f"rating sheet: {csv_path} and {html_path}", file=sys.stderr)
