"""hfscratch: plan, curate, tokenize, pretrain, evaluate and hand off a language model trained from scratch.

Importing the package is cheap: the model classes (and with them torch and transformers) load on first use of
`hfscratch.HFScratchConfig` / `hfscratch.HFScratchForCausalLM`, as transformers' own `_LazyModule` defers its
submodules, so `hfscratch plan` and every `--help` answer without importing torch. Importing
`hfscratch.models` registers the model with transformers' Auto classes.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hfscratch.models.hfscratch import HFScratchConfig, HFScratchForCausalLM

__version__ = version("hfscratch")
__all__ = ["HFScratchConfig", "HFScratchForCausalLM", "__version__"]
_LAZY = {"HFScratchConfig": "hfscratch.models.hfscratch", "HFScratchForCausalLM": "hfscratch.models.hfscratch"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'hfscratch' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
