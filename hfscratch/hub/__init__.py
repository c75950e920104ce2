"""Hand-off to the Hugging Face Hub: the model card (lineage -> README.md) and `hfscratch push`.

The names below load on first use (huggingface_hub takes a third of a second to import), so `hfscratch push
--help`, which imports `hfscratch.hub.cli`, stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hfscratch.hub.card import render_card, validate_card, write_model_card
    from hfscratch.hub.lineage import Lineage, gather_lineage

__all__ = ["Lineage", "gather_lineage", "render_card", "validate_card", "write_model_card"]
_LAZY = {
    "Lineage": "hfscratch.hub.lineage",
    "gather_lineage": "hfscratch.hub.lineage",
    "render_card": "hfscratch.hub.card",
    "validate_card": "hfscratch.hub.card",
    "write_model_card": "hfscratch.hub.card",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hfscratch.hub' has no attribute {name!r}")
