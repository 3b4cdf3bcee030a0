"""Exponential moving average of a module's weights, with a warm-up so short runs are not stale."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """Keeps `shadow`, an averaged copy of `module`; call `update(step)` after each optimizer step."""

    def __init__(self, module: nn.Module, decay: float):
        super().__init__()
        self.decay = decay
        self.shadow = copy.deepcopy(module).requires_grad_(False).eval()

    @torch.no_grad()
    def update(self, module: nn.Module, step: int) -> None:
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        ema_p = list(self.shadow.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in module.parameters()], 1.0 - d)
        for b_ema, b in zip(self.shadow.buffers(), module.buffers(), strict=True):
            b_ema.copy_(b)

    def forward(self, *args, **kwargs):
        return self.shadow(*args, **kwargs)
