import itertools
import json
import os
import subprocess
import sys

import pytest
import torch

from hfscratch.models.hfscratch import CHOICES

POSITIONS = CHOICES["position_embedding_type"]
FIELDS = ("position_embedding_type", "norm_type", "norm_position", "mlp_type")
ARCHITECTURES = [dict(zip(FIELDS, values)) for values in itertools.product(*(CHOICES[field] for field in FIELDS))]

# Runs in a fresh interpreter where `hfscratch` cannot be imported: every folder must bring its own code.
LOAD_WITHOUT_HFSCRATCH = """
import sys
sys.modules["hfscratch"] = None
import pathlib, torch
from transformers import AutoModelForCausalLM
root = pathlib.Path(sys.argv[1])
input_ids = torch.load(root / "input_ids.pt")
results = {}
for folder in sorted(path for path in root.iterdir() if (path / "config.json").exists()):
    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()
    with torch.no_grad():
        results[folder.name] = (type(model).__module__, model(input_ids).logits)
torch.save(results, root / "results.pt")
"""


@pytest.mark.slow
def test_every_architecture_trains_saves_and_reloads_without_hfscratch(tmp_path, make_model, train_steps, input_ids):
    expected = {}
    for architecture in ARCHITECTURES:
        name = "-".join(architecture.values())
        model = make_model(**architecture)
        losses = train_steps(model, input_ids)
        assert losses[-1] < 0.75 * losses[0], f"{name}: loss did not fall: {losses}"
        model.eval().save_pretrained(tmp_path / name)
        with torch.no_grad():
            expected[name] = model(input_ids).logits
    torch.save(input_ids, tmp_path / "input_ids.pt")

    env = {**os.environ, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-c", LOAD_WITHOUT_HFSCRATCH, tmp_path], env=env, cwd=tmp_path, check=True)
    results = torch.load(tmp_path / "results.pt")

    assert results.keys() == expected.keys() and len(expected) == 40
    for name, (module, logits) in results.items():
        assert module.startswith("transformers_modules."), f"{name} was not loaded from its own code: {module}"
        assert torch.equal(logits, expected[name]), f"{name}: logits changed after reloading"


def test_saved_folder_carries_code_and_auto_map(tmp_path, make_model):
    make_model().save_pretrained(tmp_path)
    assert {"configuration_hfscratch.py", "modeling_hfscratch.py", "model.safetensors"} <= {
        path.name for path in tmp_path.iterdir()
    }
    assert json.loads((tmp_path / "config.json").read_text())["auto_map"] == {
        "AutoConfig": "configuration_hfscratch.HFScratchConfig",
        "AutoModelForCausalLM": "modeling_hfscratch.HFScratchForCausalLM",
    }


@pytest.mark.parametrize("position", POSITIONS)
def test_cached_decoding_matches_full_recompute(make_model, input_ids, position):
    model = make_model(position_embedding_type=position)
    with torch.no_grad():
        full = model(input_ids).logits
        outputs = model(input_ids[:, :5], use_cache=True)
        steps = [outputs.logits]
        for t in range(5, input_ids.shape[1]):
            outputs = model(input_ids[:, t : t + 1], cache=outputs.cache)
            steps.append(outputs.logits)
    assert (torch.cat(steps, dim=1) - full).abs().max() < 1e-4


@pytest.mark.parametrize("position", POSITIONS)
def test_greedy_generate_with_cache_matches_recompute(make_model, input_ids, position):
    model = make_model(position_embedding_type=position)
    # With the cache, every step after the prompt must feed the model one new token (not the whole sequence, and
    # not a last token with no cache behind it).
    step_lengths = []
    model.model.register_forward_pre_hook(
        lambda module, args, kwargs: step_lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    cached = model.generate(input_ids, max_new_tokens=8, do_sample=False, use_cache=True)
    assert step_lengths == [input_ids.shape[1]] + [1] * 7
    recomputed = model.generate(input_ids, max_new_tokens=8, do_sample=False, use_cache=False)
    assert torch.equal(cached, recomputed)
    assert len(set(cached[0, -8:].tolist())) > 1, "degenerate model: greedy repeats one token"


@pytest.mark.parametrize("position", POSITIONS)
def test_batched_generation_with_left_padding_matches_unbatched(make_model, input_ids, position):
    model = make_model(position_embedding_type=position)
    prompts = [input_ids[0, :5], input_ids[1, :9]]
    batch = torch.zeros(2, 9, dtype=torch.long)
    attention_mask = torch.zeros(2, 9, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        batch[row, -len(prompt) :] = prompt
        attention_mask[row, -len(prompt) :] = 1
    batched = model.generate(batch, attention_mask=attention_mask, max_new_tokens=6, do_sample=False)
    for row, prompt in enumerate(prompts):
        alone = model.generate(prompt[None], max_new_tokens=6, do_sample=False)
        assert torch.equal(batched[row, -6:], alone[0, -6:]), f"row {row} differs"


def test_old_cache_argument_name_still_works(make_model, input_ids):
    model = make_model()
    with torch.no_grad():
        prefix = model(input_ids[:, :6], use_cache=True).cache
        expected = model(input_ids).logits[:, 6:]
        with pytest.warns(FutureWarning, match="`past_key_values` is deprecated"):
            logits = model(input_ids[:, 6:], past_key_values=prefix).logits
    assert (logits - expected).abs().max() < 1e-4


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("num_key_value_heads", [4, 2, 1])
def test_sdpa_matches_eager(make_model, input_ids, position, num_key_value_heads):
    model = make_model(position_embedding_type=position, num_key_value_heads=num_key_value_heads, qk_norm=True)
    assert model.config._attn_implementation == "sdpa"
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, :3] = 0  # left padding in the first row
    with torch.no_grad():
        sdpa = model(input_ids, attention_mask=attention_mask).logits
        model.set_attn_implementation("eager")
        eager = model(input_ids, attention_mask=attention_mask).logits
    real = attention_mask.bool()
    assert (sdpa[real] - eager[real]).abs().max() < 1e-5


@pytest.mark.parametrize("position", POSITIONS)
def test_gradient_checkpointing_gives_the_same_gradients(make_model, input_ids, position):
    model = make_model(position_embedding_type=position).train()

    def gradients() -> dict[str, torch.Tensor]:
        model.zero_grad()
        model(input_ids, labels=input_ids).loss.backward()
        return {name: parameter.grad.clone() for name, parameter in model.named_parameters()}

    plain = gradients()
    model.activation_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.model.layers)
    checkpointed = gradients()
    for name, gradient in plain.items():
        torch.testing.assert_close(checkpointed[name], gradient, rtol=0, atol=1e-6, msg=name)


def test_init_weights_initialises_every_parameter(make_model):
    model = make_model(norm_type="layernorm", qk_norm=True, attention_bias=True, position_embedding_type="relative")
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(1e34)  # what ZeRO-3 left in a norm that init skipped
    for module in reversed(list(model.modules())):  # children before parents, as `initialize_weights` does
        model._init_weights(module)
    for name, parameter in model.named_parameters():
        assert parameter.abs().max() < 5, f"{name} not initialised"
        if "norm" in name:
            expected = 1.0 if name.endswith("weight") else 0.0
            assert torch.all(parameter == expected), name
        elif name.endswith("bias"):
            assert torch.all(parameter == 0), name
    std = model.config.initializer_range
    assert model.model.layers[0].self_attn.q_proj.weight.std().item() == pytest.approx(std, rel=0.2)
    assert model.model.layers[0].self_attn.o_proj.weight.std().item() == pytest.approx(std / 2, rel=0.2)  # 1/sqrt(2L)


def test_lora_targets_llama_module_names(make_model, input_ids, train_steps):
    peft = pytest.importorskip("peft")
    model = make_model()
    lora_model = peft.get_peft_model(
        model, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    )
    adapted = {name for name, module in lora_model.named_modules() if hasattr(module, "lora_A")}
    assert len(adapted) == 2 * model.config.num_hidden_layers
    assert all(name.endswith(("self_attn.q_proj", "self_attn.v_proj")) for name in adapted)
    trainable = [name for name, parameter in lora_model.named_parameters() if parameter.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    frozen_before = model.model.layers[0].self_attn.q_proj.base_layer.weight.clone()
    losses = train_steps(lora_model, input_ids, steps=5)
    assert losses[-1] < losses[0]
    assert torch.equal(model.model.layers[0].self_attn.q_proj.base_layer.weight, frozen_before)


@pytest.mark.parametrize("tie_word_embeddings", [True, False])
def test_flops_per_token_is_palm_formula(make_model, tie_word_embeddings):
    model = make_model(tie_word_embeddings=tie_word_embeddings)
    c = model.config  # llama layout: bias-free gated MLP, RMSNorm
    attention = c.hidden_size * (2 * c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim
    mlp = 3 * c.hidden_size * c.intermediate_size
    norms = (2 * c.num_hidden_layers + 1) * c.hidden_size
    matmul_parameters = c.num_hidden_layers * (attention + mlp) + norms + c.vocab_size * c.hidden_size
    assert model.flops_per_token(seq_len=16) == 6 * matmul_parameters + 12 * 2 * 4 * 8 * 16
    embeddings = c.vocab_size * c.hidden_size
    assert model.num_parameters() == matmul_parameters + (0 if tie_word_embeddings else embeddings)
    assert model.num_parameters(exclude_embeddings=True) == matmul_parameters - (
        embeddings if tie_word_embeddings else 0
    )


def test_tied_embeddings_share_storage(make_model):
    model = make_model(tie_word_embeddings=True)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_hidden_states_and_attentions_can_be_returned(make_model, input_ids):
    model = make_model()
    model.set_attn_implementation("eager")
    outputs = model(input_ids, output_hidden_states=True, output_attentions=True)
    assert len(outputs.hidden_states) == model.config.num_hidden_layers + 1
    assert outputs.attentions[0].shape == (2, 4, 12, 12)


def test_training_mode_builds_no_cache(make_model, input_ids):
    model = make_model().train()
    assert model(input_ids, labels=input_ids).cache is None
    assert model.eval()(input_ids).cache is not None
