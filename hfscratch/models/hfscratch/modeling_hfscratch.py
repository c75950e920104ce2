"""HFScratch: a configurable decoder-only transformer written in transformers' Llama vocabulary.

Each choice of `HFScratchConfig` is a small branch in one of the modules below, smallest first. Module names are
Llama's (`model.embed_tokens`, `model.layers.N.self_attn.q_proj`, `mlp.gate_proj`, `model.norm`, `lm_head`), so
PEFT targets, tensor-parallel plans and Llama tooling apply unchanged. This file imports only torch, transformers
and its configuration, so `save_pretrained` copies it and the folder loads anywhere with `trust_remote_code=True`.

Where positions enter: learned and sinusoidal embeddings are added to the token embeddings; RoPE rotates queries
and keys; ALiBi and the T5 relative bias are a (B, nh, T, S) additive bias on the attention scores, sized by the
keys the cache hands back (a static cache's whole length, a sliding window's), and handed to the attention function
as `position_bias`: SDPA merges it into its float mask, flex attention adds it in its `score_mod`, our eager
function adds it; FlashAttention cannot take it and is refused for those positions.

Packed documents: `position_ids` that restart at each document, with no attention mask, make transformers' mask
block-diagonal (one block per document; FlashAttention goes varlen). ALiBi and the relative bias need nothing more:
key index minus query index is the in-document distance inside a document, and pairs across documents are masked.

GPU speed: the RMSNorm and the gated MLPs are declared for the kernels hub (`use_kernel_forward_from_hub`, a no-op
without the `kernels` package), the forward compiles with `fullgraph=True` for every layout, and a training wrapper
may set `fused_linear_loss` (hfscratch.models.kernels does, for Liger) to compute the loss without the logits.

Shapes: B batch, T query length, S key length (cache included), C hidden size, nh/nkv query/key-value heads, hs head
dim.
"""

import math
from collections.abc import Callable

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.integrations import use_kernel_forward_from_hub
from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS, dynamic_rope_update
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS, slice_logits_to_keep
from transformers.processing_utils import Unpack
from transformers.utils import TransformersKwargs, can_return_tuple
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import is_flash_attention_requested
from transformers.utils.output_capturing import capture_outputs

from .configuration_hfscratch import ATTENTION_BIAS_POSITIONS, HFScratchConfig

try:
    from transformers.utils.generic import suppress_kernels_logging
except ImportError:  # transformers 5.24: no kernelization at load, so nothing to silence

    def suppress_kernels_logging(func: Callable | None = None, *, layers: set[str] | None = None) -> Callable:
        return func if func is not None else (lambda fn: fn)


UNMAPPED_HUB_LAYERS = {"SwiGLUMLP", "GeGLUMLP"}  # declared for the kernels hub, which maps nothing to them yet


@use_kernel_forward_from_hub("RMSNorm")
class HFScratchRMSNorm(nn.RMSNorm):
    """torch's RMSNorm, declared for the kernels hub. Hub and Liger kernels read the epsilon as `variance_epsilon`
    (Llama's name), so it is kept under both names."""

    def __init__(self, size: int, eps: float):
        super().__init__(size, eps=eps)
        self.variance_epsilon = eps


# transformers' `_init_weights` recognises both by class name (ones and zeros).
NORM_CLASSES = {"layernorm": nn.LayerNorm, "rmsnorm": HFScratchRMSNorm}


def make_norm(config: HFScratchConfig, size: int) -> nn.Module:
    return NORM_CLASSES[config.norm_type](size, eps=config.norm_eps)


def make_dropout(p: float) -> nn.Module:
    # Dropout with p=0 still copies its input in training (a clone under torch.compile): none at all instead.
    return nn.Dropout(p) if p > 0 else nn.Identity()


