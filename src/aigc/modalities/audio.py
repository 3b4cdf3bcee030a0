"""Audio: int16 clips [N, 1, L] as data; `Clips` (float waves in [-1, 1] and their rate) as samples,
saved as 16-bit WAVs with a spectrogram PNG beside each, or as one npz."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..files import atomic_write, make_dirs
from .base import Modality, register

GAP_SECONDS = 0.25  # silence between clips when several are served as one WAV


@dataclass
class Clips:
    """n clips of the same length: `wave` float [n, L] in [-1, 1] at `rate` Hz (and their labels, if asked)."""

    wave: torch.Tensor
    rate: int
    labels: list[str] | None = None

    def __len__(self) -> int:
        return len(self.wave)

    def __getitem__(self, i: Any) -> Clips:
        labels = None if self.labels is None else list(np.asarray(self.labels, dtype=object)[i].reshape(-1))
        return Clips(self.wave[i].reshape(-1, self.wave.shape[-1]), self.rate, labels)


def spectrogram_image(wave: torch.Tensor, rate: int, height: int = 128):
    """A PIL picture of a clip's log spectrogram: time left to right, low pitches at the bottom."""
    from PIL import Image

    from ..audio import STFT

    n_fft = 256 if rate <= 16_000 else 1024
    stft = STFT(n_fft, n_fft // 4)
    x = stft.encode(wave.reshape(1, -1))[0, 0]  # [bins, frames] in [-1, 1]
    arr = ((x.flip(0) + 1) / 2 * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    img = Image.fromarray(arr)
    return img.resize((max(1, img.width * 2), height), Image.NEAREST) if img.height != height else img


def label_period(labels: list[str] | None) -> int:
    """k when labels cycle through k (2 to 16) distinct names (label i is label i mod k), else 0."""
    if not labels:
        return 0
    k = next((k for k in range(2, min(16, len(labels)) + 1) if len(set(labels[:k])) == k
              and all(labels[i] == labels[i % k] for i in range(len(labels)))), 0)
    return k if k and len(set(labels)) == k else 0


def spectrogram_grid(clips: Clips, cols: int | None = None):
    """Every clip's spectrogram in one picture (cols a row, 2-pixel white gaps). Clips whose labels
    cycle (as a conditional run's samples do) get one column per label, named at its top."""
    from PIL import Image, ImageDraw

    pics = [spectrogram_image(w, clips.rate) for w in clips.wave]
    period = label_period(clips.labels)
    cols = cols or period or min(len(pics), 8)
    named = bool(period) and cols == period  # each column holds one label: name it
    rows = -(-len(pics) // cols)
    w, h = pics[0].size
    top = 14 if named else 0
    grid = Image.new("L", (cols * (w + 2) + 2, top + rows * (h + 2) + 2), 255)
    if named:
        draw = ImageDraw.Draw(grid)
        for j in range(cols):
            draw.text((2 + j * (w + 2) + w // 2 - 3 * len(clips.labels[j]), 1), clips.labels[j], fill=0)
    for i, p in enumerate(pics):
        grid.paste(p, (2 + (i % cols) * (w + 2), top + 2 + (i // cols) * (h + 2)))
    return grid


@register
class AudioModality(Modality):
    name = "audio"
    formats = ("wav", "npz")
    web_formats = {"wav": "audio/wav", "json": "application/json"}
    eval_options = frozenset({"floor"})

    def save(self, samples: Clips, path: Path, fmt: str | None = None, nrow: int | None = None,
             **layout: Any) -> Path:
        """wav: a folder (path without its suffix) of NNN.wav + NNN.png and spectrograms.png;
        npz: `x` int16 [n, L], `sample_rate` and, for labelled clips, `labels` (their class names)."""
        from ..audio import wav_bytes

        path = Path(path)
        if self.format_for(path, fmt) == "npz":
            arr = np.clip(np.round(samples.wave.numpy() * 32767), -32768, 32767).astype(np.int16)
            extra = {} if samples.labels is None else {"labels": np.array(samples.labels, dtype=str)}

            def write(p: Path) -> None:
                with open(p, "wb") as f:
                    np.savez_compressed(f, x=arr, sample_rate=np.int64(samples.rate), **extra)

            return atomic_write(path.with_suffix(".npz"), write)
        folder = make_dirs(path.with_suffix("") if path.suffix.lower() == ".wav" else path)
        for i, w in enumerate(samples.wave):
            stem = f"{i:03d}" + (f"-{samples.labels[i]}" if samples.labels else "")
            data = wav_bytes(w, samples.rate)
            atomic_write(folder / f"{stem}.wav", lambda p, d=data: p.write_bytes(d))
            atomic_write(folder / f"{stem}.png", lambda p, w=w: spectrogram_image(w, samples.rate).save(p, "PNG"))
        atomic_write(folder / "spectrograms.png", lambda p: spectrogram_grid(samples, nrow).save(p, "PNG"))
        return folder

    def sample_limit(self, meta: dict[str, Any], fmt: str | None = None) -> int:
        return max(1, min(10_000, (1 << 27) // max(1, int(meta.get("samples") or 1))))

    def encode(self, samples: Clips, fmt: str, **layout: Any) -> bytes:
        """One WAV: the clips one after another with GAP_SECONDS of silence between them."""
        from ..audio import wav_bytes

        if fmt != "wav":
            return super().encode(samples, fmt)
        gap = torch.zeros(len(samples), int(GAP_SECONDS * samples.rate))
        return wav_bytes(torch.cat([samples.wave, gap], 1).reshape(-1)[: -gap.shape[1] or None], samples.rate)

    def to_json(self, samples: Clips) -> list[str]:
        from ..audio import wav_bytes

        return ["data:audio/wav;base64," + base64.b64encode(wav_bytes(w, samples.rate)).decode("ascii")
                for w in samples.wave]

    def log_samples(self, tb: Any, samples: Clips, step: int) -> None:
        for i, w in enumerate(samples.wave[:8]):
            tb.add_audio(f"samples/{i}", w.reshape(1, -1), step, sample_rate=samples.rate)

    def report_samples(self, run_dir: Path, path: Path) -> list[str]:
        rel = path.relative_to(run_dir) if path.is_relative_to(run_dir) else path
        wavs = sorted(path.glob("*.wav")) if path.is_dir() else []
        lines = ["## Samples", "", f"![spectrograms]({rel.as_posix()}/spectrograms.png)", ""]
        lines += [f"- [{w.name}]({(rel / w.name).as_posix()})" for w in wavs]
        return lines

    def audit(self, cfg: Any, out: Path, near: float) -> dict[str, Any]:
        from ..data.audio_audit import run_audio_audit

        return run_audio_audit(cfg, out, near)

    def audit_summary(self, report: dict[str, Any]) -> list[str]:
        from ..data.audio_audit import audio_summary

        return audio_summary(report)

    def evaluate(self, loaded: Any, data: Any, request: Any) -> dict[str, Any]:
        from ..metrics.audio import evaluate_audio_run

        return evaluate_audio_run(loaded, data, request)

    def evaluate_real(self, data: Any, request: Any) -> dict[str, Any]:
        from ..metrics.audio import evaluate_audio_real

        return evaluate_audio_real(data, request)

    def evaluate_samples(self, path: Path, data: Any, request: Any) -> dict[str, Any]:
        from ..metrics.audio import evaluate_audio_samples

        return evaluate_audio_samples(path, data, request)
