"""`hfscratch export --format gguf`: the file transformers reads back has the original's logits and token ids,
holds the tensor types asked for, and bad input gets one line, exit 2, and no file."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from export_helpers import PROBES, gguf_contents, gguf_metadata, load_gguf, original_logits, tensor_types

from hfscratch.cli import main
from hfscratch.core.recipes import RecipeError
from hfscratch.export import gguf as gguf_export
from hfscratch.export.check import RELATIVE_TOLERANCE, check_gguf
from hfscratch.export.gguf import PlannedTensor, export_gguf

TEXT = "the json module encodes python objects as text déjà vu 東京 😀"
# `--check`'s bounds (largest |logit difference| / largest |logit|) are the ones asserted; on this model over the
# check's probe texts the file measured 3.9e-7 (f32), 4.9e-4 (f16) and 9.8e-3 (q8_0).
NORMS = ("attn_norm.weight", "ffn_norm.weight", "output_norm.weight")


def export(model_dir, tmp_path, quantize, **kwargs):
    return export_gguf(model_dir, tmp_path / f"model-{quantize}.gguf", quantize, **kwargs)


@pytest.mark.parametrize("quantize", ["f32", "f16", "q8_0"])
def test_transformers_reads_back_the_same_logits(model_dir, tmp_path, quantize):
    result = export(model_dir, tmp_path, quantize)
    model, _ = load_gguf(result.path)
    assert type(model).__name__ == "LlamaForCausalLM"
    ids, want = original_logits(model_dir, TEXT)
    with torch.no_grad():
        got = model(ids).logits[0]
    relative = (got - want).abs().max().item() / want.abs().max().item()
    assert relative < RELATIVE_TOLERANCE[quantize], relative
    if quantize == "f32":  # the weights are the same numbers: what differs is float32 arithmetic order
        assert (got - want).abs().max().item() < 1e-4
    # the most likely next token: the same everywhere in f32; rounding may flip a near tie in f16 and q8_0
    assert (got.argmax(-1) == want.argmax(-1)).float().mean().item() >= (1.0 if quantize == "f32" else 0.95)


@pytest.mark.parametrize(
    ("quantize", "matrix_type", "file_type"), [("f32", "F32", 0), ("f16", "F16", 1), ("q8_0", "Q8_0", 7)]
)
def test_the_file_holds_the_types_asked_for(model_dir, tmp_path, quantize, matrix_type, file_type):
    """Norms in F32 in every file (as llama.cpp writes them), every matrix in the asked type, the file type said."""
    result = export(model_dir, tmp_path, quantize)
    types = tensor_types(result.path)
    assert len(types) == 2 * 9 + 3  # per layer 7 matrices and 2 norms; the embeddings, the final norm, the head
    for name, kind in types.items():
        assert kind == ("F32" if name.endswith(NORMS) else matrix_type), name
    assert result.tensor_types == dict(Counter(types.values()))
    assert not result.fallbacks
    assert gguf_metadata(result.path, "general.file_type") == file_type
    assert gguf_metadata(result.path, "general.architecture") == "llama"


def test_smaller_types_give_smaller_files(model_dir, tmp_path):
    sizes = {q: export(model_dir, tmp_path, q).size_bytes for q in ("f32", "f16", "q8_0")}
    assert sizes["q8_0"] < 0.6 * sizes["f16"] < 0.6 * sizes["f32"], sizes


def test_tokenizer_round_trip(model_dir, tmp_path):
    """transformers rebuilds the tokenizer from the GGUF metadata: the same ids for learned words, unicode it never
    saw (byte fallback through the byte alphabet), runs of whitespace and special tokens, and the text back."""
    from transformers import AutoTokenizer

    _, rebuilt = load_gguf(export(model_dir, tmp_path, "f16").path)
    original = AutoTokenizer.from_pretrained(model_dir)
    for text in PROBES:
        ids = original(text)["input_ids"]
        assert rebuilt(text)["input_ids"] == ids, text
        assert rebuilt.decode(ids) == text
    assert (rebuilt.bos_token, rebuilt.eos_token) == (original.bos_token, original.eos_token)


def test_tokenizer_metadata_is_llama_cpps_gpt2_vocabulary(model_dir, tmp_path):
    path = export(model_dir, tmp_path, "f16").path
    config = json.loads((model_dir / "config.json").read_text())
    tokens = gguf_metadata(path, "tokenizer.ggml.tokens")
    assert gguf_metadata(path, "tokenizer.ggml.model") == "gpt2"
    assert gguf_metadata(path, "tokenizer.ggml.pre") == "gpt-2"
    assert len(tokens) == config["vocab_size"] and tokens[-1] == f"[PAD{config['vocab_size'] - 1}]"
    assert tokens[config["bos_token_id"]] == "<|begin_of_text|>"
    assert gguf_metadata(path, "tokenizer.ggml.add_bos_token") is False  # the kit's tokenizer adds none


def test_tied_embeddings_write_no_output_tensor(make_model_dir, tmp_path):
    folder = make_model_dir(tie_word_embeddings=True)
    path = export(folder, tmp_path, "f32").path
    assert "output.weight" not in tensor_types(path)
    model, _ = load_gguf(path)
    assert model.config.tie_word_embeddings
    ids, want = original_logits(folder, TEXT)
    with torch.no_grad():
        assert (model(ids).logits[0] - want).abs().max().item() < 1e-4


def test_head_dim_other_than_width_over_heads(make_model_dir, tmp_path):
    """head_dim 32 with 4 heads of a 64-wide model: the file says it twice (rope.dimension_count for transformers,
    attention.key_length for llama.cpp)."""
    folder = make_model_dir(head_dim=32)
    path = export(folder, tmp_path, "f32").path
    assert gguf_metadata(path, "llama.attention.key_length") == 32
    model, _ = load_gguf(path)
    ids, want = original_logits(folder, TEXT)
    with torch.no_grad():
        assert (model(ids).logits[0] - want).abs().max().item() < 1e-4


def test_rows_q8_0_cannot_hold_fall_back_to_f16_and_are_named(make_model_dir, tmp_path):
    folder = make_model_dir(hidden_size=48, intermediate_size=96, num_attention_heads=4, num_key_value_heads=2)
    result = export(folder, tmp_path, "q8_0")
    types = tensor_types(result.path)
    # every matrix reads 48-wide rows except ffn_down (96): only that one fits Q8_0's 32-value blocks
    q8_0 = {name for name, kind in types.items() if kind == "Q8_0"}
    assert q8_0 == {"blk.0.ffn_down.weight", "blk.1.ffn_down.weight"}
    assert sorted(result.fallbacks) == sorted(n for n, k in types.items() if k == "F16")
    assert len(result.fallbacks) == 2 * 6 + 2


def test_a_llama_folder_exports_too(model_dir, tmp_path):
    """`hfscratch push --llama`'s export (a plain LlamaForCausalLM folder) gives the same tensors and metadata."""
    from hfscratch.models.convert import to_llama
    from hfscratch.models.hfscratch import HFScratchForCausalLM

    llama_dir = tmp_path / "llama"
    to_llama(HFScratchForCausalLM.from_pretrained(model_dir)).save_pretrained(llama_dir)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (llama_dir / name).write_bytes((model_dir / name).read_bytes())
    ours = gguf_contents(export_gguf(model_dir, tmp_path / "a.gguf", "f32").path)
    theirs = gguf_contents(export_gguf(llama_dir, tmp_path / "b.gguf", "f32").path)
    assert ours == theirs


