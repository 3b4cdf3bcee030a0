"""Writing samples to files through their modality (PNG grids and npz for images, txt for text)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torchvision.utils import make_grid


def to_pil(images: torch.Tensor, nrow: int | None = None) -> Image.Image:
    """float [N, C, H, W] in [0, 1] (or one [C, H, W]) -> a PIL image (a grid when N > 1)."""
    if images.dim() == 3:
        images = images.unsqueeze(0)
    nrow = nrow or max(1, math.ceil(math.sqrt(len(images))))
    grid = make_grid(images, nrow=nrow, padding=2 if len(images) > 1 else 0, pad_value=1.0)
    arr = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if images.shape[1] == 1:
        arr = arr[..., 0]
    return Image.fromarray(arr)


def save_samples(samples: Any, path: Path, modality: str, fmt: str | None = None, **layout: Any) -> Path:
    """Save samples of `modality` (its registered name) as that modality does; returns the path written."""
    from .plugins import MODALITIES

    return MODALITIES.get(modality).save(samples, Path(path), fmt, **layout)
