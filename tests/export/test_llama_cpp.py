"""The exported GGUF in llama.cpp itself (through llama-cpp-python, where it is installed): the same token ids as
the model folder's tokenizer, the same logits, and the same greedy continuation as transformers' `generate()`.

llama-cpp-python ships as an sdist that compiles llama.cpp (several minutes on two cores), so it is not a test
dependency: these tests skip where it is not importable. `pip install llama-cpp-python` to run them.
"""

from __future__ import annotations

import pytest
import torch
from export_helpers import PROBES, original_logits

from hfscratch.export.gguf import export_gguf

llama_cpp = pytest.importorskip(
    "llama_cpp", reason="llama-cpp-python is not installed (an sdist that compiles llama.cpp; not a test dependency)"
)
PROMPT = "the json module encodes"


@pytest.fixture(scope="module")
def gguf_files(model_dir, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("gguf")
    return {q: export_gguf(model_dir, folder / f"{q}.gguf", q).path for q in ("f32", "q8_0")}


def load(path, **kwargs):
    return llama_cpp.Llama(str(path), n_ctx=256, n_threads=1, verbose=False, seed=0, **kwargs)


def test_llama_cpp_tokenizes_like_the_model_folder(model_dir, gguf_files):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    llm = load(gguf_files["f32"], vocab_only=True)
    for text in PROBES:
        ids = tokenizer(text)["input_ids"]
        assert llm.tokenize(text.encode("utf-8"), add_bos=True, special=True) == ids, text  # the file adds no BOS
        assert llm.detokenize(ids, special=True).decode("utf-8") == text


@pytest.mark.parametrize(("quantize", "bound"), [("f32", 1e-3), ("q8_0", 5e-2)])
def test_llama_cpp_computes_the_same_logits(model_dir, gguf_files, quantize, bound):
    """llama.cpp's own kernels (q8_0: activations quantized too), against the model folder as trained."""
    ids, want = original_logits(model_dir, "the json module encodes python objects as text déjà vu 東京 😀")
    llm = load(gguf_files[quantize], logits_all=True)
    llm.eval(ids[0].tolist())
    got = torch.from_numpy(llm.scores[: ids.shape[1]].copy())
    relative = (got - want).abs().max().item() / want.abs().max().item()
    assert relative < bound, relative
    assert (got.argmax(-1) == want.argmax(-1)).float().mean().item() >= 0.95


def test_llama_cpp_generates_what_transformers_generates(model_dir, gguf_files):
    from transformers import AutoTokenizer

    from hfscratch.models.hfscratch import HFScratchForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = HFScratchForCausalLM.from_pretrained(model_dir).eval()
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    want = model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    expected = tokenizer.decode(want[0, ids.shape[1] :])
    answer = load(gguf_files["f32"])(PROMPT, max_tokens=12, temperature=0.0)
    assert answer["choices"][0]["text"] == expected
