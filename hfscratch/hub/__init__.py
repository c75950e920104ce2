"""Hand-off to the Hugging Face Hub: the model card (lineage -> README.md) and `hfscratch push`."""

from hfscratch.hub.card import render_card, validate_card, write_model_card
from hfscratch.hub.lineage import Lineage, gather_lineage

__all__ = ["Lineage", "gather_lineage", "render_card", "validate_card", "write_model_card"]
