"""Fused kernels: Liger patches the Llama-compatible layouts (a one-line error names the field for the others), the
model's fused-loss hook replaces the logits in training, and the kernels hub (`use_kernels`) swaps in the kernels
mapped to our layers' declared names. Patching needs no GPU; running Liger's Triton kernels does
(benchmarks/gpu_throughput.py)."""

import importlib
import importlib.metadata
import logging

import pytest
import torch
import transformers
from torch import nn

from hfscratch.models.hfscratch.modeling_hfscratch import (
    HFScratchForCausalLM,
    HFScratchGeGLUMLP,
    HFScratchMLP,
    HFScratchRMSNorm,
    HFScratchSwiGLUMLP,
)
from hfscratch.models.kernels import LigerFusedLinearLoss, apply_liger


@pytest.fixture
def liger():
    return pytest.importorskip("liger_kernel.transformers")


@pytest.mark.parametrize("qk_norm", [False, True])
def test_liger_replaces_every_rmsnorm_and_swiglu(make_model, liger, qk_norm):
    model = make_model(qk_norm=qk_norm)  # the llama layout
    patched = apply_liger(model)
    norms = ["input_layernorm", "post_attention_layernorm"] + (["self_attn.q_norm", "self_attn.k_norm"] * qk_norm)
    expected = {"model.norm"} | {
        f"model.layers.{i}.{name}" for i in range(model.config.num_hidden_layers) for name in [*norms, "mlp"]
    }
    assert set(patched) == expected
    for module in model.modules():
        if isinstance(module, HFScratchRMSNorm):
            assert module._get_name() == "LigerRMSNorm" and module.forward.__func__ is liger.LigerRMSNorm.forward
            assert module.variance_epsilon == model.config.norm_eps
        elif isinstance(module, HFScratchMLP):
            assert module._get_name() == "LigerSwiGLUMLP" and module.forward.__func__ is liger.LigerSwiGLUMLP.forward
    assert isinstance(model.fused_linear_loss, LigerFusedLinearLoss)
    assert "fused_linear_loss" not in str(model.state_dict().keys())


def test_liger_options_follow_the_kernel_config(make_model, liger):
    model = make_model()
    patched = apply_liger(model, {"swiglu": False, "fused_linear_cross_entropy": False})
    assert patched and all("mlp" not in name for name in patched)
    assert model.fused_linear_loss is None
    with pytest.raises(ValueError, match="^liger_kernel_config: rope: true is not supported"):
        apply_liger(make_model(), {"rope": True})
    with pytest.raises(ValueError, match="^liger_kernel_config: unknown key"):
        apply_liger(make_model(), {"layer_norm": True})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"norm_type": "layernorm"}, "use_liger_kernel: true cannot patch norm_type='layernorm'"),
        ({"mlp_type": "plain"}, "use_liger_kernel: true cannot patch mlp_type='plain'"),
        ({"hidden_act": "gelu_pytorch_tanh"}, "use_liger_kernel: true cannot patch hidden_act='gelu_pytorch_tanh'"),
    ],
)
def test_liger_refuses_other_layouts_naming_the_field(make_model, fields, message):
    model = make_model(**fields)
    with pytest.raises(ValueError, match=f"^{message}"):
        apply_liger(model)
    assert model.fused_linear_loss is None  # nothing half-patched


def test_fused_loss_hook_replaces_logits_in_training(make_model, input_ids):
    """A fused loss set on the model is used in training (no logits are made), in evaluation only when asked.
    Checked with the same loss in plain torch, which Liger's kernels compute in chunks on a GPU."""
    model = make_model().train()
    expected = model(input_ids, labels=input_ids).loss
    calls = []

    def plain_fused_loss(hidden_states, weight, labels, **kwargs):
        calls.append(hidden_states.shape)
        logits = hidden_states @ weight.T
        shifted = nn.functional.pad(labels, (0, 1), value=-100)[..., 1:]
        return nn.functional.cross_entropy(logits.flatten(0, 1), shifted.flatten(), ignore_index=-100)

    model.fused_linear_loss = plain_fused_loss
    outputs = model(input_ids, labels=input_ids)
    assert outputs.logits is None and calls == [(2, 12, model.config.hidden_size)]
    torch.testing.assert_close(outputs.loss, expected)
    assert model.eval()(input_ids, labels=input_ids).logits is not None and len(calls) == 1
    # the Trainer's evaluation under use_liger_kernel asks for the loss alone
    evaluated = model(input_ids, labels=input_ids, skip_logits=True)
    assert evaluated.logits is None and len(calls) == 2
    torch.testing.assert_close(evaluated.loss, expected)


def test_mlp_class_follows_the_activation(make_model):
    assert type(make_model().model.layers[0].mlp) is HFScratchSwiGLUMLP
    assert type(make_model(hidden_act="gelu_pytorch_tanh").model.layers[0].mlp) is HFScratchGeGLUMLP
    assert type(make_model(hidden_act="gelu").model.layers[0].mlp) is HFScratchMLP  # exact GELU: no hub kernel
    assert type(make_model(mlp_type="plain").model.layers[0].mlp) is HFScratchMLP


