"""Training: the generic loop (loop.py), EMA (ema.py), schedules and clipping (schedule.py).

The loop is imported on first use, so that importing aigc.train.ema (as loading a run does) does
not pull in the trainer.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Trainer", "find_checkpoint", "load_checkpoint", "save_checkpoint", "train"]


def __getattr__(name: str) -> Any:
    if name in ("Trainer", "train"):
        from . import loop

        return getattr(loop, name)
    if name in __all__:
        from . import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(name)
