"""FSDP2 through accelerate, from recipes/accelerate/fsdp2.yaml, with 2 CPU processes over gloo.

accelerate alone would train this config as DDP on CPUs (it decides FSDP only for GPU setups), and that run
would also exit 0, train, and save: so every test asserts that the trained parameters were DTensors sharded
along dimension 0 and that rank 0 held half of them, as recorded by the training processes in run_info.json.
The saved folder must be one model.safetensors that `AutoModelForCausalLM` reloads (with the model's own code)
to the model that was trained (its last validation loss, computed through FSDP, on the same blocks), and a run
killed with SIGKILL and resumed must end with bitwise the same weights as one never interrupted.
"""

from __future__ import annotations

import copy
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import torch
from safetensors.torch import load_file
from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict
from training_helpers import (
    EVAL_BLOCKS,
    REPO,
    VENV_BIN,
    check_trained_and_reloadable,
    clean_env,
    free_port,
    logged,
    pretrain_command,
    run,
    write_recipe,
)
from transformers import AutoModelForCausalLM

from hfscratch.models.hfscratch import HFScratchConfig
from hfscratch.training.optim import MuonWithAdamW

STEPS, SAVE_EVERY = 8, 4
PARAMETERS = 21  # 2 decoder layers of 9 tensors, the embeddings, the final norm and the untied head


@pytest.mark.parametrize("config", ["fsdp2", "multinode-fsdp2"])
def test_fsdp2_launch_configs_read_with_accelerate_and_wrap_the_decoder_layer(config):
    from accelerate.commands.config.config_args import load_config_from_file

    from hfscratch.models.hfscratch import HFScratchForCausalLM

    launch = load_config_from_file(str(REPO / f"recipes/accelerate/{config}.yaml"))
    assert launch.distributed_type == "FSDP" and launch.mixed_precision in (None, "no")  # the recipe's bf16 decides
    fsdp = launch.fsdp_config
    assert (fsdp["fsdp_version"], fsdp["fsdp_state_dict_type"]) == (2, "SHARDED_STATE_DICT")
    assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert [fsdp["fsdp_transformer_layer_cls_to_wrap"]] == HFScratchForCausalLM._no_split_modules
    if config.startswith("multinode"):
        assert (launch.num_machines, launch.num_processes, launch.rdzv_backend) == (4, 32, "static")
        assert fsdp == load_config_from_file(str(REPO / "recipes/accelerate/fsdp2.yaml")).fsdp_config


def fsdp2_launch() -> list[str]:
    return [
        str(VENV_BIN / "accelerate"),
        "launch",
        "--config_file",
        str(REPO / "recipes/accelerate/fsdp2.yaml"),
        "--num_processes",
        "2",
        "--main_process_port",
        str(free_port()),
    ]


def fsdp2_recipe(tmp_path: Path, corpus: Path, name: str, **keys) -> list[str]:
    recipe = write_recipe(
        tmp_path / f"{name}.yaml",
        corpus,
        tmp_path / name,
        max_steps=STEPS,
        global_batch_tokens=1024,  # 2 processes x 4 rows x 64 tokens x 2 micro-batches
        eval_strategy="steps",
        eval_steps=STEPS,
        max_eval_samples=EVAL_BLOCKS,
        save_strategy="steps",
        save_steps=SAVE_EVERY,
        resume_from_checkpoint="auto",
        **keys,
    )
    return pretrain_command([str(recipe)], fsdp2_launch())


def run_info(out: Path) -> dict:
    return json.loads((out / "run_info.json").read_text())


def check_sharded(info: dict) -> None:
    assert (info["distributed_type"], info["world_size"], info["deepspeed"]) == ("FSDP", 2, False)
    assert info["parameter_placements"] == {"Shard(dim=0)": PARAMETERS}  # every parameter a sharded DTensor
    assert info["parameters_on_rank0"] == info["parameters"] // 2  # each of 2 ranks holds half of every tensor


def check_checkpoint_sharded(checkpoint: Path) -> None:
    """torch.distributed.checkpoint folders, one file per rank, for the weights and the optimizer."""
    for part in ("pytorch_model_fsdp_0", "optimizer_0"):
        assert sorted(p.name for p in (checkpoint / part).glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]
    assert not (checkpoint / "model.safetensors").exists()


def check_trained_and_reloadable_with_its_own_code(out: Path, corpus: Path) -> None:
    # The model's own code travels with it, not the FSDP subclass `fully_shard` made (torch's files).
    assert json.loads((out / "config.json").read_text())["auto_map"]["AutoModelForCausalLM"] == (
        "modeling_hfscratch.HFScratchForCausalLM"
    )
    assert not list(out.glob("_fsdp*.py"))
    check_trained_and_reloadable(out, corpus, STEPS)


