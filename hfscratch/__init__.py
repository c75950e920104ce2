"""hfscratch: plan, curate, tokenize, pretrain, evaluate and hand off a language model trained from scratch.

Importing the package registers `HFScratchConfig` and `HFScratchForCausalLM` with transformers' Auto
classes, so `AutoModelForCausalLM.from_config(HFScratchConfig(...))` and saved folders work in this process.
"""

from importlib.metadata import version

from hfscratch.models.hfscratch import HFScratchConfig, HFScratchForCausalLM

__version__ = version("hfscratch")
__all__ = ["HFScratchConfig", "HFScratchForCausalLM", "__version__"]
