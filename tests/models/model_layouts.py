"""The layouts every model test runs over: each combination of positions, norm type, norm position and MLP type."""

import itertools

import pytest

from hfscratch.models.hfscratch import CHOICES, PRESETS

POSITIONS = CHOICES["position_embedding_type"]
FIELDS = ("position_embedding_type", "norm_type", "norm_position", "mlp_type")
LAYOUTS = [dict(zip(FIELDS, values)) for values in itertools.product(*(CHOICES[field] for field in FIELDS))]
# The five presets' layouts: every position, both norms, both norm positions and both MLP types among them, for
# the tests too slow to run on all 40 layouts outside the slow set.
PRESET_LAYOUTS = [{field: PRESETS[name][field] for field in FIELDS} for name in PRESETS]


def layout_id(layout: dict) -> str:
    return "-".join(layout.values())


def layout_grid() -> list:
    """All 40 layouts as pytest parameters: the presets' five always run, the other 35 in the slow set."""
    return [
        pytest.param(layout, marks=() if layout in PRESET_LAYOUTS else pytest.mark.slow, id=layout_id(layout))
        for layout in LAYOUTS
    ]
