"""Images: uint8 [N, C, H, W] data, float [0, 1] samples saved as PNG grids or npz arrays."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..files import atomic_write
from .base import Modality, register


@register
class ImageModality(Modality):
    name = "image"
    formats = ("png", "npz")
    grids = True
    eval_options = frozenset({"metrics", "inception_weights", "floor", "iwae_k", "likelihood_n"})
    floor_options = frozenset({"metrics", "inception_weights"})

    def save(self, samples: torch.Tensor, path: Path, fmt: str | None = None, nrow: int | None = None,
             **layout: Any) -> Path:
        """A PNG grid (nrow images a row), or with fmt='npz' the uint8 arrays [N, H, W, C] under `x`."""
        from ..io import to_pil
        from ..pixels import quantize

        path = Path(path)
        if self.format_for(path, fmt) == "npz":
            arr = quantize(samples).permute(0, 2, 3, 1).numpy()

            def write(p: Path) -> None:
                with open(p, "wb") as f:
                    np.savez_compressed(f, x=arr)

            return atomic_write(path.with_suffix(".npz"), write)
        return atomic_write(path.with_suffix(".png"), lambda p: to_pil(samples, nrow).save(p, format="PNG"))

    def log_samples(self, tb: Any, samples: torch.Tensor, step: int) -> None:
        tb.add_images("samples", samples[:64], step)

    def report_samples(self, run_dir: Path, path: Path) -> list[str]:
        rel = path.relative_to(run_dir) if path.is_relative_to(run_dir) else path
        return ["## Samples (fixed noise)", "", f"![{rel.name}]({rel.as_posix()})"]

    def evaluate(self, loaded: Any, data: Any, request: Any) -> dict[str, Any]:
        from ..metrics.image_run import evaluate_image_run

        return evaluate_image_run(loaded, data, request)

    def evaluate_real(self, data: Any, request: Any) -> dict[str, Any]:
        from ..metrics.image_run import evaluate_image_real

        return evaluate_image_real(data, request)

    def training_evaluator(self, cfg: Any, data: Any, echo: Callable[[str], None]
                           ) -> Callable[[Any, Any], dict[str, float]]:
        from ..metrics.image_run import image_training_evaluator

        return image_training_evaluator(cfg, data, echo)

    def audit(self, cfg: Any, out: Path, near: float) -> dict[str, Any]:
        from ..data.audit_report import run_image_audit

        return run_image_audit(cfg, out, near)
