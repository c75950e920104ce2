"""The `hfscratch` command: help, dispatch, exit codes, one-line errors, and a fast start."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hfscratch import cli as hfscratch_cli

REPO = Path(__file__).resolve().parents[1]
HFSCRATCH = Path(sys.executable).with_name("hfscratch")  # the console script of this environment
STEPS = [
    "plan",
    "curate",
    "tokenize",
    "pretrain",
    "evaluate",
    "push",
    "finetune",
    "synthesize",
    "generate",
    "export",
    "quickstart",
    "recipes",
]
# Steps whose keys include transformers.TrainingArguments, which imports torch: their first --help renders
# through the real parser, later ones come from the help cache.
TRAINING_ARGUMENT_STEPS = {"pretrain", "finetune"}


def run(*args, cwd=REPO):
    return subprocess.run([str(HFSCRATCH), *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_help_lists_every_step():
    result = run("--help")
    assert result.returncode == 0
    for step in STEPS:
        assert f"\n  {step} " in result.stdout
    assert list(hfscratch_cli.STEPS) == STEPS


def test_help_imports_nothing_heavy():
    """`hfscratch --help` must answer at once: neither torch nor transformers nor yaml may be imported for it."""
    code = (
        "import sys; from hfscratch import cli; cli.main(['--help']); "
        "heavy = [m for m in ('torch', 'transformers', 'yaml') if m in sys.modules]; "
        "sys.exit(f'imported {heavy}' if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def step_help_in_fresh_process(step: str, cache: Path) -> tuple[str, list[str]]:
    """`hfscratch STEP --help` in a new interpreter: its output and the heavy modules it imported."""
    code = (
        f"import sys; from hfscratch import cli; code = cli.main([{step!r}, '--help']); "
        "heavy = [m for m in ('torch', 'transformers', 'datatrove', 'lm_eval', 'peft', 'deepspeed') "
        "if m in sys.modules]; print('HEAVY=' + ','.join(heavy)); sys.exit(code)"
    )
    env = {**os.environ, "HFSCRATCH_CACHE": str(cache)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    text, _, heavy = result.stdout.rpartition("HEAVY=")
    return text, [m for m in heavy.strip().split(",") if m]


@pytest.mark.parametrize("step", STEPS)
def test_step_help_is_cheap(step, tmp_path):
    """Every step's --help lists its keys without importing torch: at once for most steps, and from the help
    cache for the steps whose keys include TrainingArguments (the first call renders and stores it)."""
    first, heavy = step_help_in_fresh_process(step, tmp_path)
    assert f"usage: hfscratch {step}" in first
    if step in TRAINING_ARGUMENT_STEPS:
        again, heavy = step_help_in_fresh_process(step, tmp_path)
        assert again == first and "--learning_rate" in again
    assert heavy == [], f"hfscratch {step} --help imported {heavy}"


@pytest.mark.parametrize("step", STEPS)
def test_every_step_has_help(step, capsys):
    assert hfscratch_cli.main([step, "--help"]) == 0
    assert f"usage: hfscratch {step}" in capsys.readouterr().out


def test_missing_extra_names_what_to_install():
    """A step whose optional dependency is absent says which extra brings it, in one line, exit 2."""
    code = (
        "import sys; sys.modules['datatrove'] = None; from hfscratch import cli; "  # None: import raises
        "sys.exit(cli.main(['curate', 'python-docs', '--output_dir', sys.argv[1]]))"
    )
    result = subprocess.run([sys.executable, "-c", code, "/nonexistent/out"], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "hfscratch curate: error: this step needs 'datatrove', which is not installed: pip install 'hfscratch[curate]'"
    )


def test_unknown_step_and_no_step(capsys):
    assert hfscratch_cli.main(["trian"]) == 2
    assert "unknown step 'trian'" in capsys.readouterr().err
    assert hfscratch_cli.main([]) == 2


@pytest.mark.parametrize(
    "recipe, args, expected",
    [
        (None, ["--params", "ten"], ["--params: expected a positive count", "'ten'"]),
        (None, ["--params", "1B", "--mfu", "high"], ["--mfu", "invalid float value: 'high'"]),
        (None, ["--params", "1B", "--gpu", "TPU"], ["--gpu", "invalid choice"]),
        (None, ["--parms", "1B"], ["unknown option '--parms'", "did you mean 'params'"]),
        ("params: 1B\nmfuu: 0.5\n", [], ["bad.yaml", "unknown key 'mfuu'", "did you mean 'mfu'"]),
        ("params: 1B\nmfu: lots\n", [], ["bad.yaml", "key 'mfu' expects a float", "'lots'"]),
        ("params: 1B\nnum_gpus: [1, 2]\n", [], ["bad.yaml", "key 'num_gpus' expects an integer"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, recipe, args, expected):
    argv = ["plan"]
    if recipe is not None:
        (tmp_path / "bad.yaml").write_text(recipe)
        argv.append(str(tmp_path / "bad.yaml"))
    assert hfscratch_cli.main(argv + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("hfscratch plan: error: ") and err.count("\n") == 1, err
    for part in expected:
        assert part in err


def test_console_script_missing_recipe_file(tmp_path):
    result = run("plan", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "missing.yaml: recipe file not found (expected a YAML file of key: value pairs, or the name of a shipped "
        "recipe: `hfscratch recipes` lists them)"
    )
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_console_script_plans_from_a_recipe_with_overrides():
    result = run("plan", "recipes/plan/10b-h100.yaml", "--num_gpus", "512", "--json")
    assert result.returncode == 0, result.stderr
    assert '"num_gpus": 512' in result.stdout and '"params": 10000000000.0' in result.stdout


def test_console_script_takes_a_shipped_recipe_by_name(tmp_path):
    """From a folder with no recipes/ in it, a step takes a shipped recipe by name, with or without its step."""
    for name in ("10b-h100", "plan/10b-h100", "recipes/plan/10b-h100.yaml"):
        result = run("plan", name, "--json", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert '"params": 10000000000.0' in result.stdout


def test_recipes_lists_and_copies(tmp_path):
    listing = run("recipes", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    names = listing.stdout.split()
    assert {"pretrain/tiny-cpu", "curate/python-docs", "accelerate/zero2", "quickstart"} <= set(names)
    copied = run("recipes", "copy", "accelerate/zero2", cwd=tmp_path)
    assert copied.returncode == 0, copied.stderr
    # The accelerate config names its DeepSpeed JSON as recipes/accelerate/zero2.json: the copy keeps that path.
    config = (tmp_path / "recipes" / "accelerate" / "zero2.yaml").read_text()
    assert "deepspeed_config_file: recipes/accelerate/zero2.json" in config
    assert (tmp_path / "recipes" / "accelerate" / "zero2.json").is_file()
    again = run("recipes", "copy", "accelerate/zero2", cwd=tmp_path)
    assert again.returncode == 2 and "already exists; not overwritten" in again.stderr
    missing = run("recipes", "copy", "pretrain/nope", cwd=tmp_path)
    assert missing.returncode == 2 and "no shipped recipe named 'pretrain/nope'" in missing.stderr
    path = run("recipes", "path", "pretrain/tiny-cpu", cwd=tmp_path)
    assert path.returncode == 0 and Path(path.stdout.strip()).is_file()


def test_importing_the_training_stack_prints_nothing():
    """No library warns on the console at import (torchao, installed by the gpu extra, did on every command)."""
    code = "import hfscratch\nfrom transformers import TrainingArguments\nimport peft, accelerate\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stderr[-2000:]
