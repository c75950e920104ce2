"""HFScratch model configuration: one decoder-only family, every classic choice a field.

Presets (`gpt2`, `llama`, `vaswani`, `bloom`, `t5`) and sizes (`tiny` ... `7b`) are plain dicts of field values,
combined by `HFScratchConfig.from_preset`. This file imports only `transformers` so that `save_pretrained` can copy
it next to the weights and the folder loads anywhere with `trust_remote_code=True`.
"""

import math
from typing import Any, Literal, get_args

from transformers import PretrainedConfig
from transformers.activations import ACT2FN

MlpType = Literal["plain", "gated"]
NormType = Literal["layernorm", "rmsnorm"]
NormPosition = Literal["pre", "post"]
PositionEmbeddingType = Literal["learned", "sinusoidal", "rope", "alibi", "relative"]
# Each choice field and its allowed values, for validation and for listing in a CLI.
CHOICES: dict[str, tuple[str, ...]] = {
    "mlp_type": get_args(MlpType),
    "norm_type": get_args(NormType),
    "norm_position": get_args(NormPosition),
    "position_embedding_type": get_args(PositionEmbeddingType),
}

# Position schemes that act as an additive bias on the attention scores rather than on the hidden states.
ATTENTION_BIAS_POSITIONS = ("alibi", "relative")
# Position schemes added to the token embeddings.
ABSOLUTE_POSITIONS = ("learned", "sinusoidal")

PRESETS: dict[str, dict[str, Any]] = {
    # Radford et al. 2019: learned absolute positions, pre-LayerNorm, GELU, biases, tied head. GELU's tanh
    # approximation as GPT-2 has it, computed by torch's fused kernel ("gelu_new" is the same function in 8 ops).
    "gpt2": {
        "position_embedding_type": "learned",
        "norm_type": "layernorm",
        "norm_position": "pre",
        "mlp_type": "plain",
        "hidden_act": "gelu_pytorch_tanh",
        "attention_bias": True,
        "mlp_bias": True,
        "tie_word_embeddings": True,
        "max_position_embeddings": 1024,
    },
    # Touvron et al. 2023: RoPE, pre-RMSNorm, SwiGLU, no biases; set num_key_value_heads for GQA/MQA.
    "llama": {
        "position_embedding_type": "rope",
        "norm_type": "rmsnorm",
        "norm_position": "pre",
        "mlp_type": "gated",
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
    },
    # Vaswani et al. 2017 (decoder only): sinusoidal positions, post-LayerNorm, ReLU, dropout 0.1, tied head.
    "vaswani": {
        "position_embedding_type": "sinusoidal",
        "norm_type": "layernorm",
        "norm_position": "post",
        "mlp_type": "plain",
        "hidden_act": "relu",
        "attention_bias": True,
        "mlp_bias": True,
        "tie_word_embeddings": True,
        "embedding_dropout": 0.1,
        "attention_dropout": 0.1,
        "residual_dropout": 0.1,
    },
    # BLOOM (BigScience 2022): ALiBi, pre-LayerNorm, GELU, biases, tied head (without its embedding LayerNorm).
    "bloom": {
        "position_embedding_type": "alibi",
        "norm_type": "layernorm",
        "norm_position": "pre",
        "mlp_type": "plain",
        "hidden_act": "gelu",
        "attention_bias": True,
        "mlp_bias": True,
        "tie_word_embeddings": True,
    },
    # T5 v1.1's choices in a decoder-only model: bucketed relative bias, pre-RMSNorm, GeGLU (tanh GELU), no biases.
    "t5": {
        "position_embedding_type": "relative",
        "norm_type": "rmsnorm",
        "norm_position": "pre",
        "mlp_type": "gated",
        "hidden_act": "gelu_pytorch_tanh",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
    },
}

SIZES: dict[str, dict[str, int]] = {
    "tiny": {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4},
    "125m": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12},
    "350m": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16},
    "1b": {"hidden_size": 2048, "num_hidden_layers": 22, "num_attention_heads": 32},
    "7b": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32},
}


