"""One-way layers between the hand-off steps, and --help that imports nothing heavy.

The import graph is grimp's (import-linter's own), built from the source: a lazy import inside a function counts,
so a chain that only runs on first use (prompting loading an adapter through finetuning) is caught too.
"""

from __future__ import annotations

import os
import subprocess
import sys

import grimp
import pytest

# (importer, imported): chains that must not exist. Order: core <- models <- ... <- evaluation <- prompting
# <- hub, finetuning (siblings, and plan beside them) <- quickstart, cli.
FORBIDDEN = [
    ("hfscratch.prompting", "hfscratch.finetuning"),
    ("hfscratch.prompting", "hfscratch.hub"),
    ("hfscratch.finetuning", "hfscratch.hub"),
    ("hfscratch.hub", "hfscratch.finetuning"),
    ("hfscratch.hub", "hfscratch.plan"),
    ("hfscratch.hub", "hfscratch.quickstart"),
    ("hfscratch.evaluation", "hfscratch.hub"),
    ("hfscratch.evaluation", "hfscratch.prompting"),
    ("hfscratch.evaluation", "hfscratch.finetuning"),
]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("hfscratch")


@pytest.mark.parametrize(("importer", "imported"), FORBIDDEN)
def test_no_import_points_up_or_sideways(graph, importer: str, imported: str) -> None:
    chain = graph.find_shortest_chains(importer=importer, imported=imported, as_packages=True)
    assert not chain, f"{importer} reaches {imported}: {sorted(chain)}"


def test_model_loading_depends_only_on_core_and_models(graph) -> None:
    direct = graph.find_modules_directly_imported_by("hfscratch.models.loading")
    assert direct and all(m.startswith(("hfscratch.core.", "hfscratch.models.")) for m in direct), direct
    # every step that loads a trained model loads it there
    for user in ("hfscratch.evaluation", "hfscratch.prompting", "hfscratch.finetuning", "hfscratch.hub"):
        assert graph.chain_exists(user, "hfscratch.models.loading", as_packages=True), user


# `finetune`'s keys are TrainingArguments fields: parsing them imports what TrainingArguments imports (torch,
# and peft through transformers.trainer_utils), never the Trainer, lm-eval or the fine-tuning code itself.
HELP_STEPS = {
    "evaluate": ("torch", "lm_eval", "transformers"),
    "push": ("torch", "lm_eval", "transformers"),
    "generate": ("torch", "lm_eval", "transformers"),
    "synthesize": ("torch", "lm_eval", "transformers"),
    "finetune": ("lm_eval", "transformers.trainer", "hfscratch.finetuning.train", "hfscratch.finetuning.lora"),
}


@pytest.mark.parametrize("step", HELP_STEPS)
def test_step_help_renders_without_heavy_imports(step: str, tmp_path) -> None:
    """The first --help (the help cache empty) renders through the real parser: what does it import?"""
    banned = HELP_STEPS[step]
    code = (
        f"import sys; from hfscratch.cli import main; code = main([{step!r}, '--help']); "
        f"print('IMPORTED=' + ','.join(m for m in {banned!r} if m in sys.modules)); sys.exit(code)"
    )
    env = {**os.environ, "HFSCRATCH_CACHE": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"usage: hfscratch {step}" in result.stdout
    assert result.stdout.rpartition("IMPORTED=")[2].strip() == "", f"{step} --help imported heavy modules"
