"""Helpers of the export tests (a module of its own, so tests import it by a name no other test folder uses): the
corpus and probe strings, tiny Llama-layout model folders trained for a few steps so their logits are not those
of a random initialisation, and the original model's logits to compare a GGUF with.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

WORDS = (
    "the json module encodes python objects as text and decodes them again def class return import "
    "déjà vu naïve café Straße 東京 大阪 😀 🚀 ( ) [ ] { } : , . 1 22 333"
).split()
# Strings the tokenizer round trip is checked on: words it learned, unseen unicode, whitespace runs, a special token.
PROBES = (
    "the json module encodes python objects",
    "déjà vu, naïve café in 東京 😀",
    "unseen: Ωμέγα ñandú 🦙 \u200d",
    "def f(x):\n    return x  # two  spaces\n\n\ttab",
    "<|begin_of_text|>the end<|end_of_text|>",
)


def corpus(rng: random.Random, documents: int = 200, words: int = 60) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(words)) for _ in range(documents)]


def build_model_dir(folder: Path, tokenizer_dir: Path, steps: int = 30, **overrides) -> Path:
    """A 2-layer, 64-wide model of the `llama` preset (GQA: 4 query, 2 key/value heads; vocabulary padded past the
    tokenizer's), trained `steps` AdamW steps on the tokenizer's corpus, saved with its code and tokenizer."""
    from transformers import AutoTokenizer

    from hfscratch.models.hfscratch import HFScratchConfig, HFScratchForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    fields = dict(
        vocab_size=len(tokenizer) + 12,  # unused rows, as a model padded to a multiple of 64 has
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model = HFScratchForCausalLM(HFScratchConfig.from_preset("llama", size="tiny", **{**fields, **overrides}))
    text = " ".join(corpus(random.Random(1), documents=40))
    ids = torch.tensor(tokenizer(text)["input_ids"][: 8 * 64]).view(8, 64)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    # One thread: 64-wide matrices gain nothing from two, and on a shared, loaded machine two OpenMP threads made
    # these 30 steps take 37 s instead of 2.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    model.register_for_auto_class("AutoModelForCausalLM")
    model.config.register_for_auto_class()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def original_logits(model_dir: Path, text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, logits) of the model folder as trained (the hfscratch classes)."""
    from transformers import AutoTokenizer

    from hfscratch.models.hfscratch import HFScratchForCausalLM

    ids = torch.tensor([AutoTokenizer.from_pretrained(model_dir)(text)["input_ids"]])
    with torch.no_grad():
        return ids, HFScratchForCausalLM.from_pretrained(model_dir).eval()(ids).logits[0]


def tensor_types(gguf_file: Path) -> dict[str, str]:
    """GGUF tensor name -> its GGML type name, as the file states them (gguf's own reader)."""
    from gguf import GGUFReader

    return {tensor.name: tensor.tensor_type.name for tensor in GGUFReader(gguf_file).tensors}


def gguf_metadata(gguf_file: Path, key: str):
    """One metadata value of a GGUF file (gguf's own reader)."""
    from gguf import GGUFReader

    return GGUFReader(gguf_file).fields[key].contents()


def load_gguf(gguf_file: Path):
    """The file as transformers reads it: (model, tokenizer), through `from_pretrained(..., gguf_file=...)`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = gguf_file.parent, gguf_file.name
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(folder, gguf_file=name)


def gguf_contents(gguf_file: Path) -> tuple[dict, dict]:
    """(metadata without general.name, tensor name -> (type, shape, bytes)): what two files must share to hold the
    same model."""
    from gguf import GGUFReader

    reader = GGUFReader(gguf_file)
    metadata = {key: field.contents() for key, field in reader.fields.items() if key != "general.name"}
    tensors = {t.name: (t.tensor_type.name, tuple(t.shape), t.data.tobytes()) for t in reader.tensors}
    return metadata, tensors