class HFScratchSinusoidalEmbedding(nn.Module):
    """Vaswani et al. 2017: PE(p, 2i) = sin(p / 10000^(2i/C)), PE(p, 2i+1) = cos(p / 10000^(2i/C)).

    Computed from the positions on each call: nothing to learn, save or initialise, and no length limit."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        exponents = torch.arange(0, self.hidden_size, 2, device=position_ids.device, dtype=torch.float32)
        inv_freq = 10_000.0 ** (-exponents / self.hidden_size)  # (C/2,)
        angles = position_ids[..., None].float() * inv_freq  # (B, T, C/2)
        # interleave sin and cos: (B, T, C/2, 2) -> (B, T, C)
        return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)[..., : self.hidden_size]


class HFScratchRotaryEmbedding(nn.Module):
    """RoPE (Su et al. 2021) tables for any `rope_type` of transformers (default, linear, dynamic, yarn, llama3...).

    Built once per forward for all layers, with the minus sign of Llama's `rotate_half` folded into `sin`, so that
    each layer's rotation is a roll and a fused multiply-add (`apply_rotary_pos_emb`)."""

    inv_freq: torch.Tensor

    def __init__(self, config: HFScratchConfig):
        super().__init__()
        self.config = config
        self.max_seq_len_cached = config.max_position_embeddings
        self.original_max_seq_len = config.max_position_embeddings
        self.rope_type = config.rope_parameters["rope_type"]
        rope_init_fn = (
            self.compute_default_rope_parameters if self.rope_type == "default" else ROPE_INIT_FUNCTIONS[self.rope_type]
        )
        inv_freq, self.attention_scaling = rope_init_fn(config)
        self.inv_freq = nn.Buffer(inv_freq, persistent=False)
        # `_init_weights` and the dynamic RoPE types restore the frequencies from here
        self.original_inv_freq = nn.Buffer(inv_freq.clone(), persistent=False)

    @staticmethod
    def compute_default_rope_parameters(config: HFScratchConfig, **kwargs) -> tuple[torch.Tensor, float]:
        base = config.rope_parameters["rope_theta"]
        inv_freq = 1.0 / (base ** (torch.arange(0, config.head_dim, 2, dtype=torch.float) / config.head_dim))
        return inv_freq, 1.0

    @dynamic_rope_update
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        angles = position_ids[..., None].float() * self.inv_freq  # (B, T, hs/2)
        cos, sin = angles.cos() * self.attention_scaling, angles.sin() * self.attention_scaling
        return torch.cat((cos, cos), dim=-1), torch.cat((-sin, sin), dim=-1)  # (B, T, hs)


