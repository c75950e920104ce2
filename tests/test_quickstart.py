"""`hfscratch quickstart` end to end on a short time budget: it ends within 5% of its minutes, its pretraining
schedule completed, every artifact exists and is valid, a complete run is reused, and a run killed mid-pretraining
resumes from its checkpoint and completes."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HFSCRATCH = Path(sys.executable).with_name("hfscratch")
STEPS = ["plan", "curate", "tokenize", "pretrain", "evaluate", "model card", "samples"]
# A reduced budget: 24 optimizer steps, a checkpoint every 8, and 20 items per benchmark task.
SMALL = ["--train_tokens", "49152", "--pretrain_args", "--save_steps 8 --eval_steps 8 --logging_steps 4"]


MINUTES = 5


def quickstart(out: Path, *args: str, budget: list[str] = SMALL, **popen) -> subprocess.Popen:
    command = [str(HFSCRATCH), "quickstart", "--out", str(out), *budget, *args]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def finish(process: subprocess.Popen, timeout: float = 900) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-4000:]
    return output


def load_in_fresh_process(model_dir: Path, tmp_path: Path) -> dict:
    """The model folder loads with AutoModelForCausalLM where hfscratch cannot be imported."""
    code = (
        "import json, sys; sys.modules['hfscratch'] = None\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "model = AutoModelForCausalLM.from_pretrained(sys.argv[1], trust_remote_code=True)\n"
        "tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])\n"
        "ids = tokenizer('The Python standard library', return_tensors='pt').input_ids\n"
        "report = {'class': type(model).__name__, 'logits': list(model(ids).logits.shape)}\n"
        "open(sys.argv[2], 'w').write(json.dumps(report))\n"
    )
    report = tmp_path / "load_check.json"
    command = [sys.executable, "-c", code, str(model_dir), str(report)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(report.read_text())


@pytest.mark.slow
@pytest.mark.alone  # its 5% is of the wall clock: beside another test's processes it measures their load
def test_quickstart_end_to_end_within_its_minutes_then_reused(tmp_path, shared_data):
    out = tmp_path / "qs"
    started = time.monotonic()
    benchmarks = ["--eval_data", str(shared_data / "benchmarks"), "--eval_limit", "20"]
    # Time-bound pretraining (the default: up to 4 epochs, more than fits in the budget), then an evaluation that
    # scores as many items as fit in the time left.
    budget = ["--minutes", str(MINUTES)]
    output = finish(quickstart(out, *benchmarks, budget=budget))
    wall = time.monotonic() - started
    assert wall == pytest.approx(MINUTES * 60, rel=0.05), f"{wall:.0f} s for a {MINUTES}-minute budget"

    plan = json.loads((out / "plan.json").read_text())
    assert plan["target"]["params"] == 1e9 and 1e5 < plan["quickstart"]["params"] < 1e8
    assert (out / "curate" / "funnel.png").is_file() and (out / "tokenize" / "doc_lengths.png").is_file()
    decontamination = json.loads((out / "tokenize" / "stats.json").read_text())["decontamination"]
    assert decontamination["documents"] > 0  # checked against the mirror given as --eval_data

    model_dir = out / "pretrain"
    state = json.loads((model_dir / "trainer_state.json").read_text())
    assert 0 < state["global_step"] < state["max_steps"] and (model_dir / "loss_curve.png").is_file()  # cut short
    rates = [row["learning_rate"] for row in state["log_history"] if "learning_rate" in row]
    peak = json.loads((model_dir / "run_info.json").read_text())["training_args"]["learning_rate"]
    assert rates[-1] == pytest.approx(0.1 * peak, rel=0.02)  # the schedule's end: cosine decay to 10%, completed
    validated = [row["step"] for row in state["log_history"] if "eval_loss" in row]
    assert validated[0] == 0 and validated[-1] == state["global_step"]  # validated at the start and at the end
    loaded = load_in_fresh_process(model_dir, tmp_path)
    assert loaded["class"] == "HFScratchForCausalLM" and loaded["logits"][-1] == state_vocab(model_dir)

    from hfscratch.evaluation import Scores

    scores = Scores.read(model_dir / "evaluation")
    assert scores.perplexity and all(p.perplexity > 1 for p in scores.perplexity.values())
    assert scores.tasks["hfscratch_domain"].samples > 0
    tasks = set(scores.tasks)
    assert {"arc_easy", "arc_challenge", "hellaswag", "truthfulqa_mc2"} <= tasks and any("mmlu" in t for t in tasks)

    from huggingface_hub import ModelCard

    card = ModelCard.load(model_dir / "README.md")
    assert card.data.library_name == "transformers" and card.data.eval_results
    assert "loss_curve.png" in card.text

    report = (out / "report.md").read_text()
    for step in STEPS:  # the step table: name, seconds, one line of what it produced
        assert re.search(rf"^{step} +[0-9.]+ +\S", report, re.MULTILINE), step
    assert "![Step 3: pretraining](pretrain/loss_curve.png)" in report
    assert (out / "samples.md").read_text().count("**") >= 2 and "Next" in output

    again = finish(quickstart(out, *benchmarks, budget=budget))
    assert again.count("already complete") == len(STEPS) - 1  # all but the plan, which is always redone


def state_vocab(model_dir: Path) -> int:
    return json.loads((model_dir / "config.json").read_text())["vocab_size"]


@pytest.mark.slow
def test_quickstart_killed_mid_pretraining_resumes(tmp_path):
    out = tmp_path / "qs"
    process = quickstart(out, start_new_session=True)  # its own process group: the kill takes every worker
    checkpoint = out / "pretrain" / "checkpoint-8" / "trainer_state.json"
    deadline = time.monotonic() + 600
    while not checkpoint.exists():
        assert process.poll() is None, process.stdout.read()[-4000:]
        assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "pretrain" / "run_info.json").exists()  # killed before pretraining completed

    output = finish(quickstart(out))
    assert "[curate] already complete" in output and "[tokenize] already complete" in output
    assert "resuming from" in output and "checkpoint-" in output
    state = json.loads((out / "pretrain" / "trainer_state.json").read_text())
    assert state["global_step"] == 24 and (out / "report.md").is_file()


@pytest.mark.parametrize("artifact", ["curate", "tokenize", "pretrain", "evaluate"])
def test_a_step_is_complete_only_with_an_artifact_that_reads(tmp_path, artifact):
    """The quickstart's reuse asks each step's typed artifact: absent is not done, a foreign file is an error."""
    from hfscratch.core.recipes import RecipeError
    from hfscratch.curation.artifacts import CurationStats
    from hfscratch.evaluation.scores import Scores
    from hfscratch.quickstart import finished
    from hfscratch.tokenization.artifacts import TokenizeStats
    from hfscratch.training.run_info import RunInfo

    kind = {"curate": CurationStats, "tokenize": TokenizeStats, "pretrain": RunInfo, "evaluate": Scores}[artifact]
    path = tmp_path / kind.FILE
    assert not finished(kind)(path)
    path.write_text('{"max_steps": 600}')  # an older or foreign file is not a finished step of this kit
    with pytest.raises(RecipeError, match=rf"{kind.FILE}: schema_version None.*rerun with --fresh"):
        finished(kind)(path)


def test_a_finished_step_is_reused_only_with_the_settings_it_was_made_with(tmp_path):
    """A finished step made one way is never presented as made another: other settings stop the run, naming the
    first that differs (here, the benchmark mirror that decontamination would have used)."""
    from hfscratch.core.recipes import RecipeError
    from hfscratch.quickstart import Quickstart, QuickstartArguments

    run = Quickstart(QuickstartArguments(out=str(tmp_path)), tmp_path)
    done = tmp_path / "tokenize" / "stats.json"
    calls = []

    def tokenize() -> str:
        calls.append(1)
        done.parent.mkdir(exist_ok=True)
        done.write_text("{}")
        return "tokenized"

    settings = {"tokenize_recipe": {"vocab_size": 8192, "block_size": 256}, "eval_data": None}
    assert not run.step("tokenize", done, tokenize, settings=settings).reused and calls == [1]
    assert run.step("tokenize", done, tokenize, settings=settings).reused and calls == [1]
    with pytest.raises(
        RecipeError,
        match=r"\[tokenize\] .*tokenize was made with eval_data = None, this run asks "
        r"for '/data/benchmarks': rerun with --fresh",
    ):
        run.step("tokenize", done, tokenize, settings=settings | {"eval_data": "/data/benchmarks"})
    other_recipe = settings | {"tokenize_recipe": {"vocab_size": 4096, "block_size": 256}}
    with pytest.raises(RecipeError, match="made with tokenize_recipe: vocab_size = 8192, this run asks for 4096"):
        run.step("tokenize", done, tokenize, settings=other_recipe)
    assert calls == [1] and done.read_text() == "{}"  # nothing was redone or overwritten


def test_a_recipe_key_written_out_with_its_default_is_the_same_setting(tmp_path):
    from hfscratch.quickstart import recipe_settings
    from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments

    kinds = (ModelArguments, DataArguments, PretrainingArguments)
    short, explicit = tmp_path / "short.yaml", tmp_path / "explicit.yaml"
    short.write_text("model_size: tiny\nlearning_rate: 3.0e-3\n")
    explicit.write_text("model_size: tiny\nlearning_rate: 3.0e-3\nmatrix_optimizer: adamw\n")  # the default
    assert recipe_settings(str(short), *kinds) == recipe_settings(str(explicit), *kinds) == {"learning_rate": 3e-3}
