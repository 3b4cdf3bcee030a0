"""Images: uint8 [N, C, H, W] data, float [0, 1] samples saved as PNG grids or npz arrays."""
from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..files import atomic_write, write_failed
from ..limits import MAX_GRID, MAX_SAMPLES
from ..pixels import quantize
from .base import Modality, register

MAX_SAMPLE_VALUES = 1 << 28  # floats of samples held at once (1 GiB)


@register
class ImageModality(Modality):
    name = "image"
    formats = ("png", "npz")
    grids = True
    stream_formats = ("npz",)
    web_formats = {"png": "image/png", "json": "application/json"}
    eval_options = frozenset({"metrics", "inception_weights", "floor", "iwae_k", "likelihood_n", "intervals"})
    floor_options = frozenset({"metrics", "inception_weights", "intervals"})

    def save(self, samples: torch.Tensor, path: Path, fmt: str | None = None, nrow: int | None = None,
             **layout: Any) -> Path:
        """A PNG grid (nrow images a row), or with fmt='npz' the uint8 arrays [N, H, W, C] under `x`."""
        from ..io import to_pil

        path = Path(path)
        if self.format_for(path, fmt) == "npz":
            arr = quantize(samples).permute(0, 2, 3, 1).numpy()

            def write(p: Path) -> None:
                with open(p, "wb") as f:
                    np.savez_compressed(f, x=arr)

            return atomic_write(path.with_suffix(".npz"), write)
        return atomic_write(path.with_suffix(".png"), lambda p: to_pil(samples, nrow).save(p, format="PNG"))

    def encode(self, samples: torch.Tensor, fmt: str, nrow: int | None = None, **layout: Any) -> bytes:
        """One PNG grid (nrow images a row) of the samples."""
        import io

        from ..io import to_pil

        if fmt != "png":
            return super().encode(samples, fmt)
        buf = io.BytesIO()
        to_pil(samples, nrow).save(buf, format="PNG")
        return buf.getvalue()

    def to_json(self, samples: torch.Tensor) -> list[str]:
        """Each image as a data: URL of its own PNG."""
        import base64

        return ["data:image/png;base64," + base64.b64encode(self.encode(x.unsqueeze(0), "png")).decode("ascii")
                for x in samples]

    def sample_limit(self, meta: dict[str, Any], fmt: str | None = None) -> int:
        """PNG grids up to MAX_GRID images; npz up to MAX_SAMPLES (streamed); in memory, up to
        MAX_SAMPLE_VALUES floats (1 GiB) at once."""
        if fmt == "png":
            return MAX_GRID
        if fmt == "npz":
            return MAX_SAMPLES
        return max(1, MAX_SAMPLE_VALUES // math.prod(meta.get("shape") or [1]))

    def save_stream(self, chunks: Iterable[torch.Tensor], n: int, meta: dict[str, Any], path: Path,
                    fmt: str) -> Path:
        """npz of uint8 [n, H, W, C] under `x`, filled chunk by chunk through a memory-mapped .npy."""
        import zipfile

        from ..files import make_dirs

        path = Path(path).with_suffix(".npz")
        c, h, w = meta["shape"]
        parts = make_dirs(path.parent / f".{path.name}.parts{os.getpid()}")
        try:
            arr = np.lib.format.open_memmap(parts / "x.npy", mode="w+", dtype=np.uint8, shape=(n, h, w, c))
            done = 0
            for chunk in chunks:
                arr[done:done + len(chunk)] = quantize(chunk).permute(0, 2, 3, 1).numpy()
                done += len(chunk)
            arr.flush()
            del arr

            def write(p: Path) -> None:
                with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
                    z.write(parts / "x.npy", "x.npy")

            return atomic_write(path, write)
        except OSError as e:
            raise write_failed(path, e) from None
        finally:
            shutil.rmtree(parts, ignore_errors=True)

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

    def evaluate_samples(self, path: Path, data: Any, request: Any) -> dict[str, Any]:
        from ..metrics.image_run import evaluate_image_samples, read_image_samples

        images = read_image_samples(path, data, request.n, request.echo)
        return evaluate_image_samples(images, data, request, samples=str(path))

    def training_evaluator(self, cfg: Any, data: Any, echo: Callable[[str], None]
                           ) -> Callable[[Any, Any], dict[str, float]]:
        from ..metrics.image_run import image_training_evaluator

        return image_training_evaluator(cfg, data, echo)

    def audit_summary(self, report: dict[str, Any]) -> list[str]:
        from ..data.audit_report import image_summary

        return image_summary(report)

    def audit(self, cfg: Any, out: Path, near: float) -> dict[str, Any]:
        from ..data.audit_report import run_image_audit

        return run_image_audit(cfg, out, near)
