"""The HFScratch model family, registered with the Auto classes on import.

`register_for_auto_class` makes `save_pretrained` write an `auto_map` and copy the two code files next to the
weights, so a saved folder loads with `AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)` where
hfscratch is not installed.
"""

from transformers import AutoConfig, AutoModelForCausalLM

from .configuration_hfscratch import CHOICES, PRESETS, SIZES, HFScratchConfig
from .modeling_hfscratch import HFScratchForCausalLM, HFScratchModel

AutoConfig.register(HFScratchConfig.model_type, HFScratchConfig)
AutoModelForCausalLM.register(HFScratchConfig, HFScratchForCausalLM)
HFScratchConfig.register_for_auto_class()
HFScratchForCausalLM.register_for_auto_class("AutoModelForCausalLM")

__all__ = ["CHOICES", "PRESETS", "SIZES", "HFScratchConfig", "HFScratchForCausalLM", "HFScratchModel"]
