"""Loading a trained model folder, its tokenizer, and a LoRA adapter on it: the one place every step loads from.

`hfscratch evaluate`, `generate`, `synthesize`, `finetune` and `push` all load through here, so a folder that
cannot work gets the same one-line `RecipeError` in every step, before any long work and before anything is
written:

- a path that is not a folder, or a folder without config.json (not a model folder);
- a config.json that is not JSON, or names no causal-LM class (a BERT or ViT folder);
- no safetensors weights (pickled `pytorch_model.bin` only: never unpickled), a shard the index names but the
  folder lacks, or a safetensors file whose header does not parse (truncated or overwritten: safetensors checks
  that the header covers the whole file, so a cut-off copy is caught without reading the tensors);
- no tokenizer files (tokenizer.json, tokenizer.model or vocab.json).

Adapters: an adapter is only meaningful on the exact weights it was trained against, so `hfscratch finetune`
records its base's configuration and a fingerprint of its weights beside adapter_config.json
(`BASE_RECORD`), and `load_adapter_model` refuses any other base.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

from hfscratch.core.artifacts import read_json_object
from hfscratch.core.recipes import RecipeError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
SHARD_INDEX = "model.safetensors.index.json"
BASE_RECORD = "hfscratch_base.json"  # written beside adapter_config.json by `hfscratch finetune`
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


# -- checks --------------------------------------------------------------------------------------------------


def read_config(model_dir: str | Path) -> dict[str, Any]:
    """config.json of a model folder; a one-line error when the path is no model folder."""
    folder = Path(model_dir)
    if not folder.is_dir():
        raise RecipeError(
            f"model {folder} is not a folder (expected a model folder, e.g. a `hfscratch pretrain` output)"
        )
    path = folder / "config.json"
    if not path.is_file():
        raise RecipeError(
            f"model {folder}: not a model folder (no config.json; expected a Hugging Face model folder, "
            "e.g. a `hfscratch pretrain` output)"
        )
    try:
        return read_json_object(path)
    except ValueError as exc:
        raise RecipeError(f"model {folder}: config.json: {exc}") from None


def check_causal_lm(folder: Path, config: dict[str, Any]) -> None:
    """A config that names a causal-LM class: through auto_map, its architectures, or its model_type."""
    if "AutoModelForCausalLM" in (config.get("auto_map") or {}):
        return
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type, architectures = config.get("model_type"), config.get("architectures") or []
    causal_classes = {
        name
        for names in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()
        for name in ([names] if isinstance(names, str) else names)
    }
    if architectures and not set(architectures) & causal_classes:
        raise RecipeError(
            f"model {folder}: not a causal language model (config.json architectures {architectures} has no "
            "causal-LM head; expected e.g. LlamaForCausalLM or HFScratchForCausalLM)"
        )
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type != "hfscratch":
        raise RecipeError(
            f"model {folder}: not a causal language model (config.json model_type {model_type!r} has no "
            "AutoModelForCausalLM class and no auto_map entry for one)"
        )


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files that hold the weights (one file, or the shards a sharded checkpoint's index names)."""
    index = folder / SHARD_INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise RecipeError(
                f"model {folder}: {SHARD_INDEX} is not a shard index ({type(exc).__name__}: {exc})"
            ) from None
        shards = [folder / name for name in sorted(set(weight_map.values()))]
        missing = [shard.name for shard in shards if not shard.is_file()]
        if missing:
            raise RecipeError(f"model {folder}: {SHARD_INDEX} names {', '.join(missing)}, which is missing")
        return shards
    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    others = sorted(folder.glob("*.safetensors"))
    if others:
        return others
    pickled = sorted(p.name for p in folder.glob("pytorch_model*.bin"))
    why = f"only pickled weights ({', '.join(pickled)}); re-save with save_pretrained()" if pickled else "none"
    raise RecipeError(f"model {folder}: no safetensors weights ({why}); hfscratch never unpickles weights")


def check_weights(folder: Path) -> list[Path]:
    """Every weights file opens: its header parses and covers the file (a truncated copy fails here)."""
    from safetensors import SafetensorError, safe_open

    files = weight_files(folder)
    for path in files:
        try:
            with safe_open(str(path), "pt") as handle:
                handle.keys()
        except (SafetensorError, OSError) as exc:
            raise RecipeError(
                f"model {folder}: {path.name} is corrupt ({' '.join(str(exc).split())}); "
                "copy it again or re-save the model"
            ) from None
    return files


def check_tokenizer_files(folder: Path) -> None:
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise RecipeError(
            f"model {folder}: no tokenizer files ({', '.join(TOKENIZER_FILES[:-1])} or {TOKENIZER_FILES[-1]}); "
            "save the tokenizer into the model folder (tokenizer.save_pretrained(MODEL_DIR))"
        )


def check_model_folder(model_dir: str | Path, tokenizer: bool = True) -> dict[str, Any]:
    """All the checks of a causal-LM folder (see the module docstring); returns its config."""
    folder = Path(model_dir)
    config = read_config(folder)
    check_causal_lm(folder, config)
    check_weights(folder)
    if tokenizer:
        check_tokenizer_files(folder)
    return config


