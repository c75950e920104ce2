"""Move weights between HFScratch and transformers' Llama.

An HFScratch model with Llama's layout (pre-RMSNorm, RoPE, gated MLP, no QK-norm, no extra dropout) has Llama's
parameter names and math, so conversion is a config translation plus a strict `load_state_dict`. Exported models are
plain `LlamaForCausalLM`: whoever loads them needs no `trust_remote_code`.
"""

import os

from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel

from hfscratch.models.hfscratch import HFScratchConfig, HFScratchForCausalLM

# The HFScratch fields Llama fixes, with the only value it can represent.
LLAMA_LAYOUT = {
    "norm_type": "rmsnorm",
    "norm_position": "pre",
    "position_embedding_type": "rope",
    "mlp_type": "gated",
    "qk_norm": False,
    "embedding_dropout": 0.0,
    "residual_dropout": 0.0,
    "sliding_window": None,  # Llama attends to every earlier token
    "logit_softcap": None,  # and its logits are the head's output as is
}

# HFScratch field -> LlamaConfig field, for what both configurations express.
SHARED_FIELDS = {
    name: name
    for name in (
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "hidden_act",
        "max_position_embeddings",
        "rope_parameters",
        "attention_bias",
        "attention_dropout",
        "mlp_bias",
        "tie_word_embeddings",
        "initializer_range",
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
    )
} | {"norm_eps": "rms_norm_eps"}


def _transfer(source: PreTrainedModel, target_class: type[PreTrainedModel], config) -> PreTrainedModel:
    config._attn_implementation = source.config._attn_implementation
    target = target_class(config)
    # Same names and shapes on both sides: strict loading proves nothing is dropped or left random.
    target.load_state_dict(source.state_dict(), strict=True)
    return target.to(source.dtype)


def to_llama(model: HFScratchForCausalLM) -> LlamaForCausalLM:
    """The same network as a `LlamaForCausalLM` (same logits); raises ValueError if the layout is not Llama's."""
    config = model.config
    for field, required in LLAMA_LAYOUT.items():
        if getattr(config, field) != required:
            raise ValueError(
                f"{field}={getattr(config, field)!r} cannot be exported to Llama, which needs {field}={required!r}."
            )
    llama_config = LlamaConfig(**{theirs: getattr(config, ours) for ours, theirs in SHARED_FIELDS.items()})
    return _transfer(model, LlamaForCausalLM, llama_config)


def from_llama(llama: LlamaForCausalLM | str | os.PathLike, **from_pretrained_kwargs) -> HFScratchForCausalLM:
    """An `HFScratchForCausalLM` with a Llama checkpoint's weights (a model or a path / Hub id), for continued
    pretraining with hfscratch."""
    if not isinstance(llama, LlamaForCausalLM):
        llama = LlamaForCausalLM.from_pretrained(llama, **from_pretrained_kwargs)
    config = HFScratchConfig(
        **LLAMA_LAYOUT, **{ours: getattr(llama.config, theirs) for ours, theirs in SHARED_FIELDS.items()}
    )
    return _transfer(llama, HFScratchForCausalLM, config)


__all__ = ["LLAMA_LAYOUT", "SHARED_FIELDS", "from_llama", "to_llama"]