def apply_rotary_pos_emb(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Llama's rotation `x * cos + rotate_half(x) * sin` with rotate_half(x1, x2) = (-x2, x1), the same numbers
    from fewer kernels: the sign is already in `sin`, so rotate_half is a roll by half the head.

    q: (B, nh, T, hs), k: (B, nkv, T, hs), cos/sin: (B, T, hs). The tables take the dtype of q, so under autocast
    the rotation stays in bf16 instead of promoting q, k and the KV cache to fp32."""
    cos, sin = cos.to(q.dtype).unsqueeze(1), sin.to(q.dtype).unsqueeze(1)  # (B, 1, T, hs)

    def rotate(x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, dims=-1), sin)

    return rotate(q), rotate(k)


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """Press et al. 2022: head h gets slope 2^(-8h/n). For a head count n that is not a power of two, the slopes of
    the power of two below are completed with every other slope of the power of two above."""
    lower = 2 ** math.floor(math.log2(num_heads))

    def geometric(n: int) -> list[float]:
        return [2 ** (-8 * (h + 1) / n) for h in range(n)]

    return torch.tensor(geometric(lower) + geometric(2 * lower)[0::2][: num_heads - lower])


class HFScratchAlibiBias(nn.Module):
    """ALiBi: score(q, k) -= slope_h * (q - k). No parameters; extrapolates past the training length."""

    def __init__(self, config: HFScratchConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads

    def forward(self, relative_position: torch.Tensor) -> torch.Tensor:
        slopes = alibi_slopes(self.num_heads).to(relative_position.device)  # (nh,)
        return (slopes[:, None, None] * relative_position).unsqueeze(0)  # (1, nh, T, S)


def relative_positions(cache: Cache | None, query_length: int, past_seen_tokens, device: torch.device) -> torch.Tensor:
    """(T, S) key index minus query index, for the keys attention will see: the cache reports how many it hands back
    and where they start (`get_mask_sizes`, the sizes the causal mask is built with): all seen tokens for a dynamic
    cache, its whole length for a static one (the unwritten slots are masked), the last window for a sliding one.
    Indices count tokens fed to the model, so left padding shifts queries and keys alike and changes nothing."""
    kv_length, kv_offset = (query_length, 0) if cache is None else cache.get_mask_sizes(query_length, layer_idx=0)
    key_index = torch.arange(kv_length, device=device) + kv_offset  # (S,)
    query_index = torch.arange(query_length, device=device) + past_seen_tokens  # (T,)
    return key_index[None, :] - query_index[:, None]


class HFScratchRelativePositionBias(nn.Module):
    """T5's relative attention bias (Raffel et al. 2020), causal variant: one learned scalar per head and distance
    bucket, exact for distances below num_buckets/2 and log-spaced up to max_distance. Computed once per forward and
    shared by all layers, as in T5."""

    def __init__(self, config: HFScratchConfig):
        super().__init__()
        self.num_buckets = config.relative_attention_num_buckets
        self.max_distance = config.relative_attention_max_distance
        self.relative_attention_bias = nn.Embedding(self.num_buckets, config.num_attention_heads)

    def bucket(self, relative_position: torch.Tensor) -> torch.Tensor:
        distance = (-relative_position).clamp(min=0)  # how far back the key is; future keys are masked anyway
        max_exact = self.num_buckets // 2
        # log(0) for the near distances is discarded by the `where` below
        log_ratio = torch.log(distance.float() / max_exact) / math.log(self.max_distance / max_exact)
        far = (max_exact + log_ratio * (self.num_buckets - max_exact)).long().clamp(max=self.num_buckets - 1)
        return torch.where(distance < max_exact, distance, far)

    def forward(self, relative_position: torch.Tensor) -> torch.Tensor:
        bias = self.relative_attention_bias(self.bucket(relative_position))  # (T, S, nh)
        return bias.permute(2, 0, 1).unsqueeze(0)  # (1, nh, T, S)


class HFScratchMLP(nn.Module):
    """Plain `down(act(up(x)))` or gated `down(act(gate(x)) * up(x))` (SwiGLU with silu, GeGLU with gelu); the two
    gated forms the kernels hub has fused kernels for are the subclasses below."""

    def __init__(self, config: HFScratchConfig):
        super().__init__()
        hidden, inner, bias = config.hidden_size, config.intermediate_size, config.mlp_bias
        self.gate_proj = nn.Linear(hidden, inner, bias=bias) if config.mlp_type == "gated" else None
        self.up_proj = nn.Linear(hidden, inner, bias=bias)
        self.down_proj = nn.Linear(inner, hidden, bias=bias)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate_proj is None:
            return self.down_proj(self.act_fn(self.up_proj(x)))
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


@use_kernel_forward_from_hub("SwiGLUMLP")
class HFScratchSwiGLUMLP(HFScratchMLP):
    """The gated MLP with silu: `down(silu(gate(x)) * up(x))`, Llama's MLP."""


@use_kernel_forward_from_hub("GeGLUMLP")
class HFScratchGeGLUMLP(HFScratchMLP):
    """The gated MLP with tanh-approximated GELU, the activation of the hub's (Liger's) GeGLU kernel."""


def make_mlp(config: HFScratchConfig) -> HFScratchMLP:
    if config.mlp_type == "gated" and config.hidden_act in ("silu", "swish"):
        return HFScratchSwiGLUMLP(config)
    if config.mlp_type == "gated" and config.hidden_act in ("gelu_pytorch_tanh", "gelu_new", "gelu_fast"):
        return HFScratchGeGLUMLP(config)
    return HFScratchMLP(config)


def repeat_kv(hidden_states: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, nkv, S, hs) -> (B, nkv * n_rep, S, hs): each key/value head serves n_rep query heads."""
    if n_rep == 1:
        return hidden_states
    return hidden_states.repeat_interleave(n_rep, dim=1)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    position_bias: torch.Tensor | None = None,
    **kwargs: Unpack[TransformersKwargs],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention in plain torch: the reference the fused implementations are tested against."""
    key = repeat_kv(key, module.num_key_value_groups)
    value = repeat_kv(value, module.num_key_value_groups)
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling  # (B, nh, T, S)
    if position_bias is not None:
        attn_weights = attn_weights + position_bias
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()  # (B, T, nh, hs)
    return attn_output, attn_weights


class HFScratchAttention(nn.Module):
    """Multi-head attention with MHA, GQA or MQA (`num_key_value_heads`), optional per-head QK-norm, through
    transformers' attention interface (eager, SDPA, FlashAttention)."""

    def __init__(self, config: HFScratchConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.head_dim = config.head_dim
        self.num_key_value_groups = config.num_attention_heads // config.num_key_value_heads
        self.scaling = self.head_dim**-0.5
        self.attention_dropout = config.attention_dropout
        self.is_causal = True
        self.sliding_window = config.sliding_window
        q_size, kv_size = config.num_attention_heads * self.head_dim, config.num_key_value_heads * self.head_dim
        self.q_proj = nn.Linear(config.hidden_size, q_size, bias=config.attention_bias)
        self.k_proj = nn.Linear(config.hidden_size, kv_size, bias=config.attention_bias)
        self.v_proj = nn.Linear(config.hidden_size, kv_size, bias=config.attention_bias)
        self.o_proj = nn.Linear(q_size, config.hidden_size, bias=config.attention_bias)
        self.q_norm = make_norm(config, self.head_dim) if config.qk_norm else None
        self.k_norm = make_norm(config, self.head_dim) if config.qk_norm else None

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        position_bias: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        input_shape = hidden_states.shape[:-1]  # (B, T)
        hidden_shape = (*input_shape, -1, self.head_dim)
        query = self.q_proj(hidden_states).view(hidden_shape)  # (B, T, nh, hs)
        key = self.k_proj(hidden_states).view(hidden_shape)  # (B, T, nkv, hs)
        value = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)  # (B, nkv, T, hs)
        if self.q_norm is not None:
            query, key = self.q_norm(query), self.k_norm(key)
        query, key = query.transpose(1, 2), key.transpose(1, 2)  # (B, nh, T, hs), (B, nkv, T, hs)

        if position_embeddings is not None:
            query, key = apply_rotary_pos_emb(query, key, *position_embeddings)
        if position_bias is not None:
            position_bias = position_bias.to(query.dtype)  # a float mask must match the query's dtype
        if cache is not None:
            # kwargs go through: a paged cache reads and fills the attention function's arguments
            key, value = cache.update(key, value, self.layer_idx, kwargs=kwargs)  # (B, nkv, S, hs)

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, attn_weights = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            position_bias=position_bias,
            sliding_window=self.sliding_window,  # for FlashAttention; the others read it from the mask
            **kwargs,
        )
        attn_output = attn_output.reshape(*input_shape, -1)  # (B, T, nh * hs)
        return self.o_proj(attn_output), attn_weights