def test_check_catches_a_wrong_file(model_dir, tmp_path, monkeypatch):
    """The check can fail: a file written without llama.cpp's q/k row permutation loads, but computes other logits."""
    real_plan = gguf_export.plan_tensors

    def unpermuted(llama, matrix_type):
        planned, fallbacks = real_plan(llama, matrix_type)
        for tensor in planned:
            tensor.heads = None
        return planned, fallbacks

    monkeypatch.setattr(gguf_export, "plan_tensors", unpermuted)
    check = check_gguf(model_dir, export(model_dir, tmp_path, "f32").path)
    assert check.problem("f32") is not None and "logits differ" in check.problem("f32")
    assert check.token_mismatches == []


# -- the command --------------------------------------------------------------------------------------------


def test_cli_exports_and_checks(model_dir, tmp_path, capsys):
    out = tmp_path / "m.gguf"
    code = main(["export", str(model_dir), "--format", "gguf", "--outfile", str(out), "--quantize", "q8_0", "--check"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"wrote {out}: " in printed and "q8_0 (F32 x5, Q8_0 x16)" in printed
    assert "check: transformers reads it back" in printed and "tokenizer ids equal" in printed


def run_export(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()  # what the fixtures printed
    code = main(["export", *map(str, args)])
    return code, capsys.readouterr().err.strip()


def test_existing_outfile_is_kept_without_overwrite(model_dir, tmp_path, capsys):
    out = tmp_path / "m.gguf"
    assert run_export(capsys, model_dir, "--outfile", out, "--quantize", "f32")[0] == 0
    before = out.read_bytes()
    code, err = run_export(capsys, model_dir, "--outfile", out, "--quantize", "q8_0")
    assert (code, err) == (2, f"hfscratch export: error: outfile {out} exists; pass --overwrite to replace it")
    assert out.read_bytes() == before
    assert run_export(capsys, model_dir, "--outfile", out, "--quantize", "q8_0", "--overwrite")[0] == 0
    assert out.stat().st_size < len(before)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"norm_type": "layernorm"}, "norm_type='layernorm' cannot be exported to Llama"),  # to_llama's own check
        ({"position_embedding_type": "alibi"}, "position_embedding_type='alibi' cannot be exported to Llama"),
        ({"hidden_act": "gelu"}, "hidden_act='gelu' (GGUF's llama architecture computes a SiLU-gated MLP)"),
        ({"attention_bias": True}, "attention_bias/mlp_bias=True (transformers' GGUF reader loads Llama without"),
        (
            {"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}},
            "rope_type='linear' (the GGUF round trip keeps only rope_theta)",
        ),
    ],
)
def test_layouts_gguf_cannot_express_are_refused(make_model_dir, tmp_path, capsys, overrides, message):
    folder = make_model_dir(steps=0, **overrides)
    code, err = run_export(capsys, folder, "--outfile", tmp_path / "out" / "m.gguf")
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"hfscratch export: error: model {folder}: cannot be exported to GGUF: ") and message in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_folder_without_tokenizer_is_refused(model_dir, tmp_path, capsys):
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((model_dir / name).read_bytes())
    code, err = run_export(capsys, folder, "--outfile", tmp_path / "m.gguf")
    assert code == 2 and err.startswith(f"hfscratch export: error: model {folder}: no tokenizer files"), err
    assert not (tmp_path / "m.gguf").exists()