# -- loading -------------------------------------------------------------------------------------------------


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(folder: str | Path) -> Any:
    from transformers import AutoTokenizer

    check_tokenizer_files(Path(folder))
    try:
        return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=True)
    except (OSError, ValueError) as exc:
        raise RecipeError(f"model {folder}: the tokenizer does not load ({' '.join(str(exc).split())[:300]})") from None


def load_model(
    model_dir: str | Path, dtype: Any = "auto", device: str | None = None, check: bool = True, **kwargs: Any
) -> Any:
    """`AutoModelForCausalLM.from_pretrained` of a checked folder, in eval mode on `device` (None: where
    from_pretrained puts it). `dtype` is a torch dtype, its name, or "auto" (the config's)."""
    import torch
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    import hfscratch.models.hfscratch  # noqa: F401  (registers our classes with the Auto classes)

    folder = Path(model_dir)
    if check:
        check_model_folder(folder, tokenizer=False)
    if isinstance(dtype, str) and dtype != "auto":
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise RecipeError(f"dtype: {dtype!r} is not a torch dtype (expected auto, float32, bfloat16, float16)")
        dtype = getattr(torch, dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, trust_remote_code=True, **kwargs)
    except (SafetensorError, OSError, ValueError) as exc:
        raise RecipeError(f"model {folder}: does not load ({' '.join(str(exc).split())[:300]})") from None
    if device is not None:
        model = model.to(device)
    return model.eval()


def load_model_and_tokenizer(
    model_dir: str | Path, adapter: str | Path | None = None, device: str | None = None, dtype: Any = None
) -> tuple[Any, Any]:
    """The model in eval mode on `device` (with the adapter applied, unmerged) and its tokenizer.

    Default dtype: bfloat16 on a GPU that has it, else float32. With an adapter, the tokenizer comes from the
    adapter folder when it has one: that copy carries the chat template the adapter was trained with.
    """
    import torch

    folder = Path(model_dir)
    check_model_folder(folder)  # tokenizer included: every check before the weights are read
    device = device or default_device()
    if dtype is None:
        dtype = torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
    if adapter:
        model = load_adapter_model(folder, adapter, dtype)
        tokenizer_dir = Path(adapter) if (Path(adapter) / "tokenizer_config.json").is_file() else folder
    else:
        model, tokenizer_dir = load_model(folder, dtype, check=False), folder
    return model.to(device).eval(), load_tokenizer(tokenizer_dir)


# -- adapters ------------------------------------------------------------------------------------------------


def config_fingerprint(model_dir: str | Path) -> dict[str, Any]:
    """config.json without the keys that do not change which weights a model has."""
    return {key: value for key, value in read_config(model_dir).items() if key not in VOLATILE_CONFIG_KEYS}


def weights_fingerprint(model_dir: str | Path) -> str | None:
    """A hash of the first row of the first 8 tensors in name order (lm_head, the embeddings, the first block's
    weights): they differ between any two trained models, and reading them takes milliseconds at any model size,
    where hashing every weight of a 7B model would take a minute."""
    import torch
    from safetensors import safe_open

    folder = Path(model_dir)
    try:
        files = weight_files(folder)
    except RecipeError:
        return None
    where: dict[str, Path] = {}
    for path in files:
        with safe_open(str(path), "pt") as handle:
            where.update(dict.fromkeys(handle.keys(), path))
    digest = hashlib.sha256()
    for name in sorted(where)[:8]:
        with safe_open(str(where[name]), "pt") as handle:
            part = handle.get_slice(name)
            tensor = part[0:1] if part.get_shape() else handle.get_tensor(name)
        digest.update(name.encode())
        digest.update(tensor.to(torch.float32).numpy().tobytes())
    return digest.hexdigest()


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
    read_config(model_dir)
    record_file = adapter_dir / BASE_RECORD
    if record_file.is_file():
        record = json.loads(record_file.read_text(encoding="utf-8"))
    else:
        base = json.loads(adapter_config.read_text(encoding="utf-8")).get("base_model_name_or_path") or ""
        record = {"base_model_name_or_path": base}
        if base and (Path(base) / "config.json").is_file():
            record["config"] = config_fingerprint(base)
        elif Path(base).resolve() != model_dir.resolve():
            warnings.warn(
                f"adapter {adapter_dir} names base {base!r}, which is not here to compare with {model_dir}",
                stacklevel=2,
            )
    base = record["base_model_name_or_path"]
    if "config" in record:
        ours = config_fingerprint(model_dir)
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


def load_adapter_model(model_dir: str | Path, adapter_dir: str | Path, dtype: Any = "auto") -> Any:
    """The base model with the adapter applied (not merged), after checking that they belong together."""
    from peft import PeftModel

    check_adapter_base(model_dir, adapter_dir)
    return PeftModel.from_pretrained(load_model(model_dir, dtype), str(adapter_dir)).eval()
