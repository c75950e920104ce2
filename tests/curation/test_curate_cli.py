"""`hfscratch curate` as a command: its own CLI module, a cheap --help, a quiet console, a report that stands
alone, and a rerun on finished output that changes nothing."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from curation_corpora import dedup_corpus, write_jsonl

import hfscratch.curation
from hfscratch.cli import STEPS

HFSCRATCH = Path(sys.executable).with_name("hfscratch")
DATATROVE_LOG_LINE = re.compile(r"\| (?:DEBUG|INFO|SUCCESS|WARNING|ERROR) +\| datatrove")


def test_the_step_folder_has_its_cli_apart_and_help_imports_nothing_heavy(tmp_path):
    assert STEPS["curate"].module == "hfscratch.curation.cli"
    assert not hasattr(hfscratch.curation, "main"), "the package is a docstring; the CLI is hfscratch.curation.cli"
    code = (
        "import sys; from hfscratch import cli; code = cli.main(['curate', '--help']); "
        "print('HEAVY', [m for m in ('datatrove', 'torch', 'transformers') if m in sys.modules]); sys.exit(code)"
    )
    env = {"HFSCRATCH_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "--minhash_threshold" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "HEAVY []"


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """`hfscratch curate` in a subprocess on a small planted corpus with every stage on, 2 worker processes."""
    root = tmp_path_factory.mktemp("cli")
    records, _ = dedup_corpus()
    write_jsonl(records[:60], root / "corpus" / "a.jsonl")
    write_jsonl(records[60:], root / "corpus" / "b.jsonl")
    recipe = root / "recipe.yaml"
    recipe.write_text(f"sources: [{{type: jsonl, path: {root / 'corpus'}}}]\ntasks: 2\nworkers: 2\n")
    out = root / "run"
    command = [str(HFSCRATCH), "curate", str(recipe), "--output_dir", str(out)]
    result = run(command)
    return command, out, result


def run(command: list[str]) -> subprocess.CompletedProcess:
    """Output as bytes decoded, not text mode, whose universal newlines would turn a bar's redraws into lines."""
    result = subprocess.run(command, capture_output=True)
    result.stdout, result.stderr = result.stdout.decode(), result.stderr.decode()
    return result


def console_lines(result) -> list[str]:
    # a progress bar redraws itself after carriage returns, on one line
    return [line for line in (result.stdout + result.stderr).split("\n") if line.strip()]


@pytest.mark.slow  # the run they share: 9 stages in a subprocess, about 25 s
def test_console_shows_a_bar_and_a_result_per_stage_and_logs_go_to_files(cli_run):
    _, out, result = cli_run
    assert result.returncode == 0, result.stderr
    stages = sorted(p.name for p in (out / "logs").iterdir())
    assert len(stages) == 9  # filter, 3 exact, 4 MinHash (with the candidate check), final
    lines = console_lines(result)
    funnel_and_sources = len([r for r in lines if re.match(r"^\S.*\s\d[\d,]*\s+\d[\d,]*\s", r)])
    assert len(lines) <= 2 * len(stages) + funnel_and_sources + 10, "\n".join(lines)
    for stage in stages:
        assert sum(line.startswith(f"{stage}: ") for line in lines) == 1, stage  # its result line
        assert sum(re.match(rf"\r?{stage}\s+\d+%", line) is not None for line in lines) == 1, stage  # its bar
    console = result.stdout + result.stderr
    assert not DATATROVE_LOG_LINE.search(console) and "object at 0x" not in console and "PIPELINE" not in console
    # ... and the full logs are in OUTPUT/logs, as datatrove writes them
    task_log = (out / "logs" / "filter" / "logs" / "task_00000.log").read_text()
    assert DATATROVE_LOG_LINE.search(task_log) and "PIPELINE" in task_log and "Stats: Task 0" in task_log
    assert "tasks completed" in (out / "logs" / "filter" / "executor.log").read_text()


@pytest.mark.slow
def test_report_links_only_images_that_exist_and_shows_the_funnel_once(cli_run):
    _, out, result = cli_run
    assert result.returncode == 0, result.stderr
    report = (out / "report.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    for link in images:
        assert (out / link).is_file(), f"report.md links {link}, which does not exist"
    # The funnel once: its table. The plot lies beside the report, and whoever embeds report.md (the
    # quickstart's report) places it; a link here would show it twice there, and broken.
    assert report.count("docs in  docs out") == 1 and not [i for i in images if "funnel" in i]
    assert (out / "funnel.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_rerun_on_finished_output_changes_nothing(cli_run):
    command, out, first = cli_run
    assert first.returncode == 0, first.stderr
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and "logs" not in p.parts}
    again = run(command)
    assert again.returncode == 0, again.stderr
    assert "Already curated" in again.stdout
    assert {p: p.read_bytes() for p in before} == before