def with_normalizer(model_dir, folder):
    backend = json.loads((model_dir / "tokenizer.json").read_text())
    backend["normalizer"] = {"type": "NFKC"}
    (folder / "tokenizer.json").write_text(json.dumps(backend))
    (folder / "tokenizer_config.json").write_bytes((model_dir / "tokenizer_config.json").read_bytes())


def with_prefix_space(model_dir, folder):
    backend = json.loads((model_dir / "tokenizer.json").read_text())
    backend["pre_tokenizer"]["add_prefix_space"] = True
    (folder / "tokenizer.json").write_text(json.dumps(backend))
    (folder / "tokenizer_config.json").write_bytes((model_dir / "tokenizer_config.json").read_bytes())


def unigram(model_dir, folder):
    import random

    from export_helpers import corpus

    from hfscratch.tokenization.arguments import TokenizeArguments
    from hfscratch.tokenization.tokenizer import train_tokenizer

    args = TokenizeArguments(corpus="-", out="-", vocab_size=300, tokenizer_type="unigram")
    train_tokenizer([corpus(random.Random(0))], args).save_pretrained(folder)


@pytest.mark.parametrize(
    ("make_tokenizer", "why"),
    [
        (with_normalizer, "it has a normalizer (NFKC), which a GGUF cannot carry"),
        (unigram, "its model is 'Unigram' (GGUF's byte-level vocabulary needs BPE)"),
        (with_prefix_space, 'its pre-tokenizer is {"add_prefix_space": true, "trim_offsets": true, '),
    ],
)
def test_a_tokenizer_gguf_cannot_express_is_refused(model_dir, tmp_path, capsys, make_tokenizer, why):
    """llama.cpp and transformers would rebuild these differently from the GGUF metadata: refused by name."""
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((model_dir / name).read_bytes())
    make_tokenizer(model_dir, folder)
    code, err = run_export(capsys, folder, "--outfile", tmp_path / "m.gguf")
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"hfscratch export: error: tokenizer: cannot be written to GGUF: {why}"), err
    assert not (tmp_path / "m.gguf").exists()


def test_unknown_quantization_and_format_are_refused(model_dir, tmp_path, capsys):
    code, err = run_export(capsys, model_dir, "--outfile", tmp_path / "m.gguf", "--quantize", "q4_k")
    assert code == 2 and "q4_k" in err and "f32" in err and len(err.splitlines()) == 1, err
    code, err = run_export(capsys, model_dir, "--outfile", tmp_path / "m.gguf", "--format", "onnx")
    assert code == 2 and "onnx" in err and "gguf" in err, err
    assert not list(tmp_path.iterdir())


def test_an_interrupted_export_leaves_no_file(model_dir, tmp_path, monkeypatch):
    """Atomic write: a failure while tensors are written leaves neither the .gguf nor a partial file, and an
    existing file being overwritten is left as it was."""
    out = tmp_path / "m.gguf"
    out.write_bytes(b"the previous export")
    written = []
    real_data = PlannedTensor.data

    def failing_data(self):
        if len(written) == 5:
            raise OSError(28, "No space left on device")
        written.append(self.name)
        return real_data(self)

    monkeypatch.setattr(PlannedTensor, "data", failing_data)
    with pytest.raises(OSError, match="No space left"):
        export_gguf(model_dir, out, "f16", overwrite=True)
    assert len(written) == 5
    assert out.read_bytes() == b"the previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["m.gguf"]
    with pytest.raises(RecipeError, match="exists; pass --overwrite"):
        export_gguf(model_dir, out, "f16")
