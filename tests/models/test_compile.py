"""torch.compile: the forward of every layout traces as one graph (`fullgraph=True` holds), in training (with the
loss) and in generation (a static cache's decoding step). `torch._dynamo.explain` traces without inductor's code
generation, so these run in about a second each; the compiled runs themselves are in the slow set."""

import pytest
import torch
from model_layouts import POSITIONS, layout_grid
from transformers import CompileConfig, StaticCache

from hfscratch.models.hfscratch import HFScratchForCausalLM


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def assert_one_graph(explanation) -> None:
    reasons = [str(reason.reason) for reason in explanation.break_reasons]
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1, reasons


def test_model_declares_fullgraph_compile():
    assert HFScratchForCausalLM._can_compile_fullgraph


@pytest.mark.parametrize("layout", layout_grid())
def test_forward_traces_as_one_graph(make_model, input_ids, layout):
    model = make_model(**layout, qk_norm=True)
    assert_one_graph(torch._dynamo.explain(model)(input_ids))  # inference, with a fresh dynamic cache
    model.train()
    assert_one_graph(torch._dynamo.explain(model)(input_ids, labels=input_ids))  # training, with the loss


@pytest.mark.parametrize("position", POSITIONS)
def test_static_cache_decoding_step_traces_as_one_graph(make_model, input_ids, position):
    model = make_model(position_embedding_type=position)
    cache = StaticCache(config=model.config, max_cache_len=32)
    with torch.no_grad():
        model(input_ids, cache=cache, use_cache=True)
        explanation = torch._dynamo.explain(model)(input_ids[:, -1:], cache=cache, use_cache=True)
    assert_one_graph(explanation)


@pytest.mark.slow
@pytest.mark.parametrize("position", ["rope", "alibi"])
def test_compiled_training_step_matches_eager(make_model, input_ids, position):
    model = make_model(position_embedding_type=position).train()
    compiled = torch.compile(model, fullgraph=True)
    eager_loss = model(input_ids, labels=input_ids).loss
    compiled_loss = compiled(input_ids, labels=input_ids).loss
    compiled_loss.backward()
    torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-5, atol=1e-5)
    assert all(parameter.grad is not None for parameter in model.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("position", ["rope", "relative"])
def test_static_cache_generation_compiles_and_matches(make_model, input_ids, position):
    """generate() compiles the decoding step for a static cache (on CPU only when asked: `_compile_all_devices`)."""
    model = make_model(position_embedding_type=position)
    expected = model.generate(input_ids, max_new_tokens=6, do_sample=False, use_cache=False)
    compile_config = CompileConfig(fullgraph=True, dynamic=False)
    compile_config._compile_all_devices = True
    compiled = model.generate(
        input_ids, max_new_tokens=6, do_sample=False, cache_implementation="static", compile_config=compile_config
    )
    assert torch.equal(compiled, expected)
    assert getattr(model, "_compiled_call", None) is not None  # the forward that generate() compiled and used


def test_growing_batch_compiles_a_bounded_number_of_times(make_model):
    """The batch-size ramp trains on 1, 2, ... rows: after the first change of batch size dynamo makes that
    dimension dynamic (batch 1 is its own specialisation), so a ramp costs at most three compilations, not one per
    step. A CompileCounter backend counts them without inductor's code generation."""
    from torch._dynamo.testing import CompileCounter

    model = make_model().train()
    counter = CompileCounter()
    compiled = torch.compile(model, backend=counter, fullgraph=True)
    for rows in range(1, 9):
        batch = torch.randint(1, 97, (rows, 16))
        compiled(batch, labels=batch).loss.backward()
    assert 1 <= counter.frame_count <= 3, counter.frame_count
