"""Serve a model folder with vLLM on a GPU and get one completion from its OpenAI endpoint on 127.0.0.1.

    python benchmarks/gpu_serve_check.py [MODEL_DIR] [--llama] [--port N] [--timeout_s 900] [--dry_run] [--json F]
                                         [--workdir DIR]

MODEL_DIR (default runs/quickstart/pretrain) is served as it is, through vLLM's Transformers backend
(`vllm serve MODEL_DIR --model-impl transformers --trust-remote-code`); with --llama, its Llama export
(`hfscratch.models.convert.to_llama`, written to a temporary folder) is served by vLLM's own Llama implementation.
The check starts the server, waits for `/v1/models`, asks `/v1/completions` for a greedy continuation, prints it,
and stops the server; the exit status is 0 only if a completion came back.

Before any of that (and alone, with --dry_run, which needs neither a GPU nor vLLM) it checks what vLLM's
Transformers backend needs of a model: the class declares `_supports_attention_backend` (what
`is_backend_compatible()` returns, which vLLM asks), and its attention really goes through transformers'
`AttentionInterface`: an attention function registered under a new name, as vLLM registers its own, must be
called once per layer when the model runs with that name. Then it prints the commands it would run, and the
SGLang ones.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

PROMPT = "The json module"
PROBE_ATTENTION = "hfscratch_serve_probe"  # the name vLLM's would have ("vllm")


@dataclass
class ServeCheck:
    model_dir: str
    served: str  # the folder vLLM is pointed at
    backend: str  # "transformers" (the hfscratch classes) or "vllm-llama" (the Llama export)
    backend_compatible: bool = False
    attention_calls: int = 0
    layers: int = 0
    port: int = 0
    commands: dict[str, list[str]] = field(default_factory=dict)
    dry_run: bool = True
    completion: str | None = None
    completion_tokens: int | None = None
    startup_s: float | None = None
    error: str | None = None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check_transformers_backend(model_dir: Path, check: ServeCheck) -> None:
    """What vLLM's Transformers backend needs: the flag, and attention dispatched through AttentionInterface."""
    import torch
    from transformers import AttentionInterface, AutoModelForCausalLM, AutoTokenizer
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    calls = []

    def probe(module, query, key, value, attention_mask, **kwargs):
        calls.append(module)
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register(PROBE_ATTENTION, probe)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, trust_remote_code=True, attn_implementation=PROBE_ATTENTION, dtype=torch.float32
    ).eval()
    check.backend_compatible = bool(type(model).is_backend_compatible())
    check.layers = model.config.num_hidden_layers
    ids = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=True)(PROMPT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        model(ids)
    check.attention_calls = len(calls)


def export_llama(model_dir: Path, out: Path) -> Path:
    """The Llama export with the tokenizer files beside it, as `hfscratch push --llama` uploads it."""
    import shutil

    from hfscratch.models.convert import to_llama
    from hfscratch.models.hfscratch import HFScratchForCausalLM

    to_llama(HFScratchForCausalLM.from_pretrained(model_dir)).save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, out / name)
    return out


def serve_commands(served: Path, transformers_backend: bool, port: int, max_len: int) -> dict[str, list[str]]:
    vllm = ["vllm", "serve", str(served), "--host", "127.0.0.1", "--port", str(port)]
    vllm += ["--served-model-name", "hfscratch", "--max-model-len", str(max_len)]
    sglang = [sys.executable, "-m", "sglang.launch_server", "--model-path", str(served)]
    sglang += ["--host", "127.0.0.1", "--port", str(port), "--context-length", str(max_len)]
    if transformers_backend:
        vllm += ["--model-impl", "transformers", "--trust-remote-code"]
        sglang += ["--model-impl", "transformers", "--trust-remote-code"]
    return {"vllm": vllm, "sglang": sglang}


def request(url: str, body: dict | None = None, timeout: float = 10) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as response:
        return json.loads(response.read())


