"""Read an exported GGUF back with transformers and compare it with the model folder it came from.

`AutoModelForCausalLM.from_pretrained(DIR, gguf_file=F)` de-quantizes the file into a `LlamaForCausalLM` and
`AutoTokenizer.from_pretrained(DIR, gguf_file=F)` rebuilds the tokenizer from its metadata: the two readers a user
of the file meets first. The original is loaded as it was trained (the hfscratch classes, not the Llama export),
so the comparison covers `to_llama`, the tensor names, the q/k permutation and the quantization together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from hfscratch.core.recipes import RecipeError

# Plain text, code with runs of spaces, and accents, CJK and an emoji (several UTF-8 bytes per character).
PROBE_TEXTS = (
    "The json module encodes Python objects as JSON text and decodes them again.",
    "def area(r):\n    return 3.14159 * r ** 2  # two  spaces\n\n",
    "déjà vu, naïve café, 東京 and 😀",
)
# Largest |logit difference| / largest |logit| the check accepts for each type: f32 holds the weights exactly (what
# remains is float32 arithmetic in another order); f16 keeps 11 significant bits, q8_0 8 bits per 32-value block.
# Measured on the quickstart model and the tests' model: f32 and f16 at a tenth of their bound or less, q8_0 at a
# fifth (README, "Run it locally").
RELATIVE_TOLERANCE = {"f32": 1e-5, "f16": 5e-3, "q8_0": 5e-2}


@dataclass
class GGUFCheck:
    max_abs_diff: float  # largest |logit difference| over every position and vocabulary entry of the probes
    max_abs_logit: float  # largest |logit| of the original, the scale of the difference
    greedy_agreement: float  # fraction of positions whose most likely next token is the same
    token_mismatches: list[str]  # probe texts the GGUF tokenizer encodes differently
    positions: int

    @property
    def relative_diff(self) -> float:
        return self.max_abs_diff / self.max_abs_logit if self.max_abs_logit else math.inf

    def problem(self, quantize: str) -> str | None:
        """Why the file is not a faithful copy at `quantize`'s precision, or None."""
        if self.token_mismatches:
            return f"the GGUF tokenizer encodes {self.token_mismatches[0]!r} differently"
        if not math.isfinite(self.max_abs_diff) or self.relative_diff > RELATIVE_TOLERANCE[quantize]:
            return (
                f"logits differ by {self.max_abs_diff:.3g} ({self.relative_diff:.2%} of their largest value; "
                f"{quantize} allows {RELATIVE_TOLERANCE[quantize]:.2%})"
            )
        return None


def check_gguf(model_dir: str | Path, gguf_file: str | Path, texts: tuple[str, ...] = PROBE_TEXTS) -> GGUFCheck:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfscratch.models.loading import load_model, load_tokenizer

    gguf_file = Path(gguf_file).resolve()
    tokenizer = load_tokenizer(model_dir)
    original = load_model(model_dir, dtype=torch.float32)
    try:
        exported = AutoModelForCausalLM.from_pretrained(
            gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32
        ).eval()
        gguf_tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
    except (OSError, ValueError) as exc:
        raise RecipeError(f"check: transformers cannot read {gguf_file} ({' '.join(str(exc).split())[:300]})") from None
    mismatches = [text for text in texts if gguf_tokenizer(text)["input_ids"] != tokenizer(text)["input_ids"]]
    max_diff = max_logit = 0.0
    agree = positions = 0
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tokenizer(text)["input_ids"]])
            want, got = original(ids).logits[0], exported(ids).logits[0]
            max_diff = max(max_diff, (want - got).abs().max().item())
            max_logit = max(max_logit, want.abs().max().item())
            agree += (want.argmax(-1) == got.argmax(-1)).sum().item()
            positions += ids.shape[1]
    return GGUFCheck(max_diff, max_logit, agree / positions, mismatches, positions)


__all__ = ["PROBE_TEXTS", "RELATIVE_TOLERANCE", "GGUFCheck", "check_gguf"]
