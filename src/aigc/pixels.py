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