def _check_choice(field: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{field}={value!r} is not supported; choose one of {', '.join(map(repr, allowed))}.")


class HFScratchConfig(PretrainedConfig):
    r"""
    Configuration of [`HFScratchForCausalLM`]. Fields share Llama's names where Llama has the concept.

    Args:
        head_dim (`int`, *optional*): defaults to `hidden_size // num_attention_heads`.
        intermediate_size (`int`, *optional*): defaults to `4 * hidden_size` for a plain MLP and to about
            `8/3 * hidden_size`, rounded up to a multiple of 256, for a gated one (same parameter count).
        mlp_type (`"plain"` or `"gated"`): `down(act(up(x)))`, or `down(act(gate(x)) * up(x))` (SwiGLU with
            silu, GeGLU with gelu).
        norm_type (`"layernorm"` or `"rmsnorm"`), norm_position (`"pre"` or `"post"`): post-norm normalises after
            each residual add (Vaswani et al.) and has no final norm.
        position_embedding_type: `"learned"` or `"sinusoidal"` absolute embeddings added to the token embeddings,
            `"rope"` (rotary, settings in `rope_parameters`), `"alibi"` (Press et al. 2022) or `"relative"`:
            T5's learned bias per head and log-spaced distance bucket (Raffel et al. 2020), shared by all layers.
        relative_attention_num_buckets, relative_attention_max_distance: the T5 bucketing, for `"relative"`.
        qk_norm (`bool`): normalise queries and keys per head before attention (OLMo-2, Qwen3).
        sliding_window (`int`, *optional*): each query attends to at most this many keys, itself included
            (Mistral); caches then keep only the window.
        logit_softcap (`float`, *optional*): the logits become `cap * tanh(logits / cap)` (Gemma 2).
        z_loss_weight (`float`): adds `z_loss_weight * logsumexp(logits)^2`, averaged over the predicted tokens, to
            the training loss (PaLM's z-loss, 1e-4 there), which keeps the softmax normaliser near 1.
    """

    model_type = "hfscratch"
    # Gemma 2's name for the same cap, read by TRL's fused LM head (cap * tanh(logits / cap), as the model applies)
    attribute_map = {"final_logit_softcapping": "logit_softcap"}
    # Megatron layout: column-split the input projections, row-split the output ones. Positions that add a
    # per-head bias are not sharded with the heads, so those configurations drop the plan in `__post_init__`.
    base_model_tp_plan = {
        "layers.*.self_attn.q_proj": "colwise",
        "layers.*.self_attn.k_proj": "colwise",
        "layers.*.self_attn.v_proj": "colwise",
        "layers.*.self_attn.o_proj": "rowwise",
        "layers.*.mlp.gate_proj": "colwise",
        "layers.*.mlp.up_proj": "colwise",
        "layers.*.mlp.down_proj": "rowwise",
    }
    # Pipeline stages (as Llama's): each entry's inputs and outputs. Learned or sinusoidal positions are added
    # between the embedding and the first layer, which this plan cannot express, so they drop it.
    base_model_pp_plan = {
        "embed_tokens": (["input_ids"], ["inputs_embeds"]),
        "layers": (["hidden_states", "attention_mask"], ["hidden_states"]),
        "norm": (["hidden_states"], ["hidden_states"]),
    }

    vocab_size: int = 32000
    hidden_size: int = 768
    intermediate_size: int | None = None
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    num_key_value_heads: int | None = None
    head_dim: int | None = None
    hidden_act: str = "silu"
    mlp_type: MlpType = "gated"
    norm_type: NormType = "rmsnorm"
    norm_position: NormPosition = "pre"
    norm_eps: float = 1e-5
    position_embedding_type: PositionEmbeddingType = "rope"
    max_position_embeddings: int = 2048
    rope_parameters: dict | None = None
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    attention_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    sliding_window: int | None = None
    logit_softcap: float | None = None
    z_loss_weight: float = 0.0
    tie_word_embeddings: bool = False
    embedding_dropout: float = 0.0
    attention_dropout: float = 0.0
    residual_dropout: float = 0.0
    initializer_range: float = 0.02
    use_cache: bool = True
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None

    def __post_init__(self, **kwargs):
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads:
                raise ValueError(
                    f"num_attention_heads={self.num_attention_heads} must divide hidden_size={self.hidden_size} "
                    "(or set head_dim explicitly)."
                )
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_key_value_heads is None:
            self.num_key_value_heads = self.num_attention_heads
        if self.intermediate_size is None:
            # A gated MLP has three matrices instead of two: 2/3 of the width keeps the parameter count.
            self.intermediate_size = (
                4 * self.hidden_size if self.mlp_type == "plain" else 256 * math.ceil(8 * self.hidden_size / 3 / 256)
            )
        self._validate()
        if self.position_embedding_type in ATTENTION_BIAS_POSITIONS:
            self.base_model_tp_plan = None
        if self.position_embedding_type in ABSOLUTE_POSITIONS:
            self.base_model_pp_plan = None
        super().__post_init__(**kwargs)

    def _validate(self) -> None:
        for field, allowed in CHOICES.items():
            _check_choice(field, getattr(self, field), allowed)
        _check_choice("hidden_act", self.hidden_act, tuple(ACT2FN))
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_key_value_heads={self.num_key_value_heads} must divide "
                f"num_attention_heads={self.num_attention_heads} (equal: MHA, a divisor: GQA, 1: MQA)."
            )
        if self.position_embedding_type == "rope" and self.head_dim % 2:
            raise ValueError(f"head_dim={self.head_dim} must be even with position_embedding_type='rope'.")
        for field in ("embedding_dropout", "attention_dropout", "residual_dropout"):
            if not 0.0 <= getattr(self, field) < 1.0:
                raise ValueError(f"{field}={getattr(self, field)} must be in [0, 1).")
        if self.sliding_window is not None and not (isinstance(self.sliding_window, int) and self.sliding_window > 0):
            raise ValueError(f"sliding_window={self.sliding_window!r} must be a positive number of tokens or None.")
        if self.logit_softcap is not None and not self.logit_softcap > 0:
            raise ValueError(f"logit_softcap={self.logit_softcap!r} must be positive or None.")
        if not self.z_loss_weight >= 0:
            raise ValueError(f"z_loss_weight={self.z_loss_weight!r} must be >= 0.")

    @classmethod
    def from_preset(cls, name: str, size: str = "125m", **overrides: Any) -> "HFScratchConfig":
        """`HFScratchConfig.from_preset("llama", size="1b", num_key_value_heads=8)`: a preset's architecture at a
        size from `SIZES`, then any field overridden."""
        _check_choice("preset", name, tuple(PRESETS))
        _check_choice("size", size, tuple(SIZES))
        return cls(**{**PRESETS[name], **SIZES[size], **overrides})


__all__ = ["ABSOLUTE_POSITIONS", "ATTENTION_BIAS_POSITIONS", "CHOICES", "HFScratchConfig", "PRESETS", "SIZES"]