class HFScratchDecoderLayer(GradientCheckpointingLayer):
    """Attention then MLP, each a residual branch normalised before ("pre") or after the residual add ("post").

    The norms keep Llama's names in both layouts: `input_layernorm` belongs to attention, `post_attention_layernorm`
    to the MLP."""

    def __init__(self, config: HFScratchConfig, layer_idx: int):
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.self_attn = HFScratchAttention(config, layer_idx)
        self.mlp = make_mlp(config)
        self.input_layernorm = make_norm(config, config.hidden_size)
        self.post_attention_layernorm = make_norm(config, config.hidden_size)
        self.residual_dropout = make_dropout(config.residual_dropout)

    def residual(self, sublayer: Callable, norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            return x + self.residual_dropout(sublayer(norm(x)))
        return norm(x + self.residual_dropout(sublayer(x)))

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache: Cache | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        position_bias: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> torch.Tensor:
        def attention(x: torch.Tensor) -> torch.Tensor:
            return self.self_attn(
                x,
                position_embeddings=position_embeddings,
                position_bias=position_bias,
                attention_mask=attention_mask,
                cache=cache,
                **kwargs,
            )[0]

        hidden_states = self.residual(attention, self.input_layernorm, hidden_states)
        return self.residual(self.mlp, self.post_attention_layernorm, hidden_states)


class HFScratchPreTrainedModel(PreTrainedModel):
    config: HFScratchConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["HFScratchDecoderLayer"]
    _supports_sdpa = True
    _supports_flex_attn = True
    # every keyword argument reaches the attention function and the cache, as serving engines' backends require
    _supports_attention_backend = True
    _can_compile_fullgraph = True
    _can_record_outputs = {
        "hidden_states": HFScratchDecoderLayer,
        "attentions": HFScratchAttention,
    }

    @property
    def _supports_flash_attn(self) -> bool:
        # FlashAttention takes no additive bias: ALiBi and relative positions run on eager, SDPA or flex attention.
        return self.config.position_embedding_type not in ATTENTION_BIAS_POSITIONS

    def _check_and_adjust_attn_implementation(self, attn_implementation: str | None, *args, **kwargs) -> str:
        position = self.config.position_embedding_type
        if position in ATTENTION_BIAS_POSITIONS and is_flash_attention_requested(
            requested_attention_implementation=attn_implementation
        ):
            raise ValueError(
                f"attn_implementation={attn_implementation!r} cannot add the attention-score bias of "
                f"position_embedding_type={position!r}; use 'flex_attention', 'sdpa' or 'eager'."
            )
        return super()._check_and_adjust_attn_implementation(attn_implementation, *args, **kwargs)

    @suppress_kernels_logging(layers=UNMAPPED_HUB_LAYERS)
    def set_use_kernels(self, *args, **kwargs):
        # transformers >= 5.25 kernelizes every model it loads where `kernels` is installed, and its hub mapping
        # has no kernel for the gated MLPs' names: each load would warn so, with nothing a user can do. A
        # mapping given in `kernel_config` still swaps them (tests/models/test_kernels.py).
        return super().set_use_kernels(*args, **kwargs)

    def _init_weights(self, module: nn.Module) -> None:
        # N(0, initializer_range) for linears and embeddings, ones/zeros for norms, RoPE frequencies
        super()._init_weights(module)
        # GPT-2: the projections that write into the residual stream get std / sqrt(2 * layers), so the stream's
        # variance does not grow with depth.
        std = self.config.initializer_range / math.sqrt(2 * self.config.num_hidden_layers)
        if isinstance(module, HFScratchAttention):
            init.normal_(module.o_proj.weight, std=std)
        elif isinstance(module, HFScratchMLP):
            init.normal_(module.down_proj.weight, std=std)


class HFScratchModel(HFScratchPreTrainedModel):
    """Embeddings, decoder layers and final norm: the hidden states, without the language-model head."""

    def __init__(self, config: HFScratchConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        # exactly one of these three is set: positions enter the embeddings, the queries and keys, or the scores
        self.embed_positions = self.rotary_emb = self.position_bias = None
        kind = config.position_embedding_type
        if kind == "learned":
            self.embed_positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        elif kind == "sinusoidal":
            self.embed_positions = HFScratchSinusoidalEmbedding(config.hidden_size)
        elif kind == "rope":
            self.rotary_emb = HFScratchRotaryEmbedding(config)
        elif kind == "alibi":
            self.position_bias = HFScratchAlibiBias(config)
        else:
            self.position_bias = HFScratchRelativePositionBias(config)
        self.embedding_dropout = make_dropout(config.embedding_dropout)
        self.layers = nn.ModuleList(
            [HFScratchDecoderLayer(config, layer_idx) for layer_idx in range(config.num_hidden_layers)]
        )
        # post-norm layers end normalised already (Vaswani et al. have no final norm)
        self.norm = make_norm(config, config.hidden_size) if config.norm_position == "pre" else nn.Identity()
        self.post_init()

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @capture_outputs
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> BaseModelOutputWithPast:
        if (input_ids is None) ^ (inputs_embeds is not None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)  # (B, T, C)
        # Training never reads a cache back: building one would only copy every key and value.
        if use_cache is None:
            use_cache = self.config.use_cache and not self.training
        if use_cache and cache is None:
            cache = DynamicCache(config=self.config)
        batch_size, seq_length = inputs_embeds.shape[:2]
        # a paged cache (continuous batching) has no length of its own and always comes with position_ids
        past_seen_tokens = cache.get_seq_length() if isinstance(cache, Cache) else 0
        if position_ids is None:
            position_ids = torch.arange(seq_length, device=inputs_embeds.device) + past_seen_tokens
            position_ids = position_ids.unsqueeze(0)  # (1, T)

        mask_function = create_causal_mask if self.config.sliding_window is None else create_sliding_window_causal_mask
        # transformers finds packed documents (position ids that restart, no attention mask) only without a cache.
        # An empty dynamic cache (which evaluation makes by default) sizes the mask exactly as no cache does, so it
        # is left out: a packed block is masked per document in evaluation as in training.
        empty_dynamic_cache = isinstance(cache, DynamicCache) and past_seen_tokens == 0
        causal_mask = mask_function(
            config=self.config,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            cache=None if empty_dynamic_cache else cache,
            position_ids=position_ids,
        )
        hidden_states = inputs_embeds
        if self.embed_positions is not None:
            hidden_states = hidden_states + self.embed_positions(position_ids)
        hidden_states = self.embedding_dropout(hidden_states)
        position_embeddings = self.rotary_emb(hidden_states, position_ids) if self.rotary_emb is not None else None
        position_bias = None
        if self.position_bias is not None:
            if cache is not None and not isinstance(cache, Cache):
                raise ValueError(
                    f"position_embedding_type={self.config.position_embedding_type!r} needs a (T, S) score bias, "
                    f"which a {type(cache).__name__} (one packed row for many sequences) cannot take; use rope, "
                    "learned or sinusoidal positions for continuous batching."
                )
            relative_position = relative_positions(cache, seq_length, past_seen_tokens, hidden_states.device)
            # flex attention's score_mod indexes the bias by batch: a view, no copy
            position_bias = self.position_bias(relative_position).expand(batch_size, -1, -1, -1)  # (B, nh, T, S)

        for decoder_layer in self.layers:
            hidden_states = decoder_layer(
                hidden_states,
                attention_mask=causal_mask,
                position_ids=position_ids,
                cache=cache,
                use_cache=use_cache,
                position_embeddings=position_embeddings,
                position_bias=position_bias,
                **kwargs,
            )
        return BaseModelOutputWithPast(last_hidden_state=self.norm(hidden_states), cache=cache)


def soft_cap(logits: torch.Tensor, cap: float) -> torch.Tensor:
    """Gemma 2's logit soft-capping: smooth, and bounded in (-cap, cap)."""
    return cap * torch.tanh(logits / cap)


def z_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    num_items_in_batch: torch.Tensor | int | None = None,
    ignore_index: int = -100,
    shift_labels: torch.Tensor | None = None,
    **kwargs,
) -> torch.Tensor:
    """PaLM's auxiliary loss, logsumexp(logits)^2 at every predicted position, reduced as transformers' causal-LM
    loss reduces the cross-entropy (the same shift, ignored labels, and `num_items_in_batch` under accumulation)."""
    if shift_labels is None:
        shift_labels = nn.functional.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    predicted = shift_labels != ignore_index  # (B, T)
    squared = torch.logsumexp(logits.float(), dim=-1).pow(2) * predicted
    count = predicted.sum() if num_items_in_batch is None else num_items_in_batch
    return squared.sum() / count


class HFScratchForCausalLM(HFScratchPreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    _tp_plan = {"lm_head": "colwise_gather_output"}
    _pp_plan = {"lm_head": (["hidden_states"], ["logits"])}
    # A loss computed from the last hidden states and the head's weight without materialising the (B, T, vocab)
    # logits, set by a training wrapper (hfscratch.models.kernels.apply_liger); None: logits, then the loss.
    # Called as fused_linear_loss(hidden_states, lm_head_weight, labels, **loss_kwargs) in training, or when the
    # caller passes skip_logits=True (the Trainer's evaluation with `use_liger_kernel`).
    fused_linear_loss: Callable | None = None

    def __init__(self, config: HFScratchConfig):
        super().__init__(config)
        self.model = HFScratchModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def flops_per_token(self, seq_len: int) -> int:
        """Training FLOPs per token (forward + backward) as in PaLM, appendix B: 6N + 12 * L * H * Q * T.

        N counts the parameters that take part in matrix multiplies: all but the embedding lookups, with the output
        head counted even when it is tied to the input embeddings."""
        config = self.config
        n = self.num_parameters(exclude_embeddings=True)
        if config.tie_word_embeddings:
            n += self.lm_head.weight.numel()
        attention = 12 * config.num_hidden_layers * config.num_attention_heads * config.head_dim * seq_len
        return 6 * n + attention

    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Unpack[TransformersKwargs],
    ) -> CausalLMOutputWithPast:
        # the loss alone, from `fused_linear_loss`: by default in training; the Trainer's evaluation asks for it too
        skip_logits = kwargs.pop("skip_logits", None)
        outputs: BaseModelOutputWithPast = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        hidden_states = slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep)
        if skip_logits is None:
            skip_logits = self.training
        if labels is not None and skip_logits and self.fused_linear_loss is not None:
            loss = self.fused_linear_loss(hidden_states, self.lm_head.weight, labels, **kwargs)
            return CausalLMOutputWithPast(loss=loss, cache=outputs.cache, hidden_states=outputs.hidden_states)
        logits = self.lm_head(hidden_states)  # (B, T, vocab)
        if self.config.logit_softcap is not None:
            logits = soft_cap(logits, self.config.logit_softcap)
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
            if self.config.z_loss_weight:
                loss = loss + self.config.z_loss_weight * z_loss(logits, labels, **kwargs)
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


__all__ = ["HFScratchForCausalLM", "HFScratchModel", "HFScratchPreTrainedModel"]
