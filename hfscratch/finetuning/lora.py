"""LoRA with PEFT on our Llama-named modules: the adapter's config, its base-model record, and merging.

PEFT finds its targets by module name. Ours are Llama's (`model.layers.N.self_attn.{q,k,v,o}_proj`,
`mlp.{gate,up,down}_proj`), so the default targets are every projection of every block, as QLoRA recommends
(adapting all linear layers, not just q and v, closes most of the gap to full fine-tuning). An adapter is
only meaningful on the exact weights it was trained against, so the adapter folder also records its base's
configuration and a fingerprint of its weights (`record_base`), and loading it onto any other model is an error
(`hfscratch.models.loading.load_adapter_model`, where every step loads models).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hfscratch.core.recipes import RecipeError
from hfscratch.models.loading import (
    BASE_RECORD,
    config_fingerprint,
    load_adapter_model,
    load_tokenizer,
    weights_fingerprint,
)


def present_target_modules(model: Any, wanted: Sequence[str]) -> list[str]:
    """The names in `wanted` that some linear layer of `model` ends with (a plain MLP has no gate_proj)."""
    import torch

    leaves = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    found = [name for name in wanted if name in leaves]
    if not found:
        raise RecipeError(
            f"lora_target_modules: none of {', '.join(wanted)} is a linear layer of the model "
            f"(its linear layers end in: {', '.join(sorted(leaves))})"
        )
    return found


def lora_config(model: Any, r: int, alpha: float, dropout: float, target_modules: Sequence[str]) -> Any:
    """The `LoraConfig` TRL's trainers wrap the model with (`peft_config`): only the LoRA matrices train."""
    from peft import LoraConfig

    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=present_target_modules(model, target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def trainable_share(peft_model: Any) -> dict[str, float]:
    """PEFT's own count (what `print_trainable_parameters` prints): trainable, total and the share in %."""
    trainable, total = peft_model.get_nb_trainable_parameters()
    return {"trainable_params": trainable, "all_params": total, "trainable_percent": 100.0 * trainable / total}


# -- which base an adapter belongs to (checked on loading: hfscratch.models.loading.check_adapter_base) ------


def record_base(adapter_dir: str | Path, model_dir: str | Path) -> None:
    """Write what `check_adapter_base` compares against: the base's path, configuration and weights fingerprint."""
    model_dir = Path(model_dir)
    record = {"base_model_name_or_path": str(model_dir.resolve()) if model_dir.exists() else str(model_dir)}
    if (model_dir / "config.json").is_file():
        record["config"] = config_fingerprint(model_dir)
        record["weights_fingerprint"] = weights_fingerprint(model_dir)
    (Path(adapter_dir) / BASE_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


# -- merging ----------------------------------------------------------------------------------------------


def merge_adapter(model_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """A plain model folder with the LoRA update folded into the weights (`merge_and_unload`).

    The base is reloaded in fp32 from disk rather than reusing the training model, so a QLoRA adapter merges
    into full-precision weights (saved in the base's own dtype). The folder is written under a temporary name
    and renamed when complete; it holds config.json (with auto_map), model.safetensors, the two code files,
    the tokenizer with the chat template, and the generation config, so that
    `AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True)` loads it anywhere.
    """
    import torch

    out_dir = Path(out_dir)
    merged = load_adapter_model(model_dir, adapter_dir, "float32").merge_and_unload()
    saved_dtype = json.loads((Path(model_dir) / "config.json").read_text()).get("dtype")
    if saved_dtype in ("bfloat16", "float16"):  # merge in fp32, save at the base's own precision
        merged = merged.to(getattr(torch, saved_dtype))
    tmp = out_dir.with_name(out_dir.name + ".incomplete")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model_folder(merged, load_tokenizer(adapter_dir), model_dir, tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


def save_model_folder(model: Any, tokenizer: Any, base_dir: str | Path, out_dir: str | Path) -> None:
    """A plain model folder: weights, config (with auto_map), tokenizer, and the two code files of the base, so
    `AutoModelForCausalLM.from_pretrained(out_dir, trust_remote_code=True)` loads it where hfscratch is not."""
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    for code in Path(base_dir).glob("*_hfscratch.py"):  # where the base was loaded as local code
        if not (out_dir / code.name).exists():
            shutil.copy2(code, out_dir / code.name)
