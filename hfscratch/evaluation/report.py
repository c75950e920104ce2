"""What an evaluation shows: the rows of its table, report.md, a bar chart with chance marked, the model-index.

Everything here reads one `Scores` record (scores.json, see `scores.py`), whose numbers are already in percent,
and formats each number once (`task_rows`, `perplexity_rows`): the terminal table, report.md, the model card's
tables (`hfscratch.hub.facts`) and the model-index all show the same digits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hfscratch.evaluation.scores import PerplexityScore, Scores, TaskScore

LM_EVAL_URL = "https://github.com/EleutherAI/lm-evaluation-harness"
# TruthfulQA's MC1 and MC2 are both lm-eval's "acc" on one dataset and split, so the model-index (which groups
# results by dataset) would show two "acc" values side by side: it names them mc1 and mc2, as the leaderboard does.
MODEL_INDEX_METRICS = {"truthfulqa_mc1": "mc1", "truthfulqa_mc2": "mc2"}
METRIC_NAMES = {
    "acc": "accuracy",
    "acc_norm": "normalized accuracy",
    "acc_mutual_info": "accuracy (mutual information)",
    "mc1": "mc1",
    "mc2": "mc2",
}


# -- one formatting of each number -------------------------------------------------------------------------


def score_value(score: float) -> float:
    """A percent score as the model-index records it and every table prints it: two decimals."""
    return round(score, 2)


def perplexity_values(p: PerplexityScore) -> dict[str, float]:
    return {"perplexity": round(p.perplexity, 2), "bits_per_byte": round(p.bits_per_byte, 4)}


def dataset_label(dataset: str) -> str:
    """A held-out dataset by its file or folder name: local paths stay out of cards and tables."""
    return Path(dataset).name or dataset


def task_rows(scores: Scores) -> list[dict[str, str]]:
    """One row per recorded task (lm-eval tasks and the domain benchmark), as strings, in percent."""
    rows = []
    for t in scores.tasks.values():
        rows.append(
            {
                "key": t.task,
                "task": t.task_name,
                "metric": t.metric,
                "score": f"{score_value(t.score):.2f}",
                "stderr": f"{t.stderr:.2f}" if t.stderr is not None else "",
                "value": f"{score_value(t.score):.2f}" + (f" ± {t.stderr:.2f}" if t.stderr is not None else ""),
                "chance": f"{t.chance:.1f}" if t.chance is not None else "-",
                "shots": str(t.num_fewshot),
                "samples": f"{t.samples:,}" + (" (limited)" if t.limit is not None else ""),
                "split": t.split or "-",
                "date": t.date[:10],
                "lm_eval": t.lm_eval_version,
            }
        )
    return rows


def average_lines(scores: Scores) -> list[str]:
    return [
        f"{avg.score:.2f}"
        + (f" (chance {avg.chance:.2f})" if avg.chance is not None else "")
        + f" over {', '.join(avg.tasks)} ({preset})"
        for preset, avg in scores.averages.items()
    ]


def perplexity_rows(scores: Scores) -> list[dict[str, str]]:
    rows = []
    for p in scores.perplexity.values():
        values = perplexity_values(p)
        rows.append(
            {
                "dataset": dataset_label(p.dataset),
                "perplexity": f"{values['perplexity']:.2f}",
                "bits_per_byte": f"{values['bits_per_byte']:.4f}",
                "nats_per_token": f"{p.nats_per_token:.4f}",
                "tokens": f"{p.tokens:,}",
                "documents": f"{p.documents:,}" + (f" of {p.of_documents:,}" if p.of_documents else ""),
                "window": f"{p.window} / {p.stride}",
                "date": p.date[:10],
            }
        )
    return rows


def other_metric_lines(scores: Scores) -> list[str]:
    """Tasks that record more than their headline (the domain benchmark's acc and acc_norm), one line each."""
    lines = []
    for t in scores.tasks.values():
        shown = {k: v for k, v in t.metrics.items() if not k.endswith("_stderr")}
        if shown:
            lines.append(f"{t.task_name}: " + ", ".join(f"{k} {v:.2f}" for k, v in shown.items()))
    return lines


def open_ended_lines(scores: Scores) -> list[str]:
    return [
        f"open-ended ({o.prompts} prompts, {dataset_label(o.source)}, {o.date[:10]}): "
        + ", ".join(f"{k} {v:.2f}" for k, v in o.metrics.items())
        for o in scores.open_ended.values()
    ]


def human_line(scores: Scores) -> str | None:
    h = scores.human
    if h is None:
        return None
    kappa = f", agreement (quadratic kappa) {h.agreement_kappa:.2f}" if h.agreement_kappa is not None else ""
    return (
        f"human ratings (1-5): mean {h.mean:.2f} (95% CI {h.ci95[0]:.2f}-{h.ci95[1]:.2f}) over {h.items} items "
        f"by {h.raters} rater(s){kappa}"
    )


# -- the terminal table, report.md, the quickstart's summary -----------------------------------------------


def render_table(scores: Scores) -> str:
    """A leaderboard-style table in percent: one row per task, its few-shot count, items, chance and run date."""
    header = f"{'task':<22} {'metric':<15} {'shots':>5} {'items':>16} {'score':>7} {'± stderr':>9} {'chance':>7}  run"
    lines = [header, "-" * len(header)]
    for row in task_rows(scores):
        lines.append(
            f"{row['key']:<22} {row['metric']:<15} {row['shots']:>5} {row['samples']:>16} {row['score']:>7} "
            f"{row['stderr'] or '-':>9} {row['chance']:>7}  {row['date']}"
        )
    lines += [f"average: {line}" for line in average_lines(scores)]
    lines += other_metric_lines(scores)
    for row in perplexity_rows(scores):
        lines.append(
            f"perplexity on {row['dataset']}: {row['perplexity']} ({row['nats_per_token']} nats/token over "
            f"{row['tokens']} tokens of {row['documents']} documents), {row['bits_per_byte']} bits/byte  {row['date']}"
        )
    lines += open_ended_lines(scores)
    human = human_line(scores)
    if human:
        lines.append(human)
    versions = sorted({t.lm_eval_version for t in scores.tasks.values()})
    if versions:
        lines.append(f"scores in percent; lm-eval {', '.join(versions)}")
    return "\n".join(lines)


def render_report(scores: Scores) -> str:
    """report.md: every result recorded for the model, newest run of each task."""
    return f"# Evaluation of {scores.model}\n\n```\n{render_table(scores)}\n```\n"


def summary(scores: Scores) -> str:
    """One line for the quickstart's step list."""
    parts = [f"validation perplexity {p.perplexity:.1f}" for p in scores.perplexity.values()]
    for t in scores.tasks.values():
        if t.dataset_type == "local":
            parts.append(f"{t.task_name} {t.metric} {t.score:.1f}% (chance {t.chance:.0f}%, {t.samples} items)")
    benchmarks = [t for t in scores.tasks.values() if t.dataset_type != "local"]
    if benchmarks:
        parts.append(f"{len(benchmarks)} lm-eval scores")
    return "; ".join(parts)


# -- the plot ----------------------------------------------------------------------------------------------


def plot_scores(scores: Scores, path: Path) -> None:
    """Bar chart of each task's headline number (percent) with its error bar, chance as a dashed line per bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: list[dict[str, Any]] = [
        {"label": f"{t.task}\n{t.metric}" + (f", {t.num_fewshot}-shot" if t.num_fewshot else ""), "score": t.score,
         "stderr": t.stderr, "chance": t.chance, "average": False}
        for t in scores.tasks.values()
    ]  # fmt: skip
    rows += [
        {"label": f"average\n{preset}", "score": a.score, "stderr": None, "chance": a.chance, "average": True}
        for preset, a in scores.averages.items()
    ]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(rows) + 1.5), 4.0))
    if not rows:
        ax.text(0.5, 0.5, "no benchmark scores", ha="center", va="center", transform=ax.transAxes)
    chance_labelled = False
    for i, row in enumerate(rows):
        value = score_value(row["score"])
        ax.bar(i, value, yerr=row["stderr"], color="tab:gray" if row["average"] else "tab:blue", capsize=4, width=0.7)
        if row["chance"] is not None:
            ax.hlines(
                row["chance"], i - 0.4, i + 0.4, colors="tab:red", linestyles="dashed",
                label=None if chance_labelled else "chance",
            )  # fmt: skip
            chance_labelled = True
        ax.text(i, value + (row["stderr"] or 0) + 1, f"{value:.2f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(rows)), [r["label"] for r in rows], fontsize=7, rotation=20, ha="right")
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{scores.model}: evaluation scores in percent (dashed: chance)", fontsize=9)
    if chance_labelled:
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- the model-index ---------------------------------------------------------------------------------------


def _task_result(t: TaskScore, source: str) -> Any:
    from huggingface_hub import EvalResult

    local = t.dataset_type == "local"
    name = f"{t.task_name} ({t.samples} {t.split} items)" if local else f"{t.task_name} ({t.num_fewshot}-Shot)"
    return EvalResult(
        task_type="text-generation",
        task_name="Text Generation",
        dataset_type=t.dataset_type,
        dataset_name=name,
        dataset_config=t.dataset_name,
        dataset_split=t.split,
        # A --limit run scored a subset: say so, it is not comparable with a full-split score.
        dataset_args={"num_few_shot": t.num_fewshot, **({"limit": t.limit} if t.limit is not None else {})},
        metric_type=MODEL_INDEX_METRICS.get(t.task, t.metric),
        metric_value=score_value(t.score),
        metric_name=METRIC_NAMES.get(MODEL_INDEX_METRICS.get(t.task, t.metric), t.metric),
        source_name=f"{source} (lm-eval {t.lm_eval_version}, {t.date[:10]})",
        source_url=LM_EVAL_URL,
    )


def eval_results(scores: Scores, model_name: str) -> list[Any]:
    """`huggingface_hub.EvalResult`s for the model card's model-index, in the Open LLM Leaderboard's shape
    (values in percent, the few-shot count in the dataset name and args), for every recorded entry."""
    from huggingface_hub import EvalResult

    source = "hfscratch evaluate"
    results = [_task_result(t, source) for t in scores.tasks.values()]
    for p in scores.perplexity.values():
        for metric, value in perplexity_values(p).items():
            results.append(
                EvalResult(
                    task_type="text-generation",
                    task_name="Text Generation",
                    dataset_type="local",
                    dataset_name=f"Held-out text ({dataset_label(p.dataset)})",
                    # one model-index entry per dataset (entries are grouped by dataset type and config)
                    dataset_config=f"perplexity:{dataset_label(p.dataset)}",
                    metric_type=metric,
                    metric_value=value,
                    metric_name=metric.replace("_", " "),
                    source_name=f"{source} ({p.date[:10]})",
                    source_url=LM_EVAL_URL,
                )
            )
    return results


def model_index_yaml(scores: Scores, model_name: str) -> str:
    """The `model-index:` block of a model card's YAML header."""
    import yaml
    from huggingface_hub.repocard_data import eval_results_to_model_index

    results = eval_results(scores, model_name)
    if not results:
        return "model-index: []\n"
    return yaml.safe_dump({"model-index": eval_results_to_model_index(model_name, results)}, sort_keys=False)
