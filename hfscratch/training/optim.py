"""Which parameters AdamW decays: matrices of linear layers only.

The Trainer's default (`Trainer.get_decay_parameter_names`) excludes `nn.LayerNorm` modules and names that
contain "bias" or "norm", but decays embeddings (token and learned position tables) and any norm whose
class and name escape its patterns. Decaying an embedding pulls rare tokens' vectors to zero; decaying a
norm's gain pulls it away from the 1 it needs. GPT-3, Llama and nanoGPT decay only the matrices of linear
layers, which is the rule here: decay a parameter when it has two or more dimensions and is not owned by an
embedding module.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext

import torch
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


def muon_parameter_names(model: nn.Module) -> list[str]:
    """The hidden matrices Muon updates: the decayed matrices minus the output head (Muon's authors keep the
    head, like the embeddings, on AdamW: its rows are per-token, not a linear map to orthogonalise)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    head_params = {id(p) for p in head.parameters()} if head is not None else set()
    params = dict(model.named_parameters())
    return [name for name in decay_parameter_names(model) if id(params[name]) not in head_params]


def cpu_has_native_bf16() -> bool:
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def newton_schulz_float32(
    grad: torch.Tensor, ns_coefficients: tuple[float, float, float], ns_steps: int, eps: float
) -> torch.Tensor:
    """torch's `_zeropower_via_newtonschulz` (Keller Jordan's quintic iteration), in float32 instead of bfloat16."""
    a, b, c = ns_coefficients
    x = grad.float()
    if grad.size(0) > grad.size(1):
        x = x.T
    x = x / x.norm().clamp(min=eps)  # spectral norm at most 1
    for _ in range(ns_steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if grad.size(0) > grad.size(1) else x


@contextmanager
def newton_schulz_in_float32() -> Iterator[None]:
    """Runs torch's Muon orthogonalisation in float32 for the length of one step.

    `torch.optim.Muon` casts to bfloat16 for the Newton-Schulz iterations: right on GPUs and on CPUs with bf16
    matrix units, but on a CPU without them bf16 matmuls are emulated, and at the tiny recipes' sizes the
    iterations then cost more than the forward and backward passes (4x slower than float32 on the CI machine).
    torch has no dtype option, so its private function is swapped for the float32 one and put back after.
    """
    from torch.optim import _muon

    original = getattr(_muon, "_zeropower_via_newtonschulz", None)
    if original is None:  # a torch that renamed it: its own (slower here, still correct) iterations
        yield
        return
    _muon._zeropower_via_newtonschulz = newton_schulz_float32
    try:
        yield
    finally:
        _muon._zeropower_via_newtonschulz = original


class InnerStates(Mapping):
    """The per-parameter states of `MuonWithAdamW`'s two optimizers as one read-only mapping (their parameters
    are disjoint). Looked up through the optimizer each time: `load_state_dict` gives each a new state dict. A
    parameter without state reads as {} and is not stored (a `ChainMap` would store it in the first optimizer's
    defaultdict, which then hides the second one's state of that parameter)."""

    def __init__(self, optimizer: MuonWithAdamW):
        self.optimizer = optimizer

    def _states(self) -> tuple[dict, dict]:
        return self.optimizer.muon.state, self.optimizer.adamw.state

    def __getitem__(self, param: torch.Tensor) -> dict:
        return next((state[param] for state in self._states() if param in state), {})

    def __contains__(self, param: object) -> bool:
        return any(param in state for state in self._states())

    def __iter__(self) -> Iterator[torch.Tensor]:
        return itertools.chain(*self._states())

    def __len__(self) -> int:
        return sum(len(state) for state in self._states())


class MuonWithAdamW(torch.optim.Optimizer):
    """`torch.optim.Muon` on the hidden matrices and `torch.optim.AdamW` on the rest, as one optimizer.

    The Trainer and its learning-rate scheduler expect a single optimizer: this one's `param_groups` are the
    two inner optimizers' groups themselves, so the schedule reaches both. Muon's update is rescaled to AdamW's
    RMS (`adjust_lr_fn="match_rms_adamw"`, Moonlight), so one learning rate and weight decay serve both.
    Its `state` is the two inner states as one mapping and its `state_dict` the standard one (parameters
    numbered across all groups): torch.distributed.checkpoint, which writes FSDP2's sharded checkpoints, reads
    both (and would step an optimizer with an empty `state` once at lr 0 to create its states).
    """

    def __init__(self, model: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float], eps: float):
        muon_names, decay_names = set(muon_parameter_names(model)), set(decay_parameter_names(model))
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.muon = torch.optim.Muon(
            [p for n, p in named if n in muon_names], lr=lr, weight_decay=weight_decay, adjust_lr_fn="match_rms_adamw"
        )
        adamw_groups = [
            {"params": [p for n, p in named if n in decay_names - muon_names], "weight_decay": weight_decay},
            {"params": [p for n, p in named if n not in decay_names], "weight_decay": 0.0},
        ]
        self.adamw = torch.optim.AdamW([g for g in adamw_groups if g["params"]], lr=lr, betas=betas, eps=eps)
        super().__init__(self.muon.param_groups + self.adamw.param_groups, {"lr": lr})
        self.state = InnerStates(self)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 (torch's signature)
        loss = closure() if closure is not None else None
        on_cpu = self.muon.param_groups[0]["params"][0].device.type == "cpu" if self.muon.param_groups else False
        with newton_schulz_in_float32() if on_cpu and not cpu_has_native_bf16() else nullcontext():
            self.muon.step()
        self.adamw.step()
        return loss

    def load_state_dict(self, state_dict: dict) -> None:
        """The standard state dict (`Optimizer.state_dict` of this one), split between the inner optimizers; the
        base class's would replace the groups the inner optimizers share with this one."""
        if "muon" in state_dict:  # checkpoints written before the state dict was the standard one
            self.muon.load_state_dict(state_dict["muon"])
            self.adamw.load_state_dict(state_dict["adamw"])
        else:
            groups = state_dict["param_groups"]
            split = len(self.muon.param_groups)
            self.muon.load_state_dict(state_dict_part(state_dict["state"], groups[:split]))
            self.adamw.load_state_dict(state_dict_part(state_dict["state"], groups[split:]))
        # torch's load_state_dict gives each inner optimizer new group dicts: share them again, or the schedule
        # would set the rates of groups no optimizer steps with any more (a resumed run kept its last rate).
        self.param_groups[:] = self.muon.param_groups + self.adamw.param_groups


def state_dict_part(state: dict, groups: list[dict]) -> dict:
    """The state dict of an optimizer over `groups` alone, its parameters numbered from 0 in their order (keys
    may be indices or, from torch.distributed.checkpoint, parameter names: only their positions count)."""
    position = {key: index for index, key in enumerate(key for group in groups for key in group["params"])}
    return {
        "state": {position[key]: value for key, value in state.items() if key in position},
        "param_groups": [{**group, "params": [position[key] for key in group["params"]]} for group in groups],
    }