def kernels_hub():
    """The `kernels` package, where transformers accepts its version; a skip naming the range otherwise."""
    from transformers.utils import is_kernels_available
    from transformers.utils.import_utils import KERNELS_MAX_VERSION, KERNELS_MIN_VERSION

    if not is_kernels_available():
        try:
            installed = f"kernels {importlib.metadata.version('kernels')} is installed"
        except importlib.metadata.PackageNotFoundError:
            installed = "kernels is not installed"
        pytest.skip(
            f"transformers {transformers.__version__} uses the kernels hub only with kernels >= {KERNELS_MIN_VERSION}, "
            f"< {KERNELS_MAX_VERSION} ({installed}); without it the hub decorators are no-ops and use_kernels=True "
            "raises"
        )
    return importlib.import_module("kernels")


# Kernel layers as the hub ships them: stateless, the replaced module's forward signature, its weights read from
# the module. These run torch's math and record their calls; a mapping to an in-process repository (anything with
# `load()` returning the layer) needs no download, so `use_kernels` runs for real on a CPU.
KERNEL_CALLS: list[str] = []


class RecordingRMSNorm(nn.Module):
    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        KERNEL_CALLS.append("RMSNorm")
        variance = hidden_states.float().pow(2).mean(-1, keepdim=True)
        return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


class RecordingGatedMLP(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        KERNEL_CALLS.append("GatedMLP")
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class InProcessRepository:
    def __init__(self, layer: type[nn.Module]):
        self.layer = layer

    def load(self) -> type[nn.Module]:
        return self.layer


@pytest.mark.parametrize(("hidden_act", "mlp_layer"), [("silu", "SwiGLUMLP"), ("gelu_pytorch_tanh", "GeGLUMLP")])
def test_kernels_hub_replaces_the_declared_layers_on_cpu(make_model, input_ids, hidden_act, mlp_layer):
    """`use_kernels` (transformers' `set_use_kernels`, as `from_pretrained(use_kernels=True)` calls it) looks our
    layers up by their declared names and swaps in the mapped kernels' forwards: every RMSNorm (q/k norms too) and
    every gated MLP, with the same logits (transformers 5.25 with kernels 0.19.1, which it requires)."""
    kernels = kernels_hub()
    assert (HFScratchRMSNorm.kernel_layer_name, HFScratchSwiGLUMLP.kernel_layer_name) == ("RMSNorm", "SwiGLUMLP")
    assert HFScratchGeGLUMLP.kernel_layer_name == "GeGLUMLP"
    model = make_model(hidden_act=hidden_act, qk_norm=True).eval()
    expected = model(input_ids).logits
    mapping = {
        "RMSNorm": {"cpu": InProcessRepository(RecordingRMSNorm)},
        mlp_layer: {"cpu": InProcessRepository(RecordingGatedMLP)},
    }
    with kernels.use_kernel_mapping(mapping):
        model.set_use_kernels(True, mode=kernels.Mode.INFERENCE)
    assert model.use_kernels
    kernel_forwards = (RecordingRMSNorm.forward, RecordingGatedMLP.forward)
    replaced = {
        name for name, module in model.named_modules() if getattr(module.forward, "__func__", None) in kernel_forwards
    }
    layers = [f"model.layers.{i}" for i in range(model.config.num_hidden_layers)]
    norms = ["input_layernorm", "post_attention_layernorm", "self_attn.q_norm", "self_attn.k_norm"]
    assert replaced == {"model.norm"} | {f"{layer}.{name}" for layer in layers for name in [*norms, "mlp"]}
    KERNEL_CALLS.clear()
    torch.testing.assert_close(model(input_ids).logits, expected)
    assert KERNEL_CALLS.count("RMSNorm") == 1 + 4 * len(layers) and KERNEL_CALLS.count("GatedMLP") == len(layers)


@pytest.mark.parametrize("hidden_act", ["silu", "gelu_pytorch_tanh"])
def test_a_saved_model_loads_without_warning_about_the_mlps_the_hub_maps_nothing_to(
    make_model, tmp_path, caplog, hidden_act
):
    """transformers 5.25 kernelizes every model it loads; its hub mapping has no kernel for SwiGLUMLP or
    GeGLUMLP, and the kernels package warned about each on every load (the quickstart's samples printed it)."""
    kernels_hub()
    make_model(hidden_act=hidden_act).save_pretrained(tmp_path)
    with caplog.at_level(logging.WARNING):
        loaded = HFScratchForCausalLM.from_pretrained(tmp_path)
    assert loaded.use_kernels  # kernelized at load: the warning had its chance
    assert not [r.getMessage() for r in caplog.records if "No kernel mapping found" in r.getMessage()]


def test_other_model_families_are_left_to_the_trainer(liger):
    from transformers import LlamaConfig, LlamaForCausalLM

    llama = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, vocab_size=97))
    assert apply_liger(llama) == []  # the Trainer's `use_liger_kernel` patches model types Liger knows
    assert type(llama.model.norm).__name__ == "LlamaRMSNorm"
