"""Optional losses: logit soft-capping and z-loss, against a hand computation."""

import re

import pytest
import torch
from torch import nn

from hfscratch.models.hfscratch import HFScratchConfig


def raw_logits(model, input_ids) -> torch.Tensor:
    return model.lm_head(model.model(input_ids).last_hidden_state)


def test_logit_softcap_bounds_the_logits(make_model, input_ids):
    model = make_model(logit_softcap=2.0, initializer_range=0.5)
    with torch.no_grad():
        raw = raw_logits(model, input_ids)
        capped = model(input_ids).logits
    assert raw.abs().max() > 2.0  # the cap has something to do
    torch.testing.assert_close(capped, 2.0 * torch.tanh(raw / 2.0))
    assert capped.abs().max() <= 2.0


def test_z_loss_adds_the_squared_log_normaliser(make_model, input_ids):
    model = make_model(z_loss_weight=1e-2, logit_softcap=5.0)
    labels = input_ids.clone()
    labels[0, 4:7] = -100  # ignored positions count in neither term
    with torch.no_grad():
        loss = model(input_ids, labels=labels).loss
        logits = 5.0 * torch.tanh(raw_logits(model, input_ids) / 5.0)
    predictions, targets = logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten()
    kept = targets != -100
    cross_entropy = nn.functional.cross_entropy(predictions[kept], targets[kept])
    z = torch.logsumexp(predictions[kept], dim=-1).pow(2).mean()
    assert z > 1  # the z term is not negligible in this check
    torch.testing.assert_close(loss, cross_entropy + 1e-2 * z)


def test_z_loss_follows_gradient_accumulation_normalisation(make_model, input_ids):
    """Under accumulation the Trainer passes `num_items_in_batch`: both terms are sums divided by it."""
    model = make_model(z_loss_weight=0.5)
    with torch.no_grad():
        plain = make_model()(input_ids, labels=input_ids, num_items_in_batch=40).loss
        with_z = model(input_ids, labels=input_ids, num_items_in_batch=40).loss
        logits = raw_logits(model, input_ids)[:, :-1]
    z_sum = torch.logsumexp(logits, dim=-1).pow(2).sum()
    torch.testing.assert_close(with_z, plain + 0.5 * z_sum / 40)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"z_loss_weight": -1.0}, "z_loss_weight=-1.0 must be >= 0."),
        ({"logit_softcap": 0.0}, "logit_softcap=0.0 must be positive or None."),
        ({"sliding_window": 0}, "sliding_window=0 must be a positive number of tokens or None."),
    ],
)
def test_invalid_loss_and_window_fields(fields, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        HFScratchConfig(**fields)
