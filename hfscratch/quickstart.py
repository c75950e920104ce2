"""The main job: `hfscratch quickstart` runs every step of the kit end to end, in minutes on a laptop.

Today the kit has step 0 only, so the quickstart plans the run (for the model you would train for real) and
lists the steps still to come. Each later step adds itself to `run_quickstart`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hfscratch.plan import GPUName, PlanArguments, make_plan, render_plan
from hfscratch.recipes import parse_recipe

DEFAULT_RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "quickstart.yaml"
NOT_BUILT_YET = ("curate", "tokenize", "pretrain", "evaluate", "push")


@dataclass
class QuickstartArguments:
    out: str = field(default="runs/quickstart", metadata={"help": "Run folder for every step's output."})
    target_params: str = field(default="1B", metadata={"help": "Size of the model you would train for real."})
    target_gpu: GPUName = field(default="H100", metadata={"help": "GPU of the real run, for the plan."})
    eval_data: str | None = field(default=None, metadata={"help": "Local benchmark mirror for step 4."})
    minutes: float = field(default=10.0, metadata={"help": "Wall-clock budget of the whole run."})


def run_quickstart(args: QuickstartArguments) -> Path:
    """Run the steps that exist; return the run folder."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    print(f"[0/5] plan: {args.target_params} parameters on {args.target_gpu}")
    plan = make_plan(PlanArguments(params=args.target_params, gpu=args.target_gpu))
    (out / "plan.json").write_text(json.dumps(plan, indent=2))
    text = render_plan(plan)
    print(text)

    report = ["# hfscratch quickstart", "", "## Step 0: plan", "", "```", text, "```", ""]
    for step in NOT_BUILT_YET:
        print(f"[-] {step}: not built yet, skipped")
        report.append(f"- {step}: not built yet, skipped")
    (out / "report.md").write_text("\n".join(report) + "\n")
    print(f"\nRun folder: {out} (plan.json, report.md)")
    return out


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0].startswith("-"):
        argv = [str(DEFAULT_RECIPE), *argv] if DEFAULT_RECIPE.is_file() else list(argv)
    (args,) = parse_recipe(
        [QuickstartArguments],
        argv,
        prog="hfscratch quickstart",
        description="The main job: every step of the kit that exists, end to end, in minutes on a laptop.",
    )
    run_quickstart(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
