"""Learning-rate schedule, weight-decay groups and token-based batch arithmetic against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from hfscratch.models.hfscratch import HFScratchConfig, HFScratchForCausalLM
from hfscratch.training.arguments import PretrainingArguments
from hfscratch.training.batching import BatchRamp, gradient_accumulation_steps
from hfscratch.training.optim import decay_parameter_names
from hfscratch.training.trainer import PretrainTrainer


def tiny_model(preset: str, **overrides) -> HFScratchForCausalLM:
    config = HFScratchConfig.from_preset(
        preset, size="tiny", hidden_size=16, num_hidden_layers=2, num_attention_heads=2, vocab_size=50, **overrides
    )
    return HFScratchForCausalLM(config)


def trainer_for(model: torch.nn.Module, tmp_path, **kwargs) -> PretrainTrainer:
    args = PretrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", **kwargs)
    return PretrainTrainer(model=model, args=args)


def test_schedule_warms_up_linearly_then_decays_by_cosine_to_a_tenth(tmp_path):
    trainer = trainer_for(tiny_model("llama"), tmp_path, learning_rate=1e-3, warmup_steps=10)
    trainer.create_optimizer_and_scheduler(num_training_steps=110)
    rates = []
    for _ in range(111):
        rates.append(trainer.lr_scheduler.get_last_lr()[0])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    # Warmup: step / 10 of the peak. Decay over 100 steps: 0.1 + 0.9 * (1 + cos(pi * t / 100)) / 2 of the peak.
    expected = {0: 0.0, 5: 5e-4, 10: 1e-3, 35: 1e-3 * (0.1 + 0.45 * (1 + math.cos(math.pi / 4))), 60: 5.5e-4, 110: 1e-4}
    for step, rate in expected.items():
        assert rates[step] == pytest.approx(rate, rel=1e-9, abs=1e-12), step
    assert min(rates[10:]) == pytest.approx(1e-4)


def test_weight_decay_covers_matrices_only_where_the_trainer_default_also_decays_embeddings(tmp_path):
    model = tiny_model("gpt2")  # biases, LayerNorms, learned positions, tied head
    trainer = trainer_for(model, tmp_path, weight_decay=0.1)
    layer_matrices = {
        f"model.layers.{i}.{name}.weight"
        for i in range(2)
        for name in (
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "mlp.up_proj",
            "mlp.down_proj",
        )
    }
    assert set(decay_parameter_names(model)) == layer_matrices
    default = set(super(PretrainTrainer, trainer).get_decay_parameter_names(model))
    assert {"model.embed_tokens.weight", "model.embed_positions.weight"} <= default  # what the default misses

    optimizer = trainer.create_optimizer()
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {g["weight_decay"]: {names[id(p)] for p in g["params"]} for g in optimizer.param_groups}
    assert groups[0.1] == layer_matrices
    assert groups[0.0] == set(names.values()) - layer_matrices


def test_rmsnorm_gains_and_untied_head_are_grouped_correctly():
    model = tiny_model("llama", qk_norm=True)  # RMSNorm gains (input/post/final and q/k norms), untied head
    names = set(decay_parameter_names(model))
    assert "lm_head.weight" in names
    assert not any("norm" in n or "embed" in n for n in names)
    assert len(names) == 2 * 7 + 1  # q, k, v, o, gate, up, down per layer, and the head


def test_gradient_accumulation_follows_from_the_batch_in_tokens():
    # 2 processes x 4 rows x 512 tokens = 4,096 tokens per micro-step; a 16,384-token batch needs 4 of them.
    assert gradient_accumulation_steps(16_384, world_size=2, micro_batch_size=4, seq_len=512) == 4
    assert gradient_accumulation_steps(524_288, world_size=64, micro_batch_size=4, seq_len=2048) == 1
    with pytest.raises(ValueError, match=r"10,000.*4,096 tokens; use e\.g\. 8,192"):
        gradient_accumulation_steps(10_000, world_size=2, micro_batch_size=4, seq_len=512)
    with pytest.raises(ValueError, match="not a multiple"):
        gradient_accumulation_steps(2_048, world_size=2, micro_batch_size=4, seq_len=512)  # less than one micro-step


def test_batch_ramp_grows_linearly_in_tokens_trained_to_the_full_batch():
    # Full batch: 8 rows x 1,000 tokens per row = 8,000 tokens; start at 2,000 and reach 8,000 over 20,000 tokens.
    ramp = BatchRamp(start_tokens=2_000, ramp_tokens=20_000, rows=8, tokens_per_row=1_000)
    # Each step: rows = ceil((2000 + 6000 * trained / 20000) / 1000), trained += rows * 1000.
    # trained 0 -> 2 rows; 2000 -> 2.6 -> 3; 5000 -> 3.5 -> 4; 9000 -> 4.7 -> 5; 14000 -> 6.2 -> 7; 21000: done.
    assert [ramp.rows_at(step) for step in range(7)] == [2, 3, 4, 5, 7, 8, 8]
    assert ramp.rows_at(1_000) == 8


@pytest.mark.parametrize("tied", [True, False])
def test_muon_takes_the_hidden_matrices_and_the_schedule_reaches_both_optimizers(tmp_path, tied):
    model = tiny_model("llama", tie_word_embeddings=tied)
    trainer = trainer_for(model, tmp_path, learning_rate=1e-3, warmup_steps=10, matrix_optimizer="muon")
    trainer.create_optimizer_and_scheduler(num_training_steps=110)
    optimizer = trainer.optimizer
    names = {id(p): n for n, p in model.named_parameters()}
    on_muon = {names[id(p)] for g in optimizer.muon.param_groups for p in g["params"]}
    on_adamw = {names[id(p)] for g in optimizer.adamw.param_groups for p in g["params"]}
    # Attention and MLP projections on Muon; embeddings, norms and an untied head on AdamW.
    assert on_muon == {n for n in names.values() if n.endswith("_proj.weight")}
    assert on_adamw == set(names.values()) - on_muon and "model.embed_tokens.weight" in on_adamw
    assert ("lm_head.weight" in on_adamw) == (not tied)
    for _ in range(5):
        model(input_ids=torch.randint(0, 50, (2, 8)), labels=torch.randint(0, 50, (2, 8))).loss.backward()
        optimizer.step()
        trainer.lr_scheduler.step()
        optimizer.zero_grad()
    # Step 5 of a 10-step warmup: half the peak, in the inner optimizers' own groups.
    rates = [g["lr"] for o in (optimizer.muon, optimizer.adamw) for g in o.param_groups]
    assert len(rates) == (2 if tied else 3) and rates == pytest.approx([5e-4] * len(rates))
    state = optimizer.state_dict()
    # The standard layout (torch.distributed.checkpoint reads it): every parameter numbered, each with its state.
    assert set(state) == {"state", "param_groups"} and len(state["state"]) == len(names)
    assert all(state["state"].values()), "a parameter's state is missing"
    optimizer.load_state_dict(state)  # the round trip a resumed run takes
    assert optimizer.state_dict()["state"].keys() == state["state"].keys()
    inner_groups = optimizer.muon.param_groups + optimizer.adamw.param_groups
    assert all(outer is inner for outer, inner in zip(optimizer.param_groups, inner_groups, strict=True))
    trainer.lr_scheduler.step()  # after a resume the schedule still reaches both
    assert [g["lr"] for g in inner_groups] == pytest.approx([6e-4] * len(inner_groups))


def test_muon_is_refused_under_deepspeed(tmp_path):
    with pytest.raises(ValueError, match="matrix_optimizer"):
        PretrainingArguments(
            output_dir=str(tmp_path), matrix_optimizer="muon", deepspeed="recipes/accelerate/zero2.json"
        )


def test_float32_newton_schulz_matches_torchs_and_is_put_back():
    from torch.optim import _muon

    from hfscratch.training.optim import newton_schulz_float32, newton_schulz_in_float32

    original = _muon._zeropower_via_newtonschulz
    grad = torch.randn(48, 96, generator=torch.Generator().manual_seed(0))
    for g in (grad, grad.T):
        ours, theirs = (
            newton_schulz_float32(g, (3.4445, -4.775, 2.0315), 5, 1e-7),
            original(g, (3.4445, -4.775, 2.0315), 5, 1e-7),
        )
        assert ours.dtype == torch.float32 and ours.shape == g.shape
        assert torch.allclose(ours, theirs.float(), atol=2e-2)  # theirs is bfloat16: 8 bits of mantissa
    with newton_schulz_in_float32():
        assert _muon._zeropower_via_newtonschulz is newton_schulz_float32
    assert _muon._zeropower_via_newtonschulz is original