def kill_tree_after(command: list[str], checkpoint: Path) -> None:
    """Start `command`, and SIGKILL it and every process under it once `checkpoint` is complete (torchrun starts
    its workers in sessions of their own: killing the launcher alone would leave them training)."""
    process = subprocess.Popen(command, cwd=REPO, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not (checkpoint / "trainer_state.json").exists():
            assert process.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 180 s"
            time.sleep(0.01)
        workers = psutil.Process(process.pid).children(recursive=True)
        process.kill()
        for worker in workers:
            worker.kill()
        psutil.wait_procs(workers, timeout=30)  # gone before the resumed run starts
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory, packed_corpus: Path) -> Path:
    """An uninterrupted FSDP2 run with AdamW, checkpointed every SAVE_EVERY steps."""
    tmp_path = tmp_path_factory.mktemp("fsdp2")
    run(fsdp2_recipe(tmp_path, packed_corpus, "straight"))
    return tmp_path / "straight"


def test_fsdp2_shards_every_parameter_trains_and_saves_one_reloadable_model(straight, packed_corpus):
    check_sharded(run_info(straight))
    assert run_info(straight)["gradient_accumulation_steps"] == 2
    check_checkpoint_sharded(straight / f"checkpoint-{STEPS}")
    check_trained_and_reloadable_with_its_own_code(straight, packed_corpus)


def test_fsdp2_run_killed_and_resumed_matches_an_uninterrupted_one(straight, packed_corpus, tmp_path):
    command = fsdp2_recipe(tmp_path, packed_corpus, "interrupted")
    out = tmp_path / "interrupted"
    kill_tree_after(command, out / f"checkpoint-{SAVE_EVERY}")
    assert not (out / "model.safetensors").exists(), "killed too late: the run had finished"
    run(command)  # the same command again: `auto` finds the sharded checkpoint
    check_sharded(run_info(out))
    expected, resumed = load_file(straight / "model.safetensors"), load_file(out / "model.safetensors")
    assert expected.keys() == resumed.keys()
    assert all(expected[name].equal(resumed[name]) for name in expected), "weights differ after resume"
    assert logged(out, "loss") == logged(straight, "loss")  # every step, before and after the kill


@pytest.mark.slow
def test_fsdp2_with_muon_trains_on_dtensors_and_resumes_exactly(packed_corpus, tmp_path):
    """torch.optim.Muon steps DTensors (its Newton-Schulz iterations run on the global matrix through DTensor
    ops); its states go through torch.distributed.checkpoint like AdamW's."""
    run(fsdp2_recipe(tmp_path, packed_corpus, "muon", matrix_optimizer="muon"))
    out = tmp_path / "muon"
    check_sharded(run_info(out))
    check_trained_and_reloadable_with_its_own_code(out, packed_corpus)
    resumed = tmp_path / "resumed"  # the same run again from its middle checkpoint
    resumed.mkdir()
    shutil.copytree(out / f"checkpoint-{SAVE_EVERY}", resumed / f"checkpoint-{SAVE_EVERY}")
    run(fsdp2_recipe(tmp_path, packed_corpus, "resumed", matrix_optimizer="muon"))
    expected, got = load_file(out / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(expected[name].equal(got[name]) for name in expected), "weights differ after resume"
    assert logged(resumed, "loss") == logged(out, "loss")  # the steps before from the checkpoint, the rest anew


def test_muon_with_adamw_state_round_trips_through_torch_distributed_checkpoint():
    """FSDP2 checkpoints hold the optimizer as torch.distributed.checkpoint reads it: both inner optimizers'
    states, every parameter's, and a resumed optimizer steps exactly as the one never saved."""
    config = HFScratchConfig.from_preset(
        "llama", hidden_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=50
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    twin = AutoModelForCausalLM.from_config(config).eval()

    def step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, seed: int) -> None:
        ids = torch.randint(0, 50, (2, 8), generator=torch.Generator().manual_seed(seed))
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    optimizer = MuonWithAdamW(model, 1e-2, 0.1, (0.9, 0.95), 1e-8)
    for seed in range(3):
        step(model, optimizer, seed)
    saved = {key: value.clone() for key, value in model.state_dict().items()}
    state = get_optimizer_state_dict(model, optimizer)
    assert len(state["state"]) == len(list(model.parameters())) and all(state["state"].values())
    twin.load_state_dict(saved)
    resumed = MuonWithAdamW(twin, 1e-2, 0.1, (0.9, 0.95), 1e-8)
    set_optimizer_state_dict(twin, resumed, copy.deepcopy(state))  # not the live tensors
    for seed in (3, 4):
        step(model, optimizer, seed)
        step(twin, resumed, seed)
    assert all(a.equal(b) for a, b in zip(model.parameters(), twin.parameters(), strict=True))
