"""Video: uint8 clips [N, T, C, H, W] as data; `Video` (float frames in [0, 1], a frame rate, labels)
as samples, saved as one animated GIF per clip plus a filmstrip PNG (a row per clip), or as one npz."""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..files import atomic_write, make_dirs
from ..pixels import quantize
from .base import Modality, register

MAX_FILMSTRIP_ROWS = 64
GIF_SCALE_TO = 96   # GIFs are scaled up (nearest) to at least this side so a 32-pixel clip can be seen


@dataclass
class Video:
    """n clips `frames` float [n, T, C, H, W] in [0, 1], played at `fps` (and their labels, if asked)."""

    frames: torch.Tensor
    fps: int
    labels: list[str] | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: Any) -> Video:
        labels = None if self.labels is None else list(np.asarray(self.labels, dtype=object)[i].reshape(-1))
        return Video(self.frames[i].reshape(-1, *self.frames.shape[1:]), self.fps, labels)


def as_uint8(frames: torch.Tensor) -> np.ndarray:
    """float [n, T, C, H, W] in [0, 1] -> uint8 [n, T, H, W, C]."""
    n, t = frames.shape[:2]
    return quantize(frames.reshape(n * t, *frames.shape[2:])).permute(0, 2, 3, 1).reshape(
        n, t, frames.shape[3], frames.shape[4], frames.shape[2]).numpy()


def _pil(frame: np.ndarray, scale: int = 1):
    from PIL import Image

    img = Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame)
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST) if scale > 1 else img


def gif_bytes(clip: np.ndarray, fps: int, scale: int | None = None) -> bytes:
    """One clip uint8 [T, H, W, C] as a looping animated GIF (scaled up by whole pixels to be seen)."""
    scale = scale or max(1, -(-GIF_SCALE_TO // clip.shape[1]))
    frames = [_pil(f, scale) for f in clip]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                   duration=max(20, round(1000 / fps)), optimize=False, disposal=1)
    return buf.getvalue()


def tiled(clips: np.ndarray, cols: int) -> np.ndarray:
    """Clips uint8 [n, T, H, W, C] -> one clip [T, H', W', C] with them side by side (2-pixel gaps)."""
    n, t, h, w, c = clips.shape
    rows = -(-n // cols)
    out = np.full((t, rows * (h + 2) + 2, cols * (w + 2) + 2, c), 255, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        out[:, 2 + r * (h + 2):2 + r * (h + 2) + h, 2 + q * (w + 2):2 + q * (w + 2) + w] = clips[i]
    return out


def filmstrip(clips: np.ndarray, labels: list[str] | None = None):
    """A PIL picture: one row per clip, its frames left to right (the label, if any, at the row's left)."""
    from PIL import Image, ImageDraw

    n, t, h, w, c = clips.shape[:5]
    n = min(n, MAX_FILMSTRIP_ROWS)
    left = 72 if labels else 0
    strip = Image.new("L" if c == 1 else "RGB", (left + t * (w + 1) + 1, n * (h + 1) + 1), 255)
    draw = ImageDraw.Draw(strip)
    for i in range(n):
        for j in range(t):
            strip.paste(_pil(clips[i, j]), (left + 1 + j * (w + 1), 1 + i * (h + 1)))
        if labels:
            draw.text((2, 1 + i * (h + 1) + h // 2 - 5), labels[i][:11], fill=0)
    return strip


@register
class VideoModality(Modality):
    name = "video"
    formats = ("gif", "npz")
    web_formats = {"gif": "image/gif", "json": "application/json"}
    eval_options = frozenset({"floor"})

    def save(self, samples: Video, path: Path, fmt: str | None = None, nrow: int | None = None,
             **layout: Any) -> Path:
        """gif: a folder (path without its suffix) of NNN[-LABEL].gif and filmstrip.png; npz: `x` uint8
        [n, T, H, W, C], `fps` and, for labelled clips, `labels` (their class names)."""
        path = Path(path)
        clips = as_uint8(samples.frames)
        if self.format_for(path, fmt) == "npz":
            extra = {} if samples.labels is None else {"labels": np.array(samples.labels, dtype=str)}

            def write(p: Path) -> None:
                with open(p, "wb") as f:
                    np.savez_compressed(f, x=clips, fps=np.int64(samples.fps), **extra)

            return atomic_write(path.with_suffix(".npz"), write)
        folder = make_dirs(path.with_suffix("") if path.suffix.lower() == ".gif" else path)
        for i, clip in enumerate(clips):
            stem = f"{i:03d}" + (f"-{safe_name(samples.labels[i])}" if samples.labels else "")
            data = gif_bytes(clip, samples.fps)
            atomic_write(folder / f"{stem}.gif", lambda p, d=data: p.write_bytes(d))
        atomic_write(folder / "filmstrip.png", lambda p: filmstrip(clips, samples.labels).save(p, "PNG"))
        return folder

    def sample_limit(self, meta: dict[str, Any], fmt: str | None = None) -> int:
        per_clip = int(np.prod(meta.get("shape") or [1]))
        return max(1, min(10_000, (1 << 28) // max(1, per_clip)))

    def encode(self, samples: Video, fmt: str, nrow: int | None = None, **layout: Any) -> bytes:
        """One animated GIF: the clips side by side (nrow a row), playing together."""
        if fmt != "gif":
            return super().encode(samples, fmt)
        clips = as_uint8(samples.frames)
        cols = nrow or min(len(clips), 8)
        return gif_bytes(tiled(clips, cols), samples.fps, scale=max(1, -(-GIF_SCALE_TO // clips.shape[2])))

    def to_json(self, samples: Video) -> list[str]:
        return ["data:image/gif;base64," + base64.b64encode(gif_bytes(c, samples.fps)).decode("ascii")
                for c in as_uint8(samples.frames)]

    def log_samples(self, tb: Any, samples: Video, step: int) -> None:
        clips = as_uint8(samples.frames[:16])
        tb.add_image("filmstrip", np.asarray(filmstrip(clips).convert("L")), step, dataformats="HW")

    def report_samples(self, run_dir: Path, path: Path) -> list[str]:
        rel = path.relative_to(run_dir) if path.is_relative_to(run_dir) else path
        gifs = sorted(path.glob("*.gif")) if path.is_dir() else []
        lines = ["## Samples (fixed noise: one clip a row, frames left to right)", "",
                 f"![filmstrip]({rel.as_posix()}/filmstrip.png)", ""]
        lines += [f"![{g.stem}]({(rel / g.name).as_posix()})" for g in gifs[:8]]
        return lines

    def evaluate(self, loaded: Any, data: Any, request: Any) -> dict[str, Any]:
        from ..metrics.video import evaluate_video_run

        return evaluate_video_run(loaded, data, request)

    def evaluate_real(self, data: Any, request: Any) -> dict[str, Any]:
        from ..metrics.video import evaluate_video_real

        return evaluate_video_real(data, request)

    def evaluate_samples(self, path: Path, data: Any, request: Any) -> dict[str, Any]:
        from ..metrics.video import evaluate_video_samples

        return evaluate_video_samples(path, data, request)


def safe_name(label: str) -> str:
    """A class name as part of a file name ('T-shirt/top' -> 'T-shirt-top')."""
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "label"
