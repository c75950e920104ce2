"""The `hfscratch` command: help, dispatch, exit codes, one-line errors, and a fast start."""

import subprocess
import sys
from pathlib import Path

import pytest

import hfscratch_cli

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
    "quickstart",
]


def run(*args, cwd=REPO):
    return subprocess.run([str(HFSCRATCH), *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_help_lists_every_step():
    result = run("--help")
    assert result.returncode == 0
    for step in STEPS:
        assert f"\n  {step} " in result.stdout
    assert list(hfscratch_cli.STEPS) == STEPS


def test_help_imports_nothing_heavy():
    """`hfscratch --help` must answer at once: neither torch nor transformers may be imported for it."""
    code = (
        "import sys, hfscratch_cli; hfscratch_cli.main(['--help']); "
        "heavy = [m for m in ('torch', 'transformers', 'hfscratch', 'yaml') if m in sys.modules]; "
        "sys.exit(f'imported {heavy}' if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("step", STEPS)
def test_every_step_has_help(step, capsys):
    built = hfscratch_cli.STEPS[step].module is not None
    if built:
        with pytest.raises(SystemExit) as exit_:
            hfscratch_cli.main([step, "--help"])
        assert exit_.value.code == 0
        assert f"usage: hfscratch {step} " in capsys.readouterr().out
    else:
        assert hfscratch_cli.main([step, "--help"]) == 1
        assert f"hfscratch {step}: not built yet" in capsys.readouterr().err


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
        "missing.yaml: recipe file not found (expected a YAML file of key: value pairs)"
    )
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_console_script_plans_from_a_recipe_with_overrides():
    result = run("plan", "recipes/plan/10b-h100.yaml", "--num_gpus", "512", "--json")
    assert result.returncode == 0, result.stderr
    assert '"num_gpus": 512' in result.stdout and '"params": 10000000000.0' in result.stdout
