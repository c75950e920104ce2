"""`torch_compile: true` through the pretraining Trainer, for a layout of every position type (the five presets hold
every position, both norms, both norm positions and the plain, SwiGLU and GeGLU MLPs): the Trainer really trains
the compiled model (accelerate wraps it in an `OptimizedModule` and dynamo captures its graphs), its losses are those
of an eager run of the same seed, evaluation runs, and the saved model generates under a compiled static-cache
decoding step the tokens eager greedy decoding gives.

The default set compiles every preset with `torch_compile_backend: aot_eager` (dynamo and AOTAutograd's forward and
backward graphs, as inductor gets them, without inductor's C++ code generation: about 7 s a layout); the slow set
compiles two of them with inductor, what `torch_compile: true` alone picks (45-60 s a layout on 2 cores with a
cold cache, measured 2026-12-03).

Found on the way (transformers 5.24): the Trainer's evaluation during and after training runs `trainer.model`, the
uncompiled module (the compiled wrapper is `trainer.model_wrapped`); only an evaluation before any training
prepares, and so compiles, the model. `PretrainTrainer` evaluates the compiled module in both cases, checked below.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from training_helpers import logged, write_recipe

from hfscratch.core.recipes import parse_recipe
from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments
from hfscratch.training.pretrain import build_trainer, train
from hfscratch.training.trainer import PretrainTrainer

KEYS = [ModelArguments, DataArguments, PretrainingArguments]
STEPS = 3
# position / norm type / norm position / MLP: rope RMSNorm pre SwiGLU; learned LayerNorm pre plain (GELU-tanh);
# alibi LayerNorm pre plain (GELU); relative RMSNorm pre GeGLU; sinusoidal LayerNorm post plain (ReLU, dropout 0.1).
PRESETS = ["llama", "gpt2", "bloom", "t5", "vaswani"]
# Inductor's own code generation, on the two layouts whose graphs differ most from each other: rope with SwiGLU, and
# the relative bias (bucketed in the graph) with GeGLU. The other three differ in pointwise ops and dropout, which the
# aot_eager set above compiles through the same AOTAutograd graphs.
INDUCTOR_PRESETS = ["llama", "t5"]


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    yield
    torch._dynamo.reset()


def graphs_compiled() -> int:
    """Graphs dynamo captured and handed to the backend since the last reset."""
    return torch._dynamo.utils.counters["stats"]["unique_graphs"]


def pretrain(folder: Path, corpus: Path, preset: str, **keys) -> PretrainTrainer:
    """A 3-step run of the 64-wide, 2-layer `preset` model, evaluated at its last step; returns its Trainer."""
    recipe = write_recipe(
        folder.with_suffix(".yaml"),
        corpus,
        folder,
        model_preset=preset,
        max_steps=STEPS,
        eval_strategy="steps",
        eval_steps=STEPS,
        **keys,
    )
    trainer = build_trainer(*parse_recipe(KEYS, [str(recipe)], "t"))
    assert train(trainer) == 0
    return trainer


def check_compiled_run(tmp_path: Path, corpus: Path, preset: str, backend: str | None) -> None:
    eager = pretrain(tmp_path / "eager", corpus, preset)
    assert not isinstance(eager.model_wrapped, torch._dynamo.eval_frame.OptimizedModule)
    assert graphs_compiled() == 0

    keys = {"torch_compile": True} | ({"torch_compile_backend": backend} if backend else {})
    compiled = pretrain(tmp_path / "compiled", corpus, preset, **keys)
    # the mode asked for: accelerate compiled the model with that backend, and dynamo compiled its forward
    assert compiled.args.torch_compile_backend == (backend or "inductor")
    assert compiled.accelerator.state.dynamo_plugin.backend.value.lower() == (backend or "inductor")
    assert isinstance(compiled.model_wrapped, torch._dynamo.eval_frame.OptimizedModule)
    assert compiled.model_wrapped._orig_mod is compiled.model
    assert graphs_compiled() >= 1
    if backend is None:
        assert sum(torch._dynamo.utils.counters["inductor"].values()) > 0  # inductor generated (or reused) code

    # the same training: every step's loss, and the evaluation at the last step
    eager_losses, compiled_losses = logged(tmp_path / "eager", "loss"), logged(tmp_path / "compiled", "loss")
    assert sorted(compiled_losses) == list(range(1, STEPS + 1))
    assert all(math.isfinite(loss) for loss in compiled_losses.values())
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-4), (compiled_losses, eager_losses)
    eval_losses = logged(tmp_path / "compiled", "eval_loss")
    assert math.isfinite(eval_losses[STEPS])
    assert eval_losses == pytest.approx(logged(tmp_path / "eager", "eval_loss"), rel=1e-4)

    # an evaluation after training runs the compiled module: with dynamo's caches emptied, it compiles again
    torch._dynamo.reset()
    assert compiled.evaluate()["eval_loss"] == pytest.approx(eval_losses[STEPS], rel=1e-5)
    assert graphs_compiled() >= 1

    check_compiled_evaluation(tmp_path, corpus, tmp_path / "compiled", keys, eval_losses[STEPS])
    check_compiled_generation(tmp_path / "compiled", corpus, backend or "inductor")


def check_compiled_evaluation(tmp_path: Path, corpus: Path, trained: Path, keys: dict, expected: float) -> None:
    """An evaluation-only Trainer (no training first) of the saved model prepares it, and compiles it."""
    recipe = write_recipe(
        tmp_path / "evaluate.yaml",
        corpus,
        tmp_path / "evaluate",
        model_name_or_path=str(trained),
        eval_strategy="steps",
        **keys,
    )
    settings = yaml.safe_load(recipe.read_text())
    del settings["model_preset"], settings["config_overrides"]  # the saved model, as it is
    recipe.write_text(yaml.safe_dump(settings))
    trainer = build_trainer(*parse_recipe(KEYS, [str(recipe)], "t"))
    torch._dynamo.reset()  # the trained model's evaluation graph would serve this model too
    loss = trainer.evaluate()["eval_loss"]
    assert isinstance(trainer.model_wrapped, torch._dynamo.eval_frame.OptimizedModule)
    assert graphs_compiled() >= 1  # the evaluation forward was compiled
    assert loss == pytest.approx(expected, rel=1e-4)


def check_compiled_generation(trained: Path, corpus: Path, backend: str) -> None:
    """The saved model (its own copy of the code) decodes greedily with a compiled static-cache step as eagerly."""
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, CompileConfig

    model = AutoModelForCausalLM.from_pretrained(trained, trust_remote_code=True).eval()
    block = load_from_disk(str(corpus / "packed"))["validation"][0]["input_ids"]
    pad = model.config.pad_token_id
    prompt = torch.tensor([[token for token in block if token != pad][:8]])  # a pad id in a prompt reads as padding
    settings = {"max_new_tokens": 8, "do_sample": False, "pad_token_id": pad}
    expected = model.generate(prompt, use_cache=False, **settings)
    compile_config = CompileConfig(fullgraph=True, dynamic=False, backend=backend, mode=None)
    compile_config._compile_all_devices = True  # generate() compiles on CPU only when asked
    graphs = graphs_compiled()
    tokens = model.generate(prompt, cache_implementation="static", compile_config=compile_config, **settings)
    assert torch.equal(tokens, expected), (tokens, expected)
    assert tokens.shape == (1, 16)
    assert getattr(model, "_compiled_call", None) is not None  # the forward generate() compiled and called
    assert graphs_compiled() > graphs


@pytest.mark.parametrize("preset", PRESETS)
def test_trainer_compiles_every_position_type(tmp_path, packed_corpus, preset):
    check_compiled_run(tmp_path, packed_corpus, preset, backend="aot_eager")


@pytest.mark.slow
@pytest.mark.parametrize("preset", INDUCTOR_PRESETS)
def test_trainer_compiles_with_inductor(tmp_path, packed_corpus, preset):
    import torch._inductor.config

    # inductor draws dropout's masks with its own generator; torch's keeps them the eager run's for a preset with
    # dropout (vaswani, if it is added to INDUCTOR_PRESETS)
    with torch._inductor.config.patch(fallback_random=True):
        check_compiled_run(tmp_path, packed_corpus, preset, backend=None)
