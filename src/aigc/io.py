"""Writing samples to files through their modality (PNG grids and npz for images, txt for text)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torchvision.utils import make_grid

from .errors import ConfigError


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


def label_grid(labels: Any, n: int) -> tuple[Any, int | None]:
    """How n samples asked for by label are laid out: one column per label given, whatever n is.

    Returns the label of each sample in grid order (row by row; families cycle a shorter list the
    same way) and the images per row of the grid. With L labels, sample i has label i mod L and the
    grid is L wide, so column j holds only the j-th label given: `--n 18 --label 3 --label 7` is
    9 rows x 2 columns, 3s on the left, 7s on the right. When L does not divide n, the first n mod L
    labels get one sample more and the rest of the last row is blank. No label or one label:
    (labels, None), the square default. Fewer samples than labels is refused in one line.
    """
    items = list(labels) if isinstance(labels, (list, tuple)) else None
    if items is None or len(items) < 2:
        return labels, None
    if n < len(items):
        raise ConfigError(f"--n {n} is fewer samples than the {len(items)} labels asked for",
                          f"ask for at least {len(items)}: the grid has one column per label")
    return [items[i % len(items)] for i in range(n)], len(items)


def grid_shape(n: int, nrow: int | None = None) -> tuple[int, int]:
    """(rows, columns) of the grid `to_pil` draws for n images (nrow a row; None: square)."""
    cols = min(n, nrow or max(1, math.ceil(math.sqrt(n))))
    return math.ceil(n / cols), cols


def save_samples(samples: Any, path: Path, modality: str, fmt: str | None = None, **layout: Any) -> Path:
    """Save samples of `modality` (its registered name) as that modality does; returns the path written."""
    from .plugins import MODALITIES

    return MODALITIES.get(modality).save(samples, Path(path), fmt, **layout)
