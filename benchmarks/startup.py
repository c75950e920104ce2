"""How long the `hfscratch` command takes to answer, against `import torch`, in fresh processes.

    python benchmarks/startup.py [--runs 5] [--markdown] [--only plan ...]

Rows: `python -c "import torch"` and `import transformers` (the references), `hfscratch --help`,
`hfscratch plan --params 1B`, and `hfscratch <step> --help` for every step of `hfscratch.cli.STEPS`. Each command
runs once first, untimed for the median (its time is shown as "first"): that run fills the caches a command keeps
(the help-text cache of the steps whose keys need torch) and the OS page cache, so the median of the next --runs
fresh processes measures a warm start. Peak RSS is the process's own maximum resident set (os.wait4), the median
over the timed runs. A hfscratch row is marked OVER when its median exceeds the goal: 0.5 s and a tenth of
`import torch`. The load average is printed with the table: figures on a busy machine are slower.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hfscratch.cli import STEPS
from hfscratch.core.formatting import format_table

GOAL_SECONDS = 0.5
GOAL_TORCH_FRACTION = 0.1


@dataclass
class Row:
    label: str
    argv: list[str]
    has_goal: bool  # a reference row (an import) has none
    first_s: float = 0.0
    median_s: float = 0.0
    rss_mb: float = 0.0
    returncode: int = 0


def hfscratch_argv() -> list[str]:
    """The console script of this interpreter's environment, else `python -m hfscratch`."""
    script = Path(sys.executable).with_name("hfscratch")
    if script.exists():
        return [str(script)]
    found = shutil.which("hfscratch")
    return [found] if found else [sys.executable, "-m", "hfscratch"]


def commands(only: list[str] | None) -> list[Row]:
    hfscratch = hfscratch_argv()
    rows = [
        Row("import torch", [sys.executable, "-c", "import torch"], has_goal=False),
        Row("import transformers", [sys.executable, "-c", "import transformers"], has_goal=False),
        Row("hfscratch --help", [*hfscratch, "--help"], has_goal=True),
        Row("hfscratch plan --params 1B", [*hfscratch, "plan", "--params", "1B"], has_goal=True),
    ]
    rows += [Row(f"hfscratch {step} --help", [*hfscratch, step, "--help"], has_goal=True) for step in STEPS]
    if only:
        rows = [r for r in rows if r.label == "import torch" or any(word in r.label for word in only)]
    return rows


def run_once(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB and exit status of one fresh process (its output discarded)."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen so it does not wait again
    return seconds, usage.ru_maxrss / 1024, process.returncode  # ru_maxrss is in KiB on Linux


def measure(row: Row, runs: int) -> None:
    row.first_s, _, row.returncode = run_once(row.argv)  # the warm-up: caches filled, not in the median
    samples = [run_once(row.argv) for _ in range(runs)]
    row.median_s = statistics.median(s for s, _, _ in samples)
    row.rss_mb = statistics.median(m for _, m, _ in samples)
    row.returncode = max([row.returncode] + [rc for _, _, rc in samples], key=abs)


def verdict(row: Row, torch_s: float) -> str:
    if row.returncode != 0:
        return f"FAILED (exit {row.returncode})"
    if not row.has_goal:
        return "reference"
    over = row.median_s > GOAL_SECONDS or row.median_s > GOAL_TORCH_FRACTION * torch_s
    return "OVER" if over else "ok"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed fresh processes per command (median)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--only", nargs="+", help="rows whose label contains one of these words (and torch's)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may wait on a network

    rows = commands(args.only)
    for row in rows:
        measure(row, args.runs)
        print(f"  {row.label}: first {row.first_s:.3f} s, median {row.median_s:.3f} s", file=sys.stderr)
    torch_s = rows[0].median_s
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"Median of {args.runs} fresh processes after one warm-up run each (the warm-up's time is 'first s'); "
        f"{os.cpu_count()} CPUs, load average {load}. Goal for hfscratch rows: at most {GOAL_SECONDS} s and "
        f"{GOAL_TORCH_FRACTION:.0%} of `import torch` ({GOAL_TORCH_FRACTION * torch_s:.3f} s here)."
    )
    table = format_table(
        [
            (
                f"`{r.label}`" if args.markdown else r.label,
                f"{r.median_s:.3f}",
                f"{r.first_s:.3f}",
                f"{r.rss_mb:.0f}",
                f"{r.median_s / torch_s:.3f}",
                verdict(r, torch_s),
            )
            for r in rows
        ],
        ["command", "median s", "first s", "peak RSS MB", "x import torch", "goal"],
        align="lrrrrl",
        markdown=args.markdown,
    )
    print(table)
    return 1 if any(r.returncode != 0 for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
