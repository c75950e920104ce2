"""`--decay_from CHECKPOINT --decay_tokens N`: decaying from a stable-phase checkpoint K of a WSD run reproduces,
bitwise, the decay steps of a run that decayed at K directly, writes its own folder and never the source run's,
records where it started, and refuses what it cannot do in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file
from training_helpers import logged, write_recipe

from hfscratch import cli as dispatcher
from hfscratch.core.recipes import RecipeError, parse_recipe
from hfscratch.training import cli
from hfscratch.training.arguments import DataArguments, ModelArguments, PretrainingArguments
from hfscratch.training.decay import DecayStart, decay_resume
from hfscratch.training.pretrain import build_trainer, train
from hfscratch.training.run_info import RunInfo

KEYS = [ModelArguments, DataArguments, PretrainingArguments]
BATCH = 512  # 2 micro-batches of 4 x 64 tokens a step: the resumed run must also find its place in the data
WARMUP, DECAY = 4, 4
K = 6  # the checkpoint decayed from: after the warmup (steps 0-3), in the stable phase of both runs below


def wsd_recipe(path: Path, corpus: Path, output_dir: Path, max_steps: int) -> Path:
    return write_recipe(
        path, corpus, output_dir, max_steps=max_steps, global_batch_tokens=BATCH, warmup_steps=WARMUP,
        lr_scheduler_type="warmup_stable_decay",
        lr_scheduler_kwargs={"num_decay_steps": DECAY, "decay_type": "linear", "min_lr_ratio": 0.1},
        save_strategy="steps", save_steps=3, save_total_limit=None, resume_from_checkpoint="auto",
    )  # fmt: skip


@pytest.fixture(scope="module")
def stable_run(tmp_path_factory, packed_corpus) -> Path:
    """A WSD run of 12 steps (decay from step 8), checkpoints 3 (warmup), 6 (stable), 9 (decaying) and 12;
    returns its recipe."""
    folder = tmp_path_factory.mktemp("stable")
    recipe = wsd_recipe(folder / "stable.yaml", packed_corpus, folder / "stable", max_steps=12)
    assert train(build_trainer(*parse_recipe(KEYS, [str(recipe)], "hfscratch pretrain"))) == 0
    return recipe


def source_of(recipe: Path) -> Path:
    return recipe.parent / "stable"


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.mark.slow
def test_decaying_from_checkpoint_k_reproduces_the_run_that_decayed_at_k(tmp_path, packed_corpus, stable_run, capsys):
    direct = wsd_recipe(tmp_path / "direct.yaml", packed_corpus, tmp_path / "direct", max_steps=K + DECAY)
    assert train(build_trainer(*parse_recipe(KEYS, [str(direct)], "hfscratch pretrain"))) == 0

    source = source_of(stable_run)
    before = snapshot(source)
    checkpoint = source / f"checkpoint-{K}"
    decay = ["--decay_from", str(checkpoint), "--decay_tokens", str(DECAY * BATCH), "--output_dir", str(tmp_path / "d")]
    assert cli.main([str(stable_run), *decay]) == 0  # the stable run's own recipe (12 steps), as a user would
    assert f"decaying from {checkpoint.resolve()} (step {K}, at the stable learning rate) over 2,048 tokens: steps " \
        f"7-10" in capsys.readouterr().out  # fmt: skip

    out = tmp_path / "d"
    decay_steps = range(K + 1, K + DECAY + 1)
    for key in ("loss", "learning_rate", "grad_norm"):
        decayed, directly = logged(out, key), logged(tmp_path / "direct", key)
        assert [decayed[s] for s in decay_steps] == [directly[s] for s in decay_steps], key  # bitwise
    rates = logged(out, "learning_rate")
    assert rates[K] == rates[K + 1] == 3e-3 > rates[K + 2] > rates[K + DECAY]  # the peak, then the decay
    assert rates[K + DECAY] == pytest.approx(3e-3 * (0.1 + 0.9 / DECAY))  # linear towards 10%: its last step
    final, reference = load_file(out / "model.safetensors"), load_file(tmp_path / "direct" / "model.safetensors")
    assert final.keys() == reference.keys() and all(final[name].equal(reference[name]) for name in final)

    info = RunInfo.read(out)
    assert info.decayed_from == DecayStart(str(checkpoint.resolve()), K, DECAY * BATCH, DECAY)
    assert (info.max_steps, info.global_step, info.train_tokens) == (K + DECAY, K + DECAY, (K + DECAY) * BATCH)
    assert snapshot(source) == before  # the source run is read, never written
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-9"]

    model_file = (out / "model.safetensors").stat().st_mtime_ns
    assert cli.main([str(stable_run), *decay]) == 0  # the same command again: a finished run, left as it is
    assert f"{out} holds a finished decay (to step 10), left unchanged" in capsys.readouterr().out
    assert (out / "model.safetensors").stat().st_mtime_ns == model_file
    longer = [*decay[:3], str(3 * DECAY * BATCH), *decay[4:]]  # another decay into the same folder: refused
    with pytest.raises(RecipeError, match=f"{out} holds a decay to step 10, not 18: pass another --output_dir"):
        cli.main([str(stable_run), *longer])
    longer_args = parse_recipe(KEYS, [str(stable_run), *longer], "hfscratch pretrain")[2]
    with pytest.raises(RecipeError, match="holds a decay to step 10, not 18"):  # killed before run_info.json
        decay_resume(longer_args, str(out / "checkpoint-10"))

    # A decay killed half-way goes on from its own checkpoint, not from the stable one again.
    args = parse_recipe(KEYS, [str(stable_run), *decay], "hfscratch pretrain")[2]
    assert decay_resume(args, str(out / "checkpoint-9")) == str(out / "checkpoint-9")
    assert decay_resume(args, None) == str(checkpoint.resolve())


@pytest.mark.slow
def test_what_a_decay_cannot_do_is_a_one_line_error(tmp_path, stable_run, capsys):
    source = source_of(stable_run)
    own = ["--output_dir", str(tmp_path / "decay")]

    def error(*argv: str) -> str:
        with pytest.raises(RecipeError) as caught:
            parse_recipe(KEYS, [str(stable_run), *argv], "hfscratch pretrain")
        return str(caught.value)

    def decay_from(step: int | str, tokens: int = 2 * BATCH, *argv: str) -> str:
        return error("--decay_from", str(source / f"checkpoint-{step}"), "--decay_tokens", str(tokens), *own, *argv)

    assert decay_from("99") == (
        f"key 'decay_from': {source}/checkpoint-99 is not a checkpoint folder (no readable trainer_state.json)"
    )
    assert decay_from(K, 1000) == (
        "key 'decay_tokens': 1,000 is not a positive multiple of global_batch_tokens (512): a decay is a whole "
        "number of steps"
    )
    assert decay_from(9) == (
        "key 'decay_from': checkpoint-9 is past its stable phase (its learning rate is 0.775 of the peak); decay "
        "from a checkpoint taken before the run's decay began"
    )
    assert decay_from(3) == "key 'decay_from': checkpoint-3 is in its warmup (warmup_steps 4): not yet stable"
    assert decay_from(K, 2 * BATCH, "--learning_rate", "1e-3").startswith(
        "key 'learning_rate': 0.001, but checkpoint-6 was trained at a peak of 0.003"
    )
    assert decay_from(K, 2 * BATCH, "--global_batch_tokens", "256").startswith(
        "key 'global_batch_tokens': 256, but checkpoint-6 trained 3,072 tokens in 6 steps"
    )
    assert decay_from(K, 2 * BATCH, "--lr_scheduler_type", "cosine_with_min_lr") == (
        "key 'decay_from' needs lr_scheduler_type warmup_stable_decay (the run's schedule), got cosine_with_min_lr"
    )
    into_source = error("--decay_from", str(source / f"checkpoint-{K}"), "--decay_tokens", "1024")  # its output_dir
    assert into_source.startswith(f"key 'output_dir': {source} is inside the run decay_from comes from")
    assert error("--decay_tokens", "1024", *own).startswith("key 'decay_tokens' needs 'decay_from'")
    assert error("--decay_from", str(source / f"checkpoint-{K}"), *own).startswith(
        "key 'decay_from' needs 'decay_tokens'"
    )

    # Through the dispatcher: one line on stderr, exit 2, nothing written.
    assert (
        dispatcher.main(["pretrain", str(stable_run), "--decay_from", str(tmp_path), "--decay_tokens", "1024", *own])
        == 2
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "is not a checkpoint folder" in lines[0]
    assert not (tmp_path / "decay").exists()
