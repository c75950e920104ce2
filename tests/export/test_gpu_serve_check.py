"""benchmarks/gpu_serve_check.py is ready to run on a GPU machine: its dry run checks what vLLM's Transformers
backend needs of the model folder and prints the serve commands; without vLLM and a GPU the real run says so."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_serve_check.py"


@pytest.fixture(scope="module")
def serve_check():
    spec = importlib.util.spec_from_file_location("gpu_serve_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_dry_run_checks_the_transformers_backend_and_prints_the_commands(serve_check, model_dir, tmp_path, capsys):
    out = tmp_path / "check.json"
    argv = [str(model_dir), "--dry_run", "--port", "8123", "--json", str(out), "--workdir", str(tmp_path)]
    assert serve_check.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["backend_compatible"] and result["attention_calls"] == result["layers"] == 2
    assert result["commands"]["vllm"] == [
        "vllm", "serve", str(model_dir), "--host", "127.0.0.1", "--port", "8123", "--served-model-name",
        "hfscratch", "--max-model-len", "256", "--model-impl", "transformers", "--trust-remote-code",
    ]  # fmt: skip
    assert result["commands"]["sglang"][1:3] == ["-m", "sglang.launch_server"]
    assert result["completion"] is None and result["dry_run"]
    assert "http://127.0.0.1:8123/v1/completions" in capsys.readouterr().out


def test_dry_run_of_the_llama_export_uses_vllms_own_llama(serve_check, model_dir, tmp_path):
    out = tmp_path / "check.json"
    argv = [str(model_dir), "--llama", "--dry_run", "--json", str(out), "--workdir", str(tmp_path)]
    assert serve_check.main(argv) == 0
    result = json.loads(out.read_text())
    served = Path(result["served"])
    assert json.loads((served / "config.json").read_text())["model_type"] == "llama"
    assert (served / "tokenizer.json").is_file()
    assert "--model-impl" not in result["commands"]["vllm"] and "--trust-remote-code" not in result["commands"]["vllm"]


def test_a_model_the_backend_cannot_serve_is_reported(serve_check, model_dir, tmp_path, monkeypatch, capsys):
    from transformers import PreTrainedModel

    # what a model whose class does not set `_supports_attention_backend` answers vLLM
    monkeypatch.setattr(PreTrainedModel, "is_backend_compatible", classmethod(lambda cls: False))
    assert serve_check.main([str(model_dir), "--dry_run", "--workdir", str(tmp_path)]) == 1
    assert "not servable by the Transformers backend: is_backend_compatible()=False" in capsys.readouterr().err


def test_the_real_run_needs_vllm_and_a_gpu(serve_check, model_dir, tmp_path, capsys):
    import torch

    if importlib.util.find_spec("vllm") is not None and torch.cuda.is_available():
        pytest.skip("this machine can run the real check: python benchmarks/gpu_serve_check.py")
    assert serve_check.main([str(model_dir), "--workdir", str(tmp_path)]) == 1
    assert "needs vLLM and a CUDA GPU" in capsys.readouterr().err
