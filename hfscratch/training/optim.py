"""Which parameters AdamW decays: matrices of linear layers only.

The Trainer's default (`Trainer.get_decay_parameter_names`) excludes `nn.LayerNorm` modules and names that
contain "bias" or "norm", but decays embeddings (token and learned position tables) and any norm whose
class and name escape its patterns. Decaying an embedding pulls rare tokens' vectors to zero; decaying a
norm's gain pulls it away from the 1 it needs. GPT-3, Llama and nanoGPT decay only the matrices of linear
layers, which is the rule here: decay a parameter when it has two or more dimensions and is not owned by an
embedding module.
"""

from __future__ import annotations

from torch import nn


def decay_parameter_names(model: nn.Module) -> list[str]:
    """Names (as `model.named_parameters()` gives them) of the parameters to decay."""
    embedding_params = {
        id(p) for module in model.modules() if isinstance(module, nn.Embedding) for p in module.parameters()
    }
    names = []
    for name, param in model.named_parameters():
        # Under ZeRO-3 a parameter is a flat shard outside forward; its real shape is `ds_shape`.
        ndim = len(getattr(param, "ds_shape", param.shape))
        if ndim >= 2 and id(param) not in embedding_params:
            names.append(name)
    return names
