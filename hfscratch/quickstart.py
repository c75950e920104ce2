"""The main job: `hfscratch quickstart` runs every step of the kit end to end, in minutes on a laptop.

Each step writes into its own folder of the run folder and is skipped when its output is already complete
(a rerun after an interruption picks up where it stopped; `--fresh` starts over). Today it runs plan, curate
and tokenize, prints the pretrain command for their output, and lists the steps not built yet.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hfscratch.plan import GPUName, PlanArguments, make_plan, render_plan
from hfscratch.recipes import parse_recipe

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
NOT_BUILT_YET = ("evaluate", "push")


@dataclass
class QuickstartArguments:
    out: str = field(default="runs/quickstart", metadata={"help": "Run folder for every step's output."})
    target_params: str = field(default="1B", metadata={"help": "Size of the model you would train for real."})
    target_gpu: GPUName = field(default="H100", metadata={"help": "GPU of the real run, for the plan."})
    eval_data: str | None = field(
        default=None, metadata={"help": "Local benchmark mirror (Hub layout): decontamination and step 4."}
    )
    minutes: float = field(default=10.0, metadata={"help": "Wall-clock budget of the whole run."})
    fresh: bool = field(default=False, metadata={"help": "Delete the run folder and start over."})


@dataclass
class StepResult:
    name: str
    seconds: float
    summary: str


def run_step(name: str, done: Path, run: Callable[[], str]) -> StepResult:
    """Run a step unless `done` (the file it writes last) exists; either way say what it produced."""
    if done.exists():
        print(f"[{name}] already complete ({done}), reused")
        return StepResult(name, 0.0, f"reused {done.parent}")
    print(f"[{name}] running")
    start = time.perf_counter()
    summary = run()
    seconds = time.perf_counter() - start
    print(f"[{name}] done in {seconds:.1f} s: {summary}")
    return StepResult(name, seconds, summary)


def run_quickstart(args: QuickstartArguments) -> Path:
    """Run the steps that exist; return the run folder."""
    out = Path(args.out)
    if args.fresh:
        shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    report = ["# hfscratch quickstart", ""]

    plan = make_plan(PlanArguments(params=args.target_params, gpu=args.target_gpu))
    (out / "plan.json").write_text(json.dumps(plan, indent=2))
    report += [f"## Step 0: plan for {args.target_params} parameters", "", "```", render_plan(plan), "```", ""]

    def curate() -> str:
        from hfscratch.curation.pipeline import CurateArguments, run_curation
        from hfscratch.recipes import read_recipe

        recipe = read_recipe(RECIPES / "curate" / "python-docs.yaml", CurateArguments)
        stats = run_curation(CurateArguments(**(recipe | {"output_dir": str(out / "curate")})))
        kept = sum(s["documents_kept"] for s in stats["sources"].values())
        return f"{kept:,} documents of this environment's documentation, funnel in curate/report.md"

    def tokenize() -> str:
        from hfscratch.recipes import read_recipe
        from hfscratch.tokenization.arguments import TokenizeArguments
        from hfscratch.tokenization.pipeline import run_tokenize

        recipe = read_recipe(RECIPES / "tokenize" / "python-docs.yaml", TokenizeArguments)
        recipe |= {"corpus": str(out / "curate"), "out": str(out / "tokenize"), "benchmarks_dir": args.eval_data}
        if not args.eval_data:
            recipe["decontaminate"] = "none"
            print("[tokenize] no --eval_data: benchmark decontamination skipped (give a local mirror to enable it)")
        stats = run_tokenize(TokenizeArguments(**recipe))
        return f"{stats['train']['blocks']:,} training and {stats['validation']['blocks']:,} validation blocks"

    results = [
        run_step("curate", out / "curate" / "stats.json", curate),
        run_step("tokenize", out / "tokenize" / "stats.json", tokenize),
    ]
    for result in results:
        report += [f"## {result.name}", "", result.summary, ""]
    pretrain = (
        f"hfscratch pretrain recipes/pretrain/tiny-cpu.yaml --data_dir {out / 'tokenize'} "
        f"--output_dir {out / 'pretrain'}"
    )
    print(f"[pretrain] not part of the quickstart yet; run: {pretrain}")
    report += ["## pretrain", "", f"Not part of the quickstart yet: `{pretrain}`", ""]
    for step in NOT_BUILT_YET:
        print(f"[{step}] not built yet, skipped")
        report.append(f"- {step}: not built yet, skipped")
    (out / "report.md").write_text("\n".join(report) + "\n")
    print(f"\nRun folder: {out} (plan.json, curate/, tokenize/, report.md)")
    return out


def main(argv: Sequence[str]) -> int:
    default = RECIPES / "quickstart.yaml"
    if (not argv or argv[0].startswith("-")) and default.is_file():
        argv = [str(default), *argv]
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
