"""Learning-rate schedules and gradient clipping, applied by the trainer around every optimizer step.

The optimizers keep the trainer's nominal rate (the configured rate times the scale a rollback left);
the schedule scales it for one update only, so the rate is a pure function of the step and a run
resumes exactly. Clipping bounds the global gradient norm of each optimizer's own parameters.
"""
from __future__ import annotations

import math
from typing import Any

import torch


def lr_factor(step: int, total: int, schedule: str = "constant", warmup: int = 0, min_lr: float = 0.1) -> float:
    """The multiplier of the rate at `step` (from 0) of `total`: linear warm-up, then the schedule."""
    f = min(1.0, (step + 1) / warmup) if warmup else 1.0
    if schedule != "constant":
        span = max(1, total - warmup)
        progress = min(1.0, max(0.0, (step - warmup) / span))
        if schedule == "cosine":
            f *= min_lr + (1.0 - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
        else:  # linear
            f *= 1.0 - (1.0 - min_lr) * progress
    return f


class StepHooks:
    """Scales each optimizer's rate for the current step and clips its gradients just before it steps."""

    def __init__(self, model: torch.nn.Module, opts: dict[str, torch.optim.Optimizer], train: Any):
        self.train = train
        self.step = 0
        self.active = train.schedule != "constant" or train.warmup > 0
        self._saved: dict[int, list[float]] = {}
        for opt in opts.values():
            owned = {id(p) for g in opt.param_groups for p in g["params"]}
            # the model's own parameter order: the global norm sums in the same order as clipping the model
            params = [p for p in model.parameters() if id(p) in owned]
            if train.grad_clip or self.active:
                opt.register_step_pre_hook(self._before(params))
            if self.active:
                opt.register_step_post_hook(self._after)

    def factor(self, step: int | None = None) -> float:
        """The rate multiplier at `step` (default: the step being taken)."""
        t = self.train
        return lr_factor(self.step if step is None else step, t.steps, t.schedule, t.warmup, t.min_lr)

    def _before(self, params: list[torch.nn.Parameter]):
        def hook(opt, args, kwargs) -> None:
            if self.train.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, self.train.grad_clip)
            if self.active:
                self._saved[id(opt)] = [g["lr"] for g in opt.param_groups]
                f = self.factor()
                for g in opt.param_groups:
                    g["lr"] *= f

        return hook

    def _after(self, opt, args, kwargs) -> None:
        for g, lr in zip(opt.param_groups, self._saved.pop(id(opt)), strict=True):
            g["lr"] = lr
