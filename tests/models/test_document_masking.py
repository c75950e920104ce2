"""Document masking: a packed block whose position ids restart at each document, with no attention mask, gives each
document the logits it gets alone, for every position type and attention implementation, in training and in
evaluation mode (which makes a cache by default)."""

import pytest
import torch
from model_layouts import POSITIONS

EOS = 3
DOCUMENT_LENGTHS = (5, 7, 4)  # each ends with EOS; the last block row has a fourth, unfinished document


def packed_block(generator: torch.Generator) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(1, T) ids of documents that each end with EOS, and the documents alone; no id is the pad id 0 or EOS inside
    a document."""
    documents = []
    for length in DOCUMENT_LENGTHS:
        body = torch.randint(4, 97, (length - 1,), generator=generator)
        documents.append(torch.cat([body, torch.tensor([EOS])]))
    documents.append(torch.randint(4, 97, (3,), generator=generator))
    return torch.cat(documents)[None], documents


def restarting_positions(documents: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([torch.arange(len(document)) for document in documents])[None]


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("position", POSITIONS)
def test_packed_block_equals_documents_one_by_one(make_model, position, training, attn_implementation):
    model = make_model(position_embedding_type=position, attn_implementation=attn_implementation)
    model.train(training)  # no dropout in these configs: train mode differs only by making no cache
    block, documents = packed_block(torch.Generator().manual_seed(0))
    with torch.no_grad():
        packed = model(input_ids=block, position_ids=restarting_positions(documents)).logits[0]
        alone = torch.cat([model(input_ids=document[None]).logits[0] for document in documents])
    torch.testing.assert_close(packed, alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("position", ["alibi", "relative", "rope"])
def test_without_restarting_positions_documents_see_each_other(make_model, position):
    """The check above can fail: with positions counting through the block, later documents differ."""
    model = make_model(position_embedding_type=position)
    block, documents = packed_block(torch.Generator().manual_seed(0))
    with torch.no_grad():
        packed = model(input_ids=block).logits[0]
        alone = torch.cat([model(input_ids=document[None]).logits[0] for document in documents])
    first = DOCUMENT_LENGTHS[0]
    torch.testing.assert_close(packed[:first], alone[:first], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(packed[first:], alone[first:], atol=1e-3)


@pytest.mark.parametrize("position", ["alibi", "relative"])
def test_batched_rows_take_their_own_document_distances(make_model, position):
    """Two rows packed differently: each row's bias follows its own position ids."""
    model = make_model(position_embedding_type=position)
    block, documents = packed_block(torch.Generator().manual_seed(0))
    other, other_documents = packed_block(torch.Generator().manual_seed(1))
    positions = torch.cat([restarting_positions(documents), restarting_positions(other_documents)])
    with torch.no_grad():
        both = model(input_ids=torch.cat([block, other]), position_ids=positions).logits
        rows = [model(input_ids=ids, position_ids=pos[None]).logits[0] for ids, pos in zip((block, other), positions)]
    torch.testing.assert_close(both, torch.stack(rows), rtol=1e-5, atol=1e-5)
