"""The Python API: `aigc.load(run_dir)` gives a trained model ready to sample."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError
from .models.base import GenerativeModel, build_model
from .tensorfile import check_safetensors
from .train.checkpoint import find_checkpoint, load_checkpoint
from .train.loop import read_run_config


class Loaded:
    """A trained model plus the facts of its run; `sample()` is the thing you want."""

    def __init__(self, model: GenerativeModel, run_dir: Path, checkpoint: Path, config: Any):
        self.model, self.run_dir, self.checkpoint, self.config = model, run_dir, checkpoint, config

    @property
    def modality(self) -> str:
        return self.model.modality

    @property
    def class_names(self) -> list[str]:
        return self.model.class_names

    def sample(self, n: int = 16, *, labels: Any = None, seed: int | None = None, **kwargs: Any) -> Any:
        """n samples: images as float [n, C, H, W] in [0, 1], text as a list of strings."""
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        if labels is not None:
            kwargs["labels"] = labels
        return self.model.sample(n, generator=g, **kwargs)

    def sample_pil(self, n: int = 16, **kwargs: Any):
        """Images as one PIL grid (see aigc.io.to_pil for single images)."""
        from .io import to_pil

        return to_pil(self.sample(n, **kwargs))

    def __repr__(self) -> str:
        return f"Loaded({self.config.model['name']}, {self.run_dir}, {self.checkpoint.name})"


def load(run_dir: str | Path, checkpoint: str = "latest") -> Loaded:
    """Rebuild a run's model from config.yaml + data.json and its newest intact checkpoint.

    `checkpoint` may be "latest", "best" (marked by evaluation during training) or a name like
    "step-00001000". Only safetensors, JSON and YAML are read: nothing is unpickled.
    """
    run_dir = Path(run_dir)
    if run_dir.is_file():
        check_safetensors(run_dir)  # refuses pickles with a reason before anything else
        raise CheckpointError(f"{run_dir} is a file", "give the run directory that holds config.yaml")
    cfg = read_run_config(run_dir)
    try:
        meta = json.loads((run_dir / "data.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{run_dir}/data.json is missing or damaged: {e}", "restore it from the run") from None
    model = build_model(cfg.model, meta)
    ckpt = find_checkpoint(run_dir, checkpoint, warn=lambda m: None)
    if ckpt is None:
        raise CheckpointError(f"{run_dir} has no intact checkpoint", "train it first, or resume it with --resume")
    load_checkpoint(ckpt, model)
    model.eval()
    return Loaded(model, run_dir, ckpt, cfg)
