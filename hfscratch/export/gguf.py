"""A model folder as one GGUF file (llama.cpp's format), through the Llama export and the `gguf` package's writer.

The model goes through `hfscratch.models.convert.to_llama` first (a plain `LlamaForCausalLM`, same logits), so the
layout checks are that module's; GGUF's `llama` architecture and transformers' GGUF reader add three of their own
(`gguf_layout_problem`: SiLU, no biases, plain RoPE). The file is what llama.cpp's `convert_hf_to_gguf.py` writes
for a Llama checkpoint: the same metadata keys, the same tensor names (`gguf.get_tensor_name_map`), query and key
rows permuted the way llama.cpp's RoPE reads them, norms kept in F32, and the matrices in the asked type (a
matrix whose rows do not fill Q8_0's 32-value blocks falls back to F16, as there). The tokenizer goes in as a
`gpt2` vocabulary (`hfscratch.export.vocab`).

Tensors are converted one at a time while the file is written (the writer knows every size in advance), so an
export needs the model's memory plus one tensor. The file is written under a temporary name beside the target
and renamed when complete: an interrupted export leaves no `.gguf`.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfscratch.core.recipes import RecipeError

# --quantize -> (gguf.LlamaFileType, type of the 2-D weights); 1-D tensors (norms) are F32 in every file.
QUANTIZATIONS = {"f32": ("ALL_F32", "F32"), "f16": ("MOSTLY_F16", "F16"), "q8_0": ("MOSTLY_Q8_0", "Q8_0")}
ARCHITECTURE = "llama"


@dataclass
class GGUFExport:
    """What `export_gguf` wrote."""

    path: Path
    quantize: str
    size_bytes: int
    tensor_types: dict[str, int]  # GGML type name -> number of tensors
    seconds: float
    fallbacks: list[str] = field(default_factory=list)  # tensors written as F16 because Q8_0 could not hold them


def gguf_layout_problem(config: Any) -> str | None:
    """Why a `LlamaConfig` is not one GGUF's `llama` architecture round-trips (through llama.cpp and transformers'
    GGUF reader, which sets neither biases nor a RoPE scaling for Llama), or None."""
    if config.hidden_act != "silu":
        return f"hidden_act={config.hidden_act!r} (GGUF's llama architecture computes a SiLU-gated MLP)"
    if config.attention_bias or config.mlp_bias:
        return "attention_bias/mlp_bias=True (transformers' GGUF reader loads Llama without biases)"
    rope_type = (config.rope_parameters or {}).get("rope_type", "default")
    if rope_type != "default":
        return f"rope_type={rope_type!r} (the GGUF round trip keeps only rope_theta)"
    return None


def load_as_llama(model_dir: Path, weights: bool = True) -> Any:
    """The folder's model as a float32 `LlamaForCausalLM`: an hfscratch model through `to_llama`, or a Llama folder
    (`hfscratch push --llama`'s export) as it is. With `weights=False` it is built on the meta device from
    config.json alone, so a layout that cannot be exported is refused before any weight is read."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from hfscratch.models.hfscratch import HFScratchConfig, HFScratchForCausalLM
    from hfscratch.models.loading import read_config

    classes = {"llama": (LlamaForCausalLM, LlamaConfig), "hfscratch": (HFScratchForCausalLM, HFScratchConfig)}
    model_type = read_config(model_dir).get("model_type")
    if model_type not in classes:
        raise RecipeError(
            f"model {model_dir}: model_type {model_type!r} cannot be exported to GGUF (expected an hfscratch model "
            "with Llama's layout, or a Llama folder)"
        )
    model_class, config_class = classes[model_type]
    if weights:
        return as_llama(model_class.from_pretrained(model_dir, dtype=torch.float32), model_dir)
    with torch.device("meta"):
        return as_llama(model_class(config_class.from_pretrained(model_dir)), model_dir)


def as_llama(model: Any, model_dir: Path) -> Any:
    from transformers import LlamaForCausalLM

    from hfscratch.models.convert import to_llama

    if isinstance(model, LlamaForCausalLM):
        return model.eval()
    try:
        return to_llama(model).eval()  # the layout checks are to_llama's
    except ValueError as exc:
        raise RecipeError(f"model {model_dir}: cannot be exported to GGUF: {exc}") from None


@dataclass
class PlannedTensor:
    name: str  # GGUF name, e.g. blk.0.attn_q.weight
    source: Any  # the torch tensor
    qtype: Any  # gguf.GGMLQuantizationType
    heads: int | None = None  # rows to permute for llama.cpp's RoPE: the number of heads of a q/k projection

    def data(self) -> Any:
        import gguf

        weights = self.source.detach().float().cpu()
        if self.heads is not None:  # llama.cpp's LlamaModel.permute: rotate pairs (i, i + d/2) -> (2i, 2i + 1)
            weights = weights.reshape(self.heads, 2, weights.shape[0] // self.heads // 2, *weights.shape[1:])
            weights = weights.swapaxes(1, 2).reshape(self.source.shape)
        return gguf.quants.quantize(weights.numpy(), self.qtype)

    def info(self) -> tuple[tuple[int, ...], Any, int]:
        """(shape as stored, numpy dtype, bytes), what `GGUFWriter.add_tensor_info` takes."""
        import gguf
        import numpy as np

        shape = tuple(self.source.shape)
        if self.qtype == gguf.GGMLQuantizationType.F32:
            return shape, np.dtype(np.float32), 4 * self.source.numel()
        if self.qtype == gguf.GGMLQuantizationType.F16:
            return shape, np.dtype(np.float16), 2 * self.source.numel()
        byte_shape = gguf.quant_shape_to_byte_shape(shape, self.qtype)
        return byte_shape, np.dtype(np.uint8), int(np.prod(byte_shape))


def plan_tensors(llama: Any, matrix_type: Any) -> tuple[list[PlannedTensor], list[str]]:
    """Every weight under its GGUF name and type, and the names of the matrices that fell back to F16."""
    import gguf

    config = llama.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    planned, fallbacks = [], []
    for hf_name, tensor in llama.state_dict().items():
        if hf_name == "lm_head.weight" and config.tie_word_embeddings:
            continue  # llama.cpp (and transformers' reader) take a missing output.weight as tied
        base, suffix = hf_name.rsplit(".", 1)
        gguf_base = names.get_name(base)
        if gguf_base is None:
            raise RecipeError(f"tensor {hf_name}: has no name in GGUF's llama architecture")
        name = f"{gguf_base}.{suffix}"
        qtype = matrix_type if tensor.ndim == 2 else gguf.GGMLQuantizationType.F32
        if qtype not in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            block = gguf.GGML_QUANT_SIZES[qtype][0]
            if tensor.shape[-1] % block:
                qtype = gguf.GGMLQuantizationType.F16
                fallbacks.append(name)
        heads = None
        if hf_name.endswith("self_attn.q_proj.weight"):
            heads = config.num_attention_heads
        elif hf_name.endswith("self_attn.k_proj.weight"):
            heads = config.num_key_value_heads
        planned.append(PlannedTensor(name, tensor, qtype, heads))
    return planned, fallbacks


def add_hyperparameters(writer: Any, config: Any) -> None:
    """The `llama.*` keys llama.cpp's converter writes for a Llama checkpoint."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    writer.add_vocab_size(config.vocab_size)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(head_dim)  # transformers reads head_dim from here
    writer.add_key_length(head_dim)  # llama.cpp from here (needed when head_dim != hidden / heads)
    writer.add_value_length(head_dim)
    writer.add_rope_freq_base(float(config.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)


def write_gguf(path: Path, name: str, llama: Any, vocab: Any, quantize: str) -> tuple[Counter, list[str]]:
    """Write the file at `path` (the caller renames it into place); returns the tensor types and the fallbacks."""
    import gguf

    file_type, matrix_type = QUANTIZATIONS[quantize]
    planned, fallbacks = plan_tensors(llama, gguf.GGMLQuantizationType[matrix_type])
    writer = gguf.GGUFWriter(path, ARCHITECTURE)
    try:
        writer.add_type(gguf.GGUFType.MODEL)
        writer.add_name(name)
        writer.add_file_type(gguf.LlamaFileType[file_type])
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        add_hyperparameters(writer, llama.config)
        vocab.add_to(writer)
        for tensor in planned:
            shape, dtype, nbytes = tensor.info()
            writer.add_tensor_info(tensor.name, shape, dtype, nbytes, raw_dtype=tensor.qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for tensor in planned:
            writer.write_tensor_data(tensor.data())
    finally:
        writer.close()
    return Counter(t.qtype.name for t in planned), fallbacks


def export_gguf(
    model_dir: str | Path, outfile: str | Path, quantize: str = "f16", overwrite: bool = False
) -> GGUFExport:
    """Export the model folder to `outfile`; a one-line `RecipeError` for a layout or tokenizer GGUF cannot hold, a
    folder that is no model, or an existing `outfile` without `overwrite` (checked before anything is read)."""
    import torch

    from hfscratch.export.vocab import gguf_vocab
    from hfscratch.models.loading import check_model_folder, load_tokenizer

    started = time.perf_counter()
    model_dir, outfile = Path(model_dir), Path(outfile)
    if quantize not in QUANTIZATIONS:
        raise RecipeError(f"quantize: {quantize!r} is not one of {', '.join(QUANTIZATIONS)}")
    if outfile.is_dir():
        raise RecipeError(f"outfile {outfile} is a folder (expected a file name, e.g. model.gguf)")
    if outfile.exists() and not overwrite:
        raise RecipeError(f"outfile {outfile} exists; pass --overwrite to replace it")
    check_model_folder(model_dir)  # config, weights and tokenizer files: the one-line errors of every step
    config = load_as_llama(model_dir, weights=False).config
    problem = gguf_layout_problem(config)
    if problem:
        raise RecipeError(f"model {model_dir}: cannot be exported to GGUF: {problem}")
    vocab = gguf_vocab(load_tokenizer(model_dir), config.vocab_size)
    llama = load_as_llama(model_dir)  # every check passed: now the weights

    outfile.parent.mkdir(parents=True, exist_ok=True)
    partial = outfile.with_name(f".{outfile.name}.partial-{os.getpid()}")
    try:
        with torch.no_grad():
            types, fallbacks = write_gguf(partial, model_dir.resolve().name, llama, vocab, quantize)
        os.replace(partial, outfile)  # atomic on one file system: the .gguf is whole or absent
    finally:
        partial.unlink(missing_ok=True)
    return GGUFExport(outfile, quantize, outfile.stat().st_size, dict(types), time.perf_counter() - started, fallbacks)


__all__ = ["QUANTIZATIONS", "GGUFExport", "export_gguf", "gguf_layout_problem", "load_as_llama"]
