"""benchmarks/gpu_throughput.py is ready to run in one go on a GPU: its dry run builds every variant on this CPU
and runs one step of those a CPU can run; the others say why they did not run."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_throughput.py"


@pytest.fixture(scope="module")
def gpu_throughput():
    spec = importlib.util.spec_from_file_location("gpu_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def run_dry(gpu_throughput, tmp_path, *variants: str) -> tuple[dict, dict]:
    out = tmp_path / "gpu.json"
    argv = ["--dry_run", "--json", str(out)] + (["--variants", *variants] if variants else [])
    rows = {row.variant: row for row in gpu_throughput.main(argv)}
    return rows, json.loads(out.read_text())


def test_dry_run_runs_a_step_and_explains_what_needs_a_gpu(gpu_throughput, tmp_path, capsys):
    pytest.importorskip("liger_kernel")
    rows, written = run_dry(gpu_throughput, tmp_path, "sdpa", "fa3+compile", "fa3+compile+liger")
    assert rows["sdpa"].status == "ok" and rows["sdpa"].steps == 1 and rows["sdpa"].tokens_per_s > 0
    assert 0 < rows["sdpa"].loss < 10 and rows["sdpa"].mfu is None  # a CPU has no table peak
    assert rows["fa3+compile"].status == "not run: FlashAttention 3 needs a CUDA GPU"
    # the Liger variant was built and patched (2 layers x 3 modules + the final norm) before stopping
    assert rows["fa3+compile+liger"].liger_patched_modules == 7
    assert written["dry_run"] and [row["variant"] for row in written["rows"]] == list(rows)
    table = capsys.readouterr().out
    assert "| preset | variant | tokens/s | MFU | peak memory GB |" in table and "| tiny | sdpa |" in table


def test_variants_and_presets_cover_the_issue(gpu_throughput):
    variants = gpu_throughput.VARIANTS
    assert [(v.attn_implementation, v.compile, v.liger) for v in variants.values()] == [
        ("sdpa", False, False),
        ("sdpa", True, False),
        ("kernels-community/flash-attn3", True, False),
        ("kernels-community/flash-attn3", True, True),
    ]
    args = gpu_throughput.parse_args([])
    assert args.presets == ["125m", "350m"] and args.seq_len == 2048


@pytest.mark.slow
def test_dry_run_compiles_per_block(gpu_throughput, tmp_path):
    rows, _ = run_dry(gpu_throughput, tmp_path, "sdpa+compile")
    assert rows["sdpa+compile"].status == "ok" and rows["sdpa+compile"].notes == ["compiled per block, fullgraph=True"]
