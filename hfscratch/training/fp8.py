"""FP8 training (`fp8: true`): torchao's float8 linear layers on the projections of the decoder layers.

`torchao.float8.convert_to_float8_training` swaps the chosen `nn.Linear` modules for `Float8Linear` (dynamic
per-tensor scaling: the matmuls run in float8 on the GPU's FP8 tensor cores, the weights stay in high
precision). Only the seven projections of attention and MLP are converted: the embeddings, the norms and the
output head stay as they are (the head's logits are the most precision-sensitive matmul of the model, and
the usual recipe, torchtitan's, leaves it out too). FP8 needs a GPU with FP8 matmuls (compute capability
8.9: Ada, Hopper, Blackwell) and pays off only under torch.compile, which fuses the casts into the kernels;
anything else is refused when the arguments are read, before data or model load.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch
from torch import nn

from hfscratch.core.recipes import RecipeError

FP8_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
MIN_COMPUTE_CAPABILITY = (8, 9)  # Ada Lovelace (L4, L40S, RTX 4090) and later: FP8 tensor cores


def fp8_unavailable(args: Any) -> str | None:
    """Why `fp8: true` cannot run with these arguments on this machine, in words; None when it can."""
    missing = []
    if args.use_cpu or not torch.cuda.is_available():
        missing.append("no CUDA GPU" + (" (use_cpu is true)" if args.use_cpu else ""))
    elif torch.cuda.get_device_capability() < MIN_COMPUTE_CAPABILITY:
        major, minor = torch.cuda.get_device_capability()
        missing.append(f"{torch.cuda.get_device_name()} has compute capability {major}.{minor}")
    if not args.torch_compile:
        missing.append("torch_compile is false")
    if importlib.util.find_spec("torchao") is None:
        missing.append("torchao is not installed (pip install torchao)")
    if not missing:
        return None
    need = ".".join(map(str, MIN_COMPUTE_CAPABILITY))
    return (
        f"key 'fp8': FP8 training needs a CUDA GPU with compute capability >= {need}, torch_compile: true and "
        f"torchao installed; here: {', '.join(missing)}"
    )


def is_fp8_projection(module: nn.Module, fqn: str) -> bool:
    """torchao's `module_filter_fn`: True for the q/k/v/o and gate/up/down projections (Llama's module names,
    which every preset uses), False for everything else, the output head included."""
    return isinstance(module, nn.Linear) and fqn.rsplit(".", 1)[-1] in FP8_PROJECTIONS


def convert_to_fp8(model: nn.Module) -> list[str]:
    """Swap the model's projections for torchao's `Float8Linear`, in place; the names of those converted.

    A projection whose sizes are not multiples of 16 cannot run as an FP8 matmul (torch._scaled_mm), and a
    model without such projections would train in bf16 while the recipe says fp8: both are refused."""
    from torchao.float8 import convert_to_float8_training

    chosen = [name for name, module in model.named_modules() if is_fp8_projection(module, name)]
    if not chosen:
        raise RecipeError(f"key 'fp8': the model has no {'/'.join(FP8_PROJECTIONS)} linear layers to convert")
    for name in chosen:
        linear = model.get_submodule(name)
        if linear.in_features % 16 or linear.out_features % 16:
            raise RecipeError(
                f"key 'fp8': {name} is {linear.in_features}x{linear.out_features}; FP8 matmuls need both sizes to "
                "be multiples of 16"
            )
    convert_to_float8_training(model, module_filter_fn=is_fp8_projection)
    return chosen
