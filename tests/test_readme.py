"""Every command in README.md works as written, in the order a reader meets them.

The test reads the README's `bash` and `console` blocks, and runs each command (`hfscratch ...`, the stock
`lm_eval` CLI) in one working folder, one after the other, as a reader following the README top to bottom would:
the quickstart and the step sections make the folders the hand-off examples name. It adds only small budgets
(`BUDGETS`: fewer steps, items and tokens) and the reader's own files the README names as placeholders
(`READER_FILES`: "your instructions", "your prompts"). Commands that need what this machine has not (a Slurm
cluster, eight GPUs, a Hub account) are listed in `NOT_HERE` with the reason; every entry there and in the
tables must match a README command, so neither can outlive the README. A `console` block's shown output must be
what the command prints.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHARED = REPO.parent / "shared"
BIN = Path(sys.executable).parent  # hfscratch and lm_eval of this environment

# Extra arguments per command (matched by regex, the first that matches): budgets only, never another mode.
BUDGETS: list[tuple[str, list[str]]] = [
    (r"^hfscratch quickstart", ["--minutes", "1.5", "--eval_limit", "2"]),
    (r"^hfscratch pretrain", ["--max_steps", "4", "--eval_steps", "2", "--save_steps", "2", "--logging_steps", "1"]),
    (r"^hfscratch evaluate .*(--preset|--tasks|leaderboard)", ["--limit", "2"]),
    (r"^hfscratch evaluate .*--open_ended", ["--limit", "2", "--max_new_tokens", "8"]),
    (r"^hfscratch evaluate .*--human_sheet", ["--limit", "2", "--max_new_tokens", "8"]),
    (r"^hfscratch finetune", ["--max_steps", "2", "--eval_steps", "2", "--save_steps", "2"]),
    (r"^hfscratch generate", ["--max_new_tokens", "8"]),
    (r"^hfscratch synthesize", ["--num_instructions", "1", "--max_prompts", "2", "--max_new_tokens", "16"]),
    (r"^hfscratch push .*--repo-id .*--(private|llama)", ["--dry-run"]),  # nothing leaves the machine
    (r"^lm_eval ", ["--limit", "2"]),
]
# Commands this machine cannot run, by regex, with the reason.
NOT_HERE: dict[str, str] = {
    r"^(python3 -m venv|pip install)": "installs the kit: CI itself runs these lines",
    r"^pytest": "the test suite itself",
    r"^hfscratch <step>": "the command's grammar, not a command",
    r"--executor slurm": "needs a Slurm cluster (the job scripts are tested in tests/curation and tests/tokenization)",
    r"^sbatch ": "needs a Slurm cluster",
    r"^accelerate launch": "needs the GPUs the launcher config names (2-process CPU runs are tested in tests/training)",
    r"^(vllm serve|python -m sglang)": "needs a CUDA GPU and vLLM or SGLang (benchmarks/gpu_serve_check.py runs it)",
    r"^curl -s http://127.0.0.1": "asks the vLLM server above",
}


def readme_commands(text: str) -> list[tuple[str, str | None]]:
    """(command, shown output or None) for every command line of the README's bash and console blocks."""
    commands = []
    for kind, body in re.findall(r"```(bash|console)\n(.*?)```", text, re.S):
        lines = body.replace("\\\n", " ").split("\n")
        for number, line in enumerate(lines):
            line = line.strip()
            if kind == "console":
                if not line.startswith("$ "):
                    continue
                shown = []
                for following in lines[number + 1 :]:
                    if following.startswith("$ "):
                        break
                    shown.append(following)
                commands.append((line[2:], "\n".join(shown).strip()))
            elif line and not line.startswith("#"):
                commands.append((strip_comment(line), None))
    return commands


