"""The generic training loop, checkpoints and run directories."""
from .checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from .loop import Trainer, train

__all__ = ["Trainer", "find_checkpoint", "load_checkpoint", "save_checkpoint", "train"]
