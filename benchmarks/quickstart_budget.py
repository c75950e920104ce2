"""Does `hfscratch quickstart --minutes N` end on time, and what quality does it reach, quiet and under load?

Runs the quickstart (fresh, in its own folder) once per competing load: 0, then 2 busy loops (`python -c "while
True: pass"`, which this script starts and always ends), and prints one table: wall time against the budget,
pretraining steps, validation loss, the domain benchmark and perplexity, with the machine's load averages.

    python benchmarks/quickstart_budget.py [--minutes 10] [--busy 0 2] [--out runs/benchmarks/quickstart-budget]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HFSCRATCH = Path(sys.executable).with_name("hfscratch")


def load_average() -> float:
    return os.getloadavg()[0]


def run_once(out: Path, minutes: float, busy: int) -> dict:
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        time.sleep(5 if busy else 0)  # let the loops show in the load average
        before = load_average()
        began = time.monotonic()
        log = out.with_suffix(".log")
        with log.open("w") as handle:
            command = [str(HFSCRATCH), "quickstart", "--out", str(out), "--fresh", "--minutes", str(minutes)]
            done = subprocess.run(
                command, stdout=handle, stderr=subprocess.STDOUT, env=os.environ | {"HF_HUB_OFFLINE": "1"}
            )
        wall = time.monotonic() - began
        after = load_average()
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    if done.returncode != 0:
        raise SystemExit(f"quickstart failed (exit {done.returncode}); see {log}")
    state = json.loads((out / "pretrain" / "trainer_state.json").read_text())
    losses = [row["eval_loss"] for row in state["log_history"] if "eval_loss" in row]
    scores = json.loads((out / "pretrain" / "evaluation" / "scores.json").read_text())
    domain = scores["tasks"]["hfscratch_domain"]
    (perplexity,) = scores["perplexity"].values()
    return {
        "busy loops": busy,
        "load": f"{before:.1f} -> {after:.1f}",
        "wall s": f"{wall:.0f}",
        "vs budget": f"{100 * (wall / (minutes * 60) - 1):+.1f}%",
        "steps": f"{state['global_step']} of {state['max_steps']}",
        "validation loss": f"{losses[0]:.2f} -> {losses[-1]:.2f}",
        "domain benchmark": f"{domain['score']:.1f}% ({domain['samples']} items)",
        "perplexity": f"{perplexity['perplexity']:.1f} ({perplexity['documents']} docs)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 2], help="busy loops per run")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks/quickstart-budget"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"{os.cpu_count()} cores ({cpu}); quickstart --minutes {args.minutes:g}", flush=True)
    rows = []
    for busy in args.busy:
        rows.append(run_once(args.out / f"busy-{busy}", args.minutes, busy))
        print(json.dumps(rows[-1]), flush=True)
    keys = list(rows[0])
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
