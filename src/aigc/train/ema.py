"""Exponential moving averages of the networks a family names (`ema_modules`), kept by the trainer.

The copy lives inside the model under `ema_key(name)` (a GAN's `g_ema.shadow.*`), so it is saved in
and loaded from the run's checkpoints like any weight, and the family samples from it with
`model.averaged(name)`. The trainer updates it right after each step of the optimizer that owns
the network, counting those steps itself, so a critic that steps five times per generator step
leaves the average alone in between.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import ConfigError
from ..models.base import GenerativeModel, ema_key


class EMA(nn.Module):
    """Keeps `shadow`, an averaged copy of `module`; call `update(module, k)` after its k-th step (from 0)."""

    def __init__(self, module: nn.Module, decay: float):
        super().__init__()
        self.decay = decay
        self.shadow = copy.deepcopy(module).requires_grad_(False).eval()

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        d = min(self.decay, (1.0 + step) / (10.0 + step))  # warm-up: short runs are not stale
        ema_p = list(self.shadow.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in module.parameters()], 1.0 - d)
        for b_ema, b in zip(self.shadow.buffers(), module.buffers(), strict=True):
            b_ema.copy_(b)

    def forward(self, *args, **kwargs):
        return self.shadow(*args, **kwargs)


def attach_ema(model: GenerativeModel) -> GenerativeModel:
    """Give the model an EMA copy of every network it names (before its weights are loaded)."""
    for name, decay in model.ema_modules().items():
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"EMA decay of {name} is {decay}", "use a decay in (0, 1), e.g. 0.999")
        setattr(model, ema_key(name), EMA(getattr(model, name), decay))
    return model


class EMAUpdates:
    """Updates each EMA after every step of the optimizer that owns its network.

    `counts` (updates done per network) is saved in the checkpoint's state.json and restored on resume.
    """

    def __init__(self, model: GenerativeModel, opts: dict[str, torch.optim.Optimizer]):
        self.model = model
        self.counts: dict[str, int] = {}
        self._owner: dict[str, str] = {}
        for name in model.ema_modules():
            net_params = {id(p) for p in getattr(model, name).parameters()}
            owners = [k for k, o in opts.items()
                      if any(id(p) in net_params for g in o.param_groups for p in g["params"])]
            if len(owners) != 1:
                raise ConfigError(f"EMA of {name}: {len(owners)} optimizers own its parameters",
                                  "a family's EMA network must be stepped by exactly one optimizer")
            self._owner[name] = owners[0]
            self.counts[name] = 0
            opts[owners[0]].register_step_post_hook(self._hook(name))

    def _hook(self, name: str):
        def after_step(opt, args, kwargs) -> None:
            getattr(self.model, ema_key(name)).update(getattr(self.model, name), self.counts[name])
            self.counts[name] += 1

        return after_step

    def restore(self, saved: dict[str, int] | None, opts: dict[str, torch.optim.Optimizer]) -> None:
        """Counts from a checkpoint; one written before they were saved gives its optimizer's own step count."""
        for name in self.counts:
            if saved and name in saved:
                self.counts[name] = int(saved[name])
            else:
                self.counts[name] = optimizer_steps(opts[self._owner[name]])


def optimizer_steps(opt: torch.optim.Optimizer) -> int:
    """Steps an Adam-family optimizer has taken (its per-parameter 'step'), 0 when it keeps none."""
    for state in opt.state.values():
        if "step" in state:
            return int(state["step"])
    return 0
