"""LoRA with PEFT on our Llama-named modules: the adapter, its base-model check, and merging.

PEFT finds its targets by module name. Ours are Llama's (`model.layers.N.self_attn.{q,k,v,o}_proj`,
`mlp.{gate,up,down}_proj`), so the default targets are every projection of every block, as QLoRA recommends
(adapting all linear layers, not just q and v, closes most of the gap to full fine-tuning). An adapter is
only meaningful on the exact weights it was trained against, so the adapter folder also records its base's
configuration and a fingerprint of its weights, and loading it onto any other model is an error.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from hfscratch.core.recipes import RecipeError

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
BASE_RECORD = "hfscratch_base.json"  # written beside adapter_config.json
# config.json keys that say nothing about which weights a model has
VOLATILE_CONFIG_KEYS = {
    "_name_or_path",
    "architectures",
    "auto_map",
    "dtype",
    "torch_dtype",
    "transformers_version",
    "use_cache",
    "quantization_config",
}


def present_target_modules(model: torch.nn.Module, wanted: Sequence[str]) -> list[str]:
    """The names in `wanted` that some linear layer of `model` ends with (a plain MLP has no gate_proj)."""
    leaves = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    found = [name for name in wanted if name in leaves]
    if not found:
        raise RecipeError(
            f"lora_target_modules: none of {', '.join(wanted)} is a linear layer of the model "
            f"(its linear layers end in: {', '.join(sorted(leaves))})"
        )
    return found


def apply_lora(model: torch.nn.Module, r: int, alpha: float, dropout: float, target_modules: Sequence[str]) -> Any:
    """`model` wrapped in a `PeftModel` whose only trainable weights are the LoRA matrices."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=present_target_modules(model, target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def trainable_share(peft_model: Any) -> dict[str, float]:
    """PEFT's own count (what `print_trainable_parameters` prints): trainable, total and the share in %."""
    trainable, total = peft_model.get_nb_trainable_parameters()
    return {"trainable_params": trainable, "all_params": total, "trainable_percent": 100.0 * trainable / total}


# -- which base an adapter belongs to ---------------------------------------------------------------------


def _config_dict(model_dir: Path) -> dict[str, Any]:
    with open(model_dir / "config.json", encoding="utf-8") as f:
        config = json.load(f)
    return {key: value for key, value in config.items() if key not in VOLATILE_CONFIG_KEYS}