def serve_and_complete(check: ServeCheck, port: int, timeout_s: float, log_path: Path) -> None:
    """Start vLLM, wait until it lists the model, ask for one greedy completion, stop it."""
    base = f"http://127.0.0.1:{port}/v1"
    started = time.perf_counter()
    with open(log_path, "w") as log:
        server = subprocess.Popen(check.commands["vllm"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"vllm serve exited with {server.returncode} before it answered")
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"vllm serve did not answer within {timeout_s:.0f} s")
            try:
                models = request(f"{base}/models", timeout=5)
                if any(m.get("id") == "hfscratch" for m in models.get("data", [])):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass
            time.sleep(2)
        check.startup_s = time.perf_counter() - started
        answer = request(
            f"{base}/completions",
            {"model": "hfscratch", "prompt": PROMPT, "max_tokens": 16, "temperature": 0},
            timeout=120,
        )
        check.completion = answer["choices"][0]["text"]
        check.completion_tokens = answer.get("usage", {}).get("completion_tokens")
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server's own process group: its engine workers with it
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def run(args: argparse.Namespace) -> ServeCheck:
    model_dir = Path(args.model_dir).resolve()
    if not (model_dir / "config.json").is_file():
        raise SystemExit(f"gpu_serve_check: {model_dir} is not a model folder (no config.json)")
    config = json.loads((model_dir / "config.json").read_text())
    # the Llama export and the server's log; kept, since the printed commands name the export
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gpu-serve-check-"))
    served = export_llama(model_dir, workdir / "llama") if args.llama else model_dir
    check = ServeCheck(str(model_dir), str(served), "vllm-llama" if args.llama else "transformers")
    check_transformers_backend(served, check)
    if not check.backend_compatible or check.attention_calls != check.layers:
        check.error = (
            f"not servable by the Transformers backend: is_backend_compatible()={check.backend_compatible}, "
            f"{check.attention_calls} calls of a registered attention for {check.layers} layers"
        )
        return check
    check.port = args.port or free_port()
    check.commands = serve_commands(served, not args.llama, check.port, config.get("max_position_embeddings", 2048))
    check.dry_run = args.dry_run
    if args.dry_run:
        return check
    import importlib.util

    import torch

    if importlib.util.find_spec("vllm") is None or not torch.cuda.is_available():
        check.error = "needs vLLM and a CUDA GPU (pip install vllm); --dry_run checks the rest"
        return check
    try:
        serve_and_complete(check, check.port, args.timeout_s, workdir / "vllm.log")
    except (RuntimeError, TimeoutError, urllib.error.URLError, KeyError) as exc:
        tail = (workdir / "vllm.log").read_text(errors="replace").splitlines()[-15:]
        check.error = f"{type(exc).__name__}: {exc}; vllm.log ends: {' | '.join(tail)}"
    return check


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", nargs="?", default="runs/quickstart/pretrain")
    parser.add_argument("--llama", action="store_true", help="serve the Llama export (vLLM's own Llama) instead")
    parser.add_argument("--port", type=int, default=0, help="default: a free port on 127.0.0.1")
    parser.add_argument("--timeout_s", type=float, default=900, help="how long the server may take to start")
    parser.add_argument("--dry_run", action="store_true", help="check the folder and print the commands only")
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("--workdir", help="where the Llama export and vllm.log go (default: a new temporary folder)")
    args = parser.parse_args(argv)
    check = run(args)
    print(f"model: {check.model_dir} (served: {check.served}, backend: {check.backend})")
    print(
        f"transformers backend: is_backend_compatible() {check.backend_compatible}, attention through "
        f"AttentionInterface in {check.attention_calls} of {check.layers} layers"
    )
    for name, command in check.commands.items():
        print(f"{name}: {shlex.join(command)}")
    if check.commands:
        print(
            f"completion: curl -s http://127.0.0.1:{check.port}/v1/completions -H "
            "'Content-Type: application/json' -d "
            + shlex.quote(json.dumps({"model": "hfscratch", "prompt": PROMPT, "max_tokens": 16, "temperature": 0}))
        )
    if check.completion is not None:
        print(f"vllm answered in {check.startup_s:.0f} s: {PROMPT!r} -> {check.completion!r}")
    if check.error:
        print(f"gpu_serve_check: {check.error}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(check), indent=2))
    return 1 if check.error else 0


if __name__ == "__main__":
    sys.exit(main())
