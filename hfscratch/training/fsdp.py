"""FSDP2 through accelerate: the same Trainer/accelerate code path on GPUs and, over gloo, on CPUs.

    accelerate launch --config_file recipes/accelerate/fsdp2.yaml -m hfscratch.training.pretrain RECIPE.yaml

The accelerate config asks for FSDP (`distributed_type: FSDP`, `fsdp_version: 2`, the decoder layer as the wrap
unit, sharded checkpoints); accelerate's `fsdp2_prepare_model` applies torch's `fully_shard` to each decoder
layer, the embeddings and the head, so every parameter becomes a `DTensor` sharded along its first dimension.

accelerate 1.15 decides FSDP only for GPU-type setups: `AcceleratorState.__init__` switches `distributed_type`
to FSDP inside `if self.distributed_type in [MULTI_GPU, MULTI_XPU, ...]`, a list without MULTI_CPU, so on CPUs
the same config silently trains as DDP (the plugin is dropped). torch's `fully_shard` itself works on CPU over
gloo, and so do accelerate's FSDP2 prepare, sharded save and load. `shard_on_cpus` makes that one decision the
way accelerate makes it for GPUs; everything after it is accelerate's and the Trainer's own FSDP2 code.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from hfscratch.core.recipes import RecipeError


def fsdp_requested(args: Any) -> bool:
    """FSDP asked for by the accelerate config (`accelerate launch` exports ACCELERATE_USE_FSDP) or by the
    recipe's `fsdp` / `fsdp_config` training arguments."""
    return bool(args.fsdp) or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"


def shard_on_cpus(accelerator: Any, args: Any) -> bool:
    """Turn a CPU launch that asked for FSDP into FSDP2, as accelerate does for GPUs; True if it did.

    Runs right after the Trainer built its `Accelerator` and before anything is prepared. The plugin is built as
    the Trainer builds it (from `args.fsdp_plugin_args`, else from the FSDP_* variables `accelerate launch` set),
    with the mixed precision accelerate would have given it."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    state = accelerator.state
    if state.distributed_type != DistributedType.MULTI_CPU or not fsdp_requested(args):
        return False
    plugin = FullyShardedDataParallelPlugin(**(args.fsdp_plugin_args or {}))
    if plugin.fsdp_version != 2:
        raise RecipeError(f"fsdp_version: {plugin.fsdp_version}: FSDP on CPUs runs as FSDP2 only (fsdp_version: 2)")
    if state.mixed_precision != "no":
        plugin.set_mixed_precision(state.mixed_precision)
    state.fsdp_plugin = plugin
    state.distributed_type = DistributedType.FSDP
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    return True


def parameter_placements(model: nn.Module) -> dict[str, int]:
    """How the parameters are laid out, counted: {'Shard(dim=0)': 19} when FSDP2 sharded them all over one mesh
    dimension, {'tensor': 19} for plain tensors (DDP, one device, ZeRO's flattened shards)."""
    from torch.distributed.tensor import DTensor

    return dict(
        Counter(
            ",".join(repr(p) for p in param.placements) if isinstance(param, DTensor) else "tensor"
            for param in model.parameters()
        )
    )


def local_numel(param: torch.Tensor) -> int:
    """Elements of `param` this rank holds: a DTensor's local shard, ZeRO-3's `ds_tensor`, else all of it."""
    from torch.distributed.tensor import DTensor

    if isinstance(param, DTensor):
        return param.to_local().numel()
    return param.ds_tensor.numel() if hasattr(param, "ds_tensor") else param.numel()


def is_sharded_state_dict(accelerator: Any) -> bool:
    """FSDP with sharded checkpoints, where `Trainer.save_model` writes no weights (transformers 5.24)."""
    plugin = getattr(accelerator.state, "fsdp_plugin", None)
    return plugin is not None and "SHARDED_STATE_DICT" in str(plugin.state_dict_type)


@contextmanager
def model_class_unsharded(model: nn.Module) -> Iterator[None]:
    """The model's own class for the length of a save, instead of the subclass `fully_shard` made of it.

    `fully_shard` swaps the class of each module it shards for a generated `FSDP<Name>` subclass defined in
    torch's FSDP module. `save_pretrained` copies the source of the model's class with the weights (the remote
    code of `trust_remote_code`), so it would copy torch's FSDP files and name `FSDPHFScratchForCausalLM` in
    `auto_map`, a folder that no longer loads. Only the class changes, never the parameters."""
    from torch.distributed.fsdp import FSDPModule

    sharded_class = type(model)
    if not issubclass(sharded_class, FSDPModule):
        yield
        return
    model.__class__ = next(base for base in sharded_class.__bases__ if not issubclass(base, FSDPModule))
    try:
        yield
    finally:
        model.__class__ = sharded_class