def _weight_files(model_dir: Path) -> dict[str, Path]:
    """Tensor name -> the safetensors file that holds it (one file, or a sharded checkpoint's index)."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return {name: model_dir / file for name, file in weight_map.items()}
    single = model_dir / "model.safetensors"
    if not single.is_file():
        return {}
    from safetensors import safe_open

    with safe_open(single, "pt") as f:
        return dict.fromkeys(f.keys(), single)


def weights_fingerprint(model_dir: str | Path) -> str | None:
    """A hash of the first row of the first 8 tensors in name order (lm_head, the embeddings, the first block's
    weights): they differ between any two trained models, and reading them takes milliseconds at any model size,
    where hashing every weight of a 7B model would take a minute."""
    from safetensors import safe_open

    files = _weight_files(Path(model_dir))
    if not files:
        return None
    digest = hashlib.sha256()
    for name in sorted(files)[:8]:
        with safe_open(files[name], "pt") as f:
            part = f.get_slice(name)
            shape = part.get_shape()
            tensor = part[0:1] if shape else f.get_tensor(name)
        digest.update(name.encode())
        digest.update(tensor.to(torch.float32).numpy().tobytes())
    return digest.hexdigest()


def record_base(adapter_dir: str | Path, model_dir: str | Path) -> None:
    """Write what `check_adapter_base` compares against: the base's path, configuration and weights fingerprint."""
    model_dir = Path(model_dir)
    record = {"base_model_name_or_path": str(model_dir.resolve()) if model_dir.exists() else str(model_dir)}
    if (model_dir / "config.json").is_file():
        record["config"] = _config_dict(model_dir)
        record["weights_fingerprint"] = weights_fingerprint(model_dir)
    (Path(adapter_dir) / BASE_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def check_adapter_base(model_dir: str | Path, adapter_dir: str | Path) -> None:
    """Raise `RecipeError` unless the adapter in `adapter_dir` was trained on the model in `model_dir`.

    Configurations must match key by key, and, where both are known, the weights' fingerprints too (two
    models of one architecture have equal configurations). An adapter made elsewhere, without our record,
    is checked against the configuration at its `base_model_name_or_path` when that folder exists here.
    """
    model_dir, adapter_dir = Path(model_dir), Path(adapter_dir)
    adapter_config = adapter_dir / "adapter_config.json"
    if not adapter_config.is_file():
        raise RecipeError(f"adapter {adapter_dir}: not a PEFT adapter folder (no adapter_config.json)")
    if not (model_dir / "config.json").is_file():
        raise RecipeError(f"model {model_dir}: not a model folder (no config.json)")
    record_file = adapter_dir / BASE_RECORD
    if record_file.is_file():
        record = json.loads(record_file.read_text(encoding="utf-8"))
    else:
        base = json.loads(adapter_config.read_text(encoding="utf-8")).get("base_model_name_or_path") or ""
        record = {"base_model_name_or_path": base}
        if base and (Path(base) / "config.json").is_file():
            record["config"] = _config_dict(Path(base))
        elif Path(base).resolve() != model_dir.resolve():
            warnings.warn(
                f"adapter {adapter_dir} names base {base!r}, which is not here to compare with {model_dir}",
                stacklevel=2,
            )
    base = record["base_model_name_or_path"]
    if "config" in record:
        ours = _config_dict(model_dir)
        differing = sorted(
            key for key in set(ours) | set(record["config"]) if ours.get(key) != record["config"].get(key)
        )
        if differing:
            shown = ", ".join(f"{k}={record['config'].get(k)!r} vs {ours.get(k)!r}" for k in differing[:4])
            raise RecipeError(
                f"adapter {adapter_dir} was trained on another base model ({base}): its config differs from "
                f"{model_dir}'s in {shown}"
            )
    expected = record.get("weights_fingerprint")
    if expected and weights_fingerprint(model_dir) != expected:
        raise RecipeError(
            f"adapter {adapter_dir} was trained on another base model ({base}): {model_dir} has the same "
            "architecture but different weights"
        )


# -- loading and merging ----------------------------------------------------------------------------------


def load_base_model(model_dir: str | Path, dtype: torch.dtype = torch.float32, **kwargs: Any) -> Any:
    from transformers import AutoModelForCausalLM

    import hfscratch  # noqa: F401  (registers our classes with the Auto classes)

    return AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype, trust_remote_code=True, **kwargs)


def load_adapter_model(model_dir: str | Path, adapter_dir: str | Path, dtype: torch.dtype = torch.float32) -> Any:
    """The base model with the adapter applied (not merged), after checking that they belong together."""
    from peft import PeftModel

    check_adapter_base(model_dir, adapter_dir)
    return PeftModel.from_pretrained(load_base_model(model_dir, dtype), str(adapter_dir))


def merge_adapter(model_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """A plain model folder with the LoRA update folded into the weights (`merge_and_unload`).

    The base is reloaded in fp32 from disk rather than reusing the training model, so a QLoRA adapter merges
    into full-precision weights (saved in the base's own dtype). The folder is written under a temporary name
    and renamed when complete; it holds config.json (with auto_map), model.safetensors, the two code files,
    the tokenizer with the chat template, and the generation config, so that
    `AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True)` loads it anywhere.
    """
    from transformers import AutoTokenizer

    out_dir = Path(out_dir)
    merged = load_adapter_model(model_dir, adapter_dir).merge_and_unload()
    saved_dtype = json.loads((Path(model_dir) / "config.json").read_text()).get("dtype")
    if saved_dtype in ("bfloat16", "float16"):  # merge in fp32, save at the base's own precision
        merged = merged.to(getattr(torch, saved_dtype))
    tmp = out_dir.with_name(out_dir.name + ".incomplete")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(tmp)
    for code in Path(model_dir).glob("*_hfscratch.py"):  # where the base was loaded as local code
        if not (tmp / code.name).exists():
            shutil.copy2(code, tmp / code.name)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir
