"""Pixel scaling shared by the data, the image families and the metrics (uint8 <-> float)."""
from __future__ import annotations

import re

import torch


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], on a whole batch at once."""
    return x.float().mul_(2.0 / 255.0).sub_(1.0)


def from_signed(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> float [0, 1], clamped."""
    return x.add(1.0).mul_(0.5).clamp_(0.0, 1.0)


def quantize(images: torch.Tensor) -> torch.Tensor:
    """float [0, 1] -> uint8, as saving a PNG would: generated and real images meet on equal terms."""
    return images.clamp(0, 1).mul(255).round().to(torch.uint8)


def label_key(name: str) -> str:
    """'Ankle boot', 'ankle-boot', 'T-shirt/top' -> comparable keys ('ankle-boot', 't-shirt-top')."""
    return re.sub(r"[^0-9a-z]+", "-", name.lower()).strip("-")


def conv_plan(side: int) -> tuple[int, int] | None:
    """(base side, number of x2 steps) of a conv net that doubles a 3..8-pixel base up to `side`:
    28 -> (7, 2), 32 -> (4, 3), 64 -> (4, 4); None for a side no such net reaches (25, 27, 50...).
    The image families' conv nets (the DCGAN, the conv VAE) are sized by it."""
    k = 0
    while side % (2 ** (k + 1)) == 0 and side // 2 ** (k + 1) >= 3:
        k += 1
    if k == 0 or side // 2**k > 8:
        return None
    return side // 2**k, k


def conv_sides_near(side: int) -> list[int]:
    """The nearest sides below and above `side` that conv_plan builds (25 -> [24, 28])."""
    below = next((s for s in range(side - 1, 5, -1) if conv_plan(s)), None)
    above = next(s for s in range(side + 1, 2 * side + 16) if conv_plan(s))
    return [s for s in (below, above) if s]
