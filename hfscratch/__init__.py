"""hfscratch: plan, curate, tokenize, pretrain, evaluate and hand off a language model trained from scratch.

Importing the package is cheap: the model classes (and with them torch and transformers) load on first use of
`hfscratch.HFScratchConfig` / `hfscratch.HFScratchForCausalLM`, as transformers' own `_LazyModule` defers its
submodules, so `hfscratch plan` and every `--help` answer without importing torch. Importing
`hfscratch.models` registers the model with transformers' Auto classes.
"""

from __future__ import annotations

import logging
from importlib import import_module
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hfscratch.models.hfscratch import HFScratchConfig, HFScratchForCausalLM

# Import-time warnings of an optional GPU library that no user can act on, printed by every command once it is
# installed (the `gpu` extra): torchao failing to load kernels built for other GPUs and Pythons, and its use of a
# deprecated torch API. Errors still show.
for _noisy in ("torchao", "torch.utils._pytree"):
    logging.getLogger(_noisy).setLevel(logging.ERROR)

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
