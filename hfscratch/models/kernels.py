"""Liger's fused kernels on an HFScratch model, for `use_liger_kernel: true`.

Liger (and the Trainer's `use_liger_kernel`) finds its patches by `config.model_type`, knows no `hfscratch`, and
then patches nothing, logging at info level. Our Llama-compatible layouts (RMSNorm, SwiGLU) have Llama's module
names and math, so Liger's instance patches apply to them directly: its RMSNorm and SwiGLU forwards on our modules,
and its fused linear cross-entropy as the model's `fused_linear_loss`, which never materialises the (B, T, vocab)
logits in training (with our z-loss and logit soft-cap, which Liger's loss computes too). Patching needs no GPU;
running the patched model needs one (Triton).

The kernels hub (`use_kernels=True`, `model.kernelize()`) needs nothing from here: the model's RMSNorm and gated MLPs
are declared with `use_kernel_forward_from_hub`.
"""

from typing import Any

import torch

from hfscratch.core.recipes import RecipeError
from hfscratch.models.hfscratch import HFScratchConfig, HFScratchForCausalLM
from hfscratch.models.hfscratch.modeling_hfscratch import HFScratchRMSNorm, HFScratchSwiGLUMLP

# The fields Liger's RMSNorm and SwiGLU kernels need, with the values they accept.
LIGER_LAYOUT: dict[str, tuple[str, ...]] = {
    "norm_type": ("rmsnorm",),
    "mlp_type": ("gated",),
    "hidden_act": ("silu", "swish"),
}
# `liger_kernel_config` keys (the Trainer's spelling, Liger's defaults) and whether we can honour them.
PATCHES = {"rms_norm": True, "swiglu": True, "fused_linear_cross_entropy": True, "rope": False, "cross_entropy": False}


def check_liger_layout(config: HFScratchConfig) -> None:
    """A one-line RecipeError (a ValueError: exit 2 from the CLI) naming the first field Liger cannot take."""
    for field, accepted in LIGER_LAYOUT.items():
        value = getattr(config, field)
        if value not in accepted:
            raise RecipeError(
                f"use_liger_kernel: true cannot patch {field}={value!r}: Liger's kernels need "
                f"{field}={accepted[0]!r} (RMSNorm and SwiGLU, Llama's layout); set use_liger_kernel: false."
            )


class LigerFusedLinearLoss:
    """The causal-LM loss from the last hidden states and the head's weight, chunked by Liger so that the logits
    never exist whole; reads z-loss and soft-cap from the configuration at each call."""

    def __init__(self, config: HFScratchConfig):
        self.config = config

    def __call__(
        self, hidden_states: torch.Tensor, lm_head_weight: torch.Tensor, labels: torch.Tensor, **kwargs: Any
    ) -> torch.Tensor:
        from liger_kernel.transformers.model.loss_utils import LigerForCausalLMLoss

        return LigerForCausalLMLoss(
            hidden_states,
            lm_head_weight,
            labels,
            hidden_size=self.config.hidden_size,
            num_items_in_batch=kwargs.get("num_items_in_batch"),
            shift_labels=kwargs.get("shift_labels"),
            final_logit_softcapping=self.config.logit_softcap,
            lse_square_scale=self.config.z_loss_weight,
        )


def apply_liger(model: HFScratchForCausalLM, kernel_config: dict[str, bool] | None = None) -> list[str]:
    """Patch an HFScratch `model` in place with Liger's kernels; returns the names of the modules whose forward was
    replaced. A model of another family is left to the Trainer's `use_liger_kernel`, which knows Llama and others.

    `kernel_config` is the Trainer's `liger_kernel_config` (`rms_norm`, `swiglu`, `fused_linear_cross_entropy`; all
    on by default). Liger's RoPE kernel expects Llama's cos/sin tables, not ours (the sign is folded into `sin`), so
    `rope: true` is refused rather than silently skipped."""
    if getattr(model.config, "model_type", None) != HFScratchConfig.model_type:
        return []  # another family: the Trainer's own Liger integration patches the model types Liger knows
    options = {**PATCHES, **(kernel_config or {})}
    unknown = sorted(set(options) - set(PATCHES))
    if unknown:
        raise RecipeError(f"liger_kernel_config: unknown key(s) {', '.join(unknown)}; known: {', '.join(PATCHES)}.")
    for key in ("rope", "cross_entropy"):
        if options[key]:
            raise RecipeError(f"liger_kernel_config: {key}: true is not supported for HFScratch models; set it false.")
    check_liger_layout(model.config)
    try:
        from liger_kernel.transformers.monkey_patch import _patch_rms_norm_module, _patch_swiglu_module
        from liger_kernel.transformers.swiglu import LigerSwiGLUMLP
    except ImportError:
        raise RecipeError("use_liger_kernel: true needs the liger-kernel package (pip install liger-kernel).") from None

    patched = []
    # by class name: a model loaded with trust_remote_code has the same classes from its own copy of the code
    for name, module in model.named_modules():
        if options["rms_norm"] and type(module).__name__ == HFScratchRMSNorm.__name__:
            _patch_rms_norm_module(module, eps=model.config.norm_eps)
            patched.append(name)
        elif options["swiglu"] and type(module).__name__ == HFScratchSwiGLUMLP.__name__:
            _patch_swiglu_module(module, LigerSwiGLUMLP)
            patched.append(name)
    if options["fused_linear_cross_entropy"]:
        model.fused_linear_loss = LigerFusedLinearLoss(model.config)
    return patched


__all__ = ["LIGER_LAYOUT", "LigerFusedLinearLoss", "apply_liger", "check_liger_layout"]