def strip_comment(line: str) -> str:
    """The command without a trailing `# comment`: a # that starts a word outside quotes, as the shell reads it."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip()
    return line.strip()


def matching(patterns, command: str):
    return next((value for pattern, value in patterns if re.search(pattern, command)), None)


def make_reader_files(cwd: Path) -> None:
    """The files the README's examples name as the reader's own, made from what the earlier commands wrote."""
    docs = cwd / "runs" / "curate" / "python-docs" / "documents"
    records = [json.loads(line) for shard in sorted(docs.glob("*.jsonl*")) for line in read_lines(shard)][:200]
    (cwd / "docs").mkdir(exist_ok=True)  # private-docs.yaml reads a folder of text files named docs/
    for record in records[:20]:
        (cwd / "docs" / f"{len(list((cwd / 'docs').iterdir())):03d}.md").write_text(record["text"])
    with open(cwd / "my.jsonl", "w") as out:  # "your corpus"
        out.writelines(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in records)
    (cwd / "reference").mkdir(exist_ok=True)  # the classifier's positive examples
    (cwd / "reference" / "good.txt").write_text("\n\n".join(r["text"] for r in records[:60]))
    with open(cwd / "raw-sample.jsonl", "w") as out:  # its negatives: word salad of the same vocabulary
        words = " ".join(r["text"] for r in records[:60]).split()
        out.writelines(json.dumps({"text": " ".join(words[i::97][:80])}) + "\n" for i in range(60))
    (cwd / "prompts.jsonl").write_text(
        "".join(
            json.dumps({"prompt": p, "reference": r}) + "\n" for p, r in [("What does json.dumps do?", "It ...")] * 3
        )
    )
    (cwd / "prompt.txt").write_text("The Python standard library")
    (cwd / "runs" / "judge").symlink_to(cwd / "runs" / "pretrain" / "tiny-cpu")  # "your judge model" (made later)
    with open(cwd / "my-instructions.jsonl", "w") as out:
        for r in records[:40]:
            out.write(
                json.dumps({"instruction": "Summarise this text.", "input": r["text"][:300], "output": r["text"][:80]})
                + "\n"
            )


def read_lines(path: Path) -> list[str]:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        return [line for line in lines if line.strip()]


def fill_rating_sheets(cwd: Path) -> None:
    """Two raters' filled copies of the sheet `--human_sheet` wrote, for `--human_scores ann.csv bob.csv`."""
    (sheet,) = cwd.glob("runs/**/rating_sheet.csv")
    rows = list(csv.DictReader(sheet.open()))
    for name, offset in (("ann.csv", 0), ("bob.csv", 1)):
        with open(cwd / name, "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({**row, "score": str(3 + (i + offset) % 2)} for i, row in enumerate(rows))


@pytest.mark.slow
def test_every_readme_command_works_as_written(tmp_path):
    if not (SHARED / "data" / "benchmarks").is_dir():
        pytest.skip(f"the README's examples read {SHARED / 'data'}, absent on this machine")
    text = README.read_text(encoding="utf-8")
    commands = readme_commands(text)
    # The tables name only what the README says: a stale entry fails here.
    for pattern in [*NOT_HERE, *(p for p, _ in BUDGETS)]:
        assert any(re.search(pattern, command) for command, _ in commands), f"no README command matches {pattern!r}"

    # The reader's working folder, with ../shared beside it as the README's paths expect; no recipes/ in it:
    # recipe paths resolve to the shipped recipes as they do for a `pip install` user.
    cwd = tmp_path / "reader"
    cwd.mkdir()
    (tmp_path / "shared").symlink_to(SHARED)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HOME": str(tmp_path / "hf-home")}
    failures, ran = [], 0
    for command, shown in commands:
        if matching(NOT_HERE.items(), command):
            continue
        if "--human_scores" in command:
            fill_rating_sheets(cwd)
        extra = matching(BUDGETS, command) or []
        result = subprocess.run(
            f"{command} {shlex.join(extra)}", shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=900
        )
        ran += 1
        if shown is not None:  # a console block: the error it shows, and its exit status
            if shown not in result.stderr + result.stdout or result.returncode != 2:
                failures.append(f"{command}: shows {shown!r}, printed {result.stderr.strip()!r} ({result.returncode})")
        elif result.returncode != 0:
            last = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
            failures.append(f"{command} {shlex.join(extra)}: exit {result.returncode}: {' | '.join(last)}")
        if command.startswith("hfscratch curate recipes/curate/python-docs"):
            make_reader_files(cwd)
    assert ran >= 30, f"only {ran} README commands ran"
    assert not failures, "README commands that fail as written:\n" + "\n".join(failures)
