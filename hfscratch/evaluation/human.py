"""Human evaluation: a rating sheet of the model's answers, and the filled sheets read back and aggregated.

The sheet is a CSV (one row per answer and rater: fill `score` 1-5 and optionally `comment`) and a
self-contained HTML page with the guidelines and the reference answer beside each completion, whose form
saves the same CSV. Aggregation: the mean of per-item means, a 95% confidence interval (Student's t over
items), and, when several raters scored the same items, their agreement as the mean pairwise
quadratic-weighted Cohen's kappa (scikit-learn) and the share of exact agreements.
"""

from __future__ import annotations

import csv
import html
import itertools
import math
import statistics
from collections import defaultdict
from pathlib import Path

from hfscratch.core.recipes import RecipeError

SCALE = (1, 2, 3, 4, 5)
COLUMNS = ["item_id", "rater", "prompt", "reference", "completion", "score", "comment"]
GUIDELINES = """Rate each completion from 1 to 5 for how well it answers the prompt:
5 = correct, complete and fluent; 4 = correct with minor flaws; 3 = partly correct or partly relevant;
2 = mostly wrong or hard to read; 1 = wrong, off-topic or empty. The reference answer is one good answer,
not the only one: judge the content, not the wording. Rate each completion on its own; do not compare
rows, and do not change another rater's scores."""


def write_sheet(rows: list[dict], folder: Path, raters: int = 1, model: str = "") -> tuple[Path, Path]:
    """`rating_sheet.csv` and `rating_sheet.html` for `rows` of {"id", "prompt", "reference", "completion"}."""
    folder.mkdir(parents=True, exist_ok=True)
    records = [
        {
            "item_id": row["id"],
            "rater": f"rater{r + 1}" if raters > 1 else "",
            "prompt": row["prompt"],
            "reference": row.get("reference", ""),
            "completion": row["completion"],
            "score": "",
            "comment": "",
        }
        for r in range(raters)
        for row in rows
    ]
    csv_path = folder / "rating_sheet.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(records)
    html_path = folder / "rating_sheet.html"
    html_path.write_text(render_html(records, model), encoding="utf-8")
    return csv_path, html_path


def render_html(records: list[dict], model: str) -> str:
    def cell(text: str) -> str:
        return f"<td><pre>{html.escape(text)}</pre></td>"

    options = "".join(f'<option value="{s}">{s}</option>' for s in ("", *SCALE))
    body = "\n".join(
        f'<tr data-row="{i}"><td>{html.escape(str(r["item_id"]))}</td>'
        f'<td><input class="rater" value="{html.escape(r["rater"])}" size="8"></td>'
        f"{cell(r['prompt'])}{cell(r['reference'])}{cell(r['completion'])}"
        f'<td><select class="score">{options}</select></td><td><textarea class="comment"></textarea></td></tr>'
        for i, r in enumerate(records)
    )
    import json

    data = json.dumps(records).replace("</", "<\\/")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Rating sheet: {html.escape(model)}</title>
<style>body{{font-family:sans-serif;margin:1em}} table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:4px;vertical-align:top}} pre{{white-space:pre-wrap;margin:0;max-width:40em}}
.guide{{background:#f4f4f4;padding:1em;white-space:pre-wrap}}</style></head><body>
<h1>Rating sheet: {html.escape(model)}</h1>
<div class="guide">{html.escape(GUIDELINES)}</div>
<p>Fill in your name and a score for every row, then <button id="save">save as CSV</button> and hand the file
back (or fill <code>rating_sheet.csv</code> directly).</p>
<table><thead><tr><th>item</th><th>rater</th><th>prompt</th><th>reference answer</th><th>completion</th>
<th>score (1-5)</th><th>comment</th></tr></thead><tbody>
{body}
</tbody></table>
<script>
const records = {data};
const columns = {json.dumps(COLUMNS)};
function quote(v) {{ v = String(v ?? ""); return /[",\\n\\r]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v; }}
document.getElementById("save").onclick = () => {{
  const lines = [columns.join(",")];
  document.querySelectorAll("tbody tr").forEach((tr) => {{
    const r = Object.assign({{}}, records[+tr.dataset.row]);
    r.rater = tr.querySelector(".rater").value; r.score = tr.querySelector(".score").value;
    r.comment = tr.querySelector(".comment").value;
    lines.push(columns.map((c) => quote(r[c])).join(","));
  }});
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([lines.join("\\r\\n") + "\\r\\n"], {{type: "text/csv"}}));
  a.download = "rating_sheet_filled.csv"; a.click();
}};
</script></body></html>
"""


def read_scores(paths: list[str]) -> dict[str, dict[str, int]]:
    """item -> rater -> score from filled sheets; a `RecipeError` naming the file and line of a bad score."""
    ratings: dict[str, dict[str, int]] = defaultdict(dict)
    for path in paths:
        with open(path, newline="", encoding="utf-8") as source:
            reader = csv.DictReader(source)
            missing = {"item_id", "score"} - set(reader.fieldnames or [])
            if missing:
                raise RecipeError(f"key 'human_scores': {path} lacks the column(s) {', '.join(sorted(missing))}")
            for line, row in enumerate(reader, 2):
                value = (row.get("score") or "").strip()
                if not value:
                    continue  # not rated (yet)
                try:
                    score = int(float(value))
                except ValueError:
                    score = None
                if score not in SCALE or float(value) != score:
                    raise RecipeError(f"key 'human_scores': {path} line {line}: score {value!r} is not one of 1-5")
                rater = (row.get("rater") or "").strip() or Path(path).stem
                ratings[row["item_id"]][rater] = score
    if not ratings:
        raise RecipeError(f"key 'human_scores': no scores filled in {', '.join(paths)}")
    return ratings


def aggregate(ratings: dict[str, dict[str, int]]) -> dict:
    """Mean, 95% CI over items, and inter-rater agreement."""
    from scipy import stats

    item_means = [statistics.fmean(by_rater.values()) for by_rater in ratings.values()]
    n = len(item_means)
    mean = statistics.fmean(item_means)
    if n > 1:
        sem = statistics.stdev(item_means) / math.sqrt(n)
        half = float(stats.t.ppf(0.975, n - 1)) * sem
    else:
        half = float("nan")
    raters = sorted({r for by_rater in ratings.values() for r in by_rater})
    result = {
        "items": n,
        "raters": len(raters),
        "ratings": sum(len(v) for v in ratings.values()),
        "mean": mean,
        "ci95": [mean - half, mean + half],
        "agreement_kappa": None,
        "exact_agreement": None,
    }
    kappas, exact = [], []
    for a, b in itertools.combinations(raters, 2):
        shared = [(v[a], v[b]) for v in ratings.values() if a in v and b in v]
        if len(shared) < 2:
            continue
        from sklearn.metrics import cohen_kappa_score

        left, right = zip(*shared)
        kappa = cohen_kappa_score(left, right, labels=list(SCALE), weights="quadratic")
        if math.isfinite(kappa):
            kappas.append(float(kappa))
        exact.extend(x == y for x, y in shared)
    if kappas:
        result["agreement_kappa"] = statistics.fmean(kappas)
    if exact:
        result["exact_agreement"] = sum(exact) / len(exact)
    return result
