"""A model folder that cannot work: the same one-line error, exit 2, from every step that loads a model, and
nothing written. The checks live in `hfscratch.models.loading`, which evaluate, generate, finetune, synthesize
and push all load through."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from hfscratch import cli

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def corrupt_weights(folder: Path) -> str:
    """A copy cut off half-way (an interrupted download): safetensors' header no longer covers the file."""
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    return r"model\.safetensors is corrupt \(Error while deserializing header"


def no_tokenizer(folder: Path) -> str:
    for name in TOKENIZER_FILES:
        (folder / name).unlink(missing_ok=True)
    return r"no tokenizer files \(tokenizer.json, tokenizer.model or vocab.json\)"


def not_a_model(folder: Path) -> str:
    shutil.rmtree(folder)
    folder.mkdir()
    (folder / "notes.txt").write_text("not a model\n")
    return r"not a model folder \(no config.json"


BREAKAGES = {"corrupt weights": corrupt_weights, "no tokenizer": no_tokenizer, "not a model": not_a_model}


def step_argv(step: str, model: Path, out: Path) -> list[str]:
    return {
        "evaluate": ["evaluate", str(model), "--tasks", "arc_easy", "--perplexity_data", str(model / "x.txt"),
                     "--output_dir", str(out)],
        "generate": ["generate", str(model), "--prompt", "The"],
        "finetune": ["finetune", "--model_name_or_path", str(model), "--output_dir", str(out), "--use_cpu", "true"],
        "synthesize": ["synthesize", "--model_name_or_path", str(model), "--output", str(out / "tasks.jsonl")],
        "push": ["push", str(model), "--repo_id", "my-org/tiny", "--dry_run"],
    }[step]  # fmt: skip


def folder_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize("breakage", BREAKAGES)
@pytest.mark.parametrize("step", ["evaluate", "generate", "finetune", "synthesize", "push"])
def test_every_step_refuses_a_broken_model_folder_in_one_line(
    step: str, breakage: str, random_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    model = tmp_path / "model"
    shutil.copytree(random_model_dir, model)
    (model / "x.txt").write_text("held-out text\n")
    message = BREAKAGES[breakage](model)
    before = folder_hashes(model)
    out = tmp_path / "out"
    assert cli.main(step_argv(step, model, out)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"hfscratch {step}: error: model {model}")
    assert re.search(message, err), err
    assert not out.exists() or not any(out.rglob("*"))  # nothing half-written
    assert folder_hashes(model) == before  # and the model folder untouched
