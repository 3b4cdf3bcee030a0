"""Writing samples to files: image grids (PNG), raw arrays (npz) and text (txt)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from .files import atomic_write, atomic_write_text


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


def save_samples(samples: Any, path: Path, fmt: str | None = None, nrow: int | None = None) -> Path:
    """Images -> PNG grid (or npz of uint8 [N,H,W,C] with fmt='npz'); a list of strings -> text lines."""
    path = Path(path)
    if isinstance(samples, torch.Tensor):
        if (fmt or path.suffix.lstrip(".")) == "npz":
            arr = (samples.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()

            def write(p: Path) -> None:
                with open(p, "wb") as f:
                    np.savez_compressed(f, x=arr)

            return atomic_write(path.with_suffix(".npz"), write)
        return atomic_write(path.with_suffix(".png"), lambda p: to_pil(samples, nrow).save(p, format="PNG"))
    text = "\n".join(str(s) for s in samples) + "\n"
    return atomic_write_text(path.with_suffix(".txt"), text)
