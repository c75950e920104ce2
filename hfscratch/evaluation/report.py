"""What a run shows: a leaderboard-style table, a bar chart with chance marked, and the model-index block."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LM_EVAL_URL = "https://github.com/EleutherAI/lm-evaluation-harness"
METRIC_NAMES = {
    "acc": "accuracy",
    "acc_norm": "normalized accuracy",
    "acc_mutual_info": "accuracy (mutual information)",
    "mc1": "mc1",
    "mc2": "mc2",
}


def domain_headline(domain: dict) -> tuple[str, float, float | None]:
    """(metric, value, stderr) the domain benchmark is reported by: mutual information (see `domain.py`)."""
    metric = "acc_mutual_info" if "acc_mutual_info" in domain else "acc_norm"
    return metric, domain[metric], domain.get(f"{metric}_stderr")


def render_table(scores: dict) -> str:
    """A leaderboard-style table: one row per task, the headline metric with its standard error and chance."""
    header = f"{'task':<22} {'metric':<9} {'shots':>5} {'items':>6} {'score':>8} {'± stderr':>9} {'chance':>7}"
    lines = [header, "-" * len(header)]
    for row in scores.get("results", []):
        stderr = f"{100 * row['stderr']:.2f}" if row["stderr"] is not None else "-"
        chance = f"{100 * row['chance']:.1f}" if row["chance"] is not None else "-"
        lines.append(
            f"{row['task']:<22} {row['metric']:<9} {row['num_fewshot']:>5} {row['samples']:>6} "
            f"{100 * row['value']:>8.2f} {stderr:>9} {chance:>7}"
        )
    if "average" in scores:
        avg = scores["average"]
        chance = f"{100 * avg['chance']:.1f}" if avg.get("chance") is not None else "-"
        lines.append(f"{'average':<22} {'':<9} {'':>5} {'':>6} {100 * avg['value']:>8.2f} {'':>9} {chance:>7}")
    if "domain" in scores:
        d = scores["domain"]
        metric, value, stderr = domain_headline(d)
        label = "acc_mi" if metric == "acc_mutual_info" else metric
        err = f"{100 * stderr:.2f}" if stderr is not None else "-"
        lines.append(
            f"{'domain cloze':<22} {label:<9} {0:>5} {d['items']:>6} {100 * value:>8.2f} {err:>9} "
            f"{100 * d['chance']:>7.1f}"
        )
    if "perplexity" in scores:
        p = scores["perplexity"]
        lines.append(
            f"perplexity on {p['dataset']}: {p['perplexity']:.2f} ({p['nats_per_token']:.4f} nats/token over "
            f"{p['tokens']:,} tokens), {p['bits_per_byte']:.4f} bits/byte"
        )
    if "open_ended" in scores:
        o = scores["open_ended"]
        parts = [f"{k} {v:.4g}" for k, v in o.get("metrics", {}).items()]
        lines.append(f"open-ended ({o['prompts']} prompts, {o['source']}): " + ", ".join(parts))
    if "human" in scores:
        h = scores["human"]
        lines.append(
            f"human ratings: mean {h['mean']:.2f} (95% CI {h['ci95'][0]:.2f}-{h['ci95'][1]:.2f}) over "
            f"{h['items']} items by {h['raters']} rater(s)"
            + (
                f", agreement (quadratic kappa) {h['agreement_kappa']:.2f}"
                if h.get("agreement_kappa") is not None
                else ""
            )
        )
    return "\n".join(lines)


def plot_scores(scores: dict, path: Path) -> None:
    """Bar chart of each task's headline number with its error bar, chance as a dashed line per bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(scores.get("results", []))
    if "domain" in scores:
        metric, value, stderr = domain_headline(scores["domain"])
        rows.append(
            {
                "task": "domain cloze",
                "value": value,
                "stderr": stderr,
                "chance": scores["domain"]["chance"],
                "num_fewshot": 0,
                "metric": metric,
            }
        )
    if "average" in scores:
        rows.append({"task": "average", **scores["average"], "stderr": None, "num_fewshot": None, "metric": ""})
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(rows) + 1.5), 4.0))
    if not rows:
        ax.text(0.5, 0.5, "no benchmark scores", ha="center", va="center", transform=ax.transAxes)
    for i, row in enumerate(rows):
        err = 100 * row["stderr"] if row.get("stderr") is not None else None
        ax.bar(
            i,
            100 * row["value"],
            yerr=err,
            color="tab:blue" if row["task"] != "average" else "tab:gray",
            capsize=4,
            width=0.7,
        )
        if row.get("chance") is not None:
            ax.hlines(
                100 * row["chance"],
                i - 0.4,
                i + 0.4,
                colors="tab:red",
                linestyles="dashed",
                label="chance" if i == 0 or "chance" not in ax.get_legend_handles_labels()[1] else None,
            )
        ax.text(i, 100 * row["value"] + (err or 0) + 1, f"{100 * row['value']:.1f}", ha="center", fontsize=8)
    labels = [
        f"{r['task']}\n{r['metric']}" + (f", {r['num_fewshot']}-shot" if r.get("num_fewshot") else "") for r in rows
    ]
    ax.set_xticks(range(len(rows)), labels, fontsize=7, rotation=20, ha="right")
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{scores.get('model', '')}: lm-eval scores (dashed: chance)", fontsize=9)
    if any(r.get("chance") is not None for r in rows):
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def eval_results(scores: dict, model_name: str) -> list[Any]:
    """`huggingface_hub.EvalResult`s for the model card's model-index, in the Open LLM Leaderboard's shape
    (values in percent, the few-shot count in the dataset name and args)."""
    from huggingface_hub import EvalResult

    from hfscratch.evaluation.tasks import lm_eval_version

    try:
        source = f"hfscratch evaluate (lm-eval {lm_eval_version()})"
    except ImportError:  # rendering a card where the eval extra is not installed
        source = "hfscratch evaluate (lm-eval)"
    results = []
    for row in scores.get("results", []):
        results.append(
            EvalResult(
                task_type="text-generation",
                task_name="Text Generation",
                dataset_type=row["dataset_type"],
                dataset_name=f"{row['task_name']} ({row['num_fewshot']}-Shot)",
                dataset_config=row.get("dataset_name"),
                dataset_split=row.get("split"),
                # A --limit run scored a subset: say so, it is not comparable with a full-split score.
                dataset_args={
                    "num_few_shot": row["num_fewshot"],
                    **({"limit": row["limit"]} if row.get("limit") else {}),
                },
                metric_type=row["metric"],
                metric_value=round(100 * row["value"], 2),
                metric_name=METRIC_NAMES.get(row["metric"], row["metric"]),
                source_name=source,
                source_url=LM_EVAL_URL,
            )
        )
    if "domain" in scores:
        d = scores["domain"]
        metric, value, _ = domain_headline(d)
        results.append(
            EvalResult(
                task_type="text-generation",
                task_name="Text Generation",
                dataset_type="local",
                dataset_name=f"Domain cloze ({d['items']} held-out items)",
                metric_type=metric,
                metric_value=round(100 * value, 2),
                metric_name=METRIC_NAMES.get(metric, metric),
                source_name=source,
                source_url=LM_EVAL_URL,
            )
        )
    if "perplexity" in scores:
        p = scores["perplexity"]
        for metric, value in (("perplexity", p["perplexity"]), ("bits_per_byte", p["bits_per_byte"])):
            results.append(
                EvalResult(
                    task_type="text-generation",
                    task_name="Text Generation",
                    dataset_type="local",
                    dataset_name=f"Held-out text ({p['dataset']})",
                    metric_type=metric,
                    metric_value=round(value, 4),
                    metric_name=metric.replace("_", " "),
                    source_name=source,
                    source_url=LM_EVAL_URL,
                )
            )
    return results


def model_index_yaml(scores: dict, model_name: str) -> str:
    """The `model-index:` block of a model card's YAML header."""
    import yaml
    from huggingface_hub.repocard_data import eval_results_to_model_index

    results = eval_results(scores, model_name)
    if not results:
        return "model-index: []\n"
    return yaml.safe_dump({"model-index": eval_results_to_model_index(model_name, results)}, sort_keys=False)
