"""Music: token rows as data (aigc.data.music), lists of `aigc.score.Score` as samples, saved as a
folder of MIDI files, a piano roll PNG and a WAV per piece (FluidSynth with the General MIDI
SoundFont where Debian's packages are installed, else aigc's additive synthesizer)."""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write, atomic_write_text, make_dirs
from .base import Modality, register

RATE = 22_050
GAP_SECONDS = 1.0  # silence between pieces served as one WAV


def wav_of(score: Any) -> tuple[bytes, str]:
    from ..audio import wav_bytes
    from ..score import render

    wave, how = render(score, RATE)
    return wav_bytes(wave, RATE), how


def rolls_grid(samples: list[Any]):
    """Every piece's piano roll, one under the other, each titled with its name and key."""
    from PIL import Image

    from ..score import pianoroll_image

    pics = [pianoroll_image(s, 3, f"{s.name}  {s.key}  {s.meter}  {len(s.bars)} bars") for s in samples]
    w = max(p.width for p in pics)
    grid = Image.new("RGB", (w + 4, sum(p.height + 4 for p in pics) + 4), (255, 255, 255))
    y = 4
    for p in pics:
        grid.paste(p, (2, y))
        y += p.height + 4
    return grid


@register
class MusicModality(Modality):
    name = "music"
    formats = ("mid",)
    web_formats = {"wav": "audio/wav", "json": "application/json"}
    eval_options = frozenset({"floor"})

    def sample_limit(self, meta: dict[str, Any], fmt: str | None = None) -> int:
        return 1_000

    def save(self, samples: list[Any], path: Path, fmt: str | None = None, **layout: Any) -> Path:
        """A folder (the path without its suffix) of NNN.mid, NNN.wav, NNN.png, pianorolls.png and
        pieces.json (each piece's key, meter, bars, prompt and how its WAV was made)."""
        from ..score import midi_bytes, pianoroll_image

        path = Path(path)
        self.format_for(path, fmt)
        folder = make_dirs(path.with_suffix("") if path.suffix.lower() == ".mid" else path)
        facts = []
        for s in samples:
            stem = s.name or f"{len(facts):03d}"
            atomic_write(folder / f"{stem}.mid", lambda p, s=s: p.write_bytes(midi_bytes(s)))
            atomic_write(folder / f"{stem}.png", lambda p, s=s: pianoroll_image(s).save(p, "PNG"))
            data, how = wav_of(s)
            atomic_write(folder / f"{stem}.wav", lambda p, d=data: p.write_bytes(d))
            facts.append({"file": stem, "key": s.key, "meter": s.meter, "bars": len(s.bars),
                          "sixteenths": s.steps, "audio": how, **s.facts})
        if samples:
            atomic_write(folder / "pianorolls.png", lambda p: rolls_grid(samples).save(p, "PNG"))
        atomic_write_text(folder / "pieces.json", json.dumps(facts, indent=1))
        return folder

    def encode(self, samples: list[Any], fmt: str, **layout: Any) -> bytes:
        """One WAV: the pieces one after another with GAP_SECONDS of silence between them."""
        from ..audio import wav_bytes
        from ..score import render

        if fmt != "wav":
            return super().encode(samples, fmt)
        gap = np.zeros(int(GAP_SECONDS * RATE), dtype=np.float32)
        waves = []
        for s in samples:
            waves += [render(s, RATE)[0], gap]
        return wav_bytes(np.concatenate(waves[:-1]) if waves else gap, RATE)

    def to_json(self, samples: list[Any]) -> list[str]:
        return ["data:audio/wav;base64," + base64.b64encode(wav_of(s)[0]).decode("ascii") for s in samples]

    def log_samples(self, tb: Any, samples: list[Any], step: int) -> None:
        from ..score import pianoroll_image

        for i, s in enumerate(samples[:4]):
            tb.add_image(f"pianoroll/{i}", np.asarray(pianoroll_image(s)), step, dataformats="HWC")

    def report_samples(self, run_dir: Path, path: Path) -> list[str]:
        rel = path.relative_to(run_dir) if path.is_relative_to(run_dir) else path
        lines = ["## Samples", "", f"![piano rolls]({rel.as_posix()}/pianorolls.png)", "",
                 "Soprano red, alto blue, tenor green, bass purple; a black tick marks each note's start.", ""]
        for w in sorted(path.glob("*.wav")) if path.is_dir() else []:
            lines.append(f"- [{w.stem}.wav]({(rel / w.name).as_posix()}) · [{w.stem}.mid]({(rel / w.stem).as_posix()}.mid)")
        return lines

    def evaluate(self, loaded: Any, data: Any, request: Any) -> dict[str, Any]:
        from ..metrics.music import evaluate_music_run

        return evaluate_music_run(loaded, data, request)

    def evaluate_real(self, data: Any, request: Any) -> dict[str, Any]:
        from ..metrics.music import evaluate_music_real

        return evaluate_music_real(data, request)

    def audit(self, cfg: Any, out: Path, near: float) -> dict[str, Any]:
        from ..data.music_audit import run_music_audit

        return run_music_audit(cfg, out)

    def audit_summary(self, report: dict[str, Any]) -> list[str]:
        from ..data.music_audit import music_summary

        return music_summary(report)


__all__ = ["MusicModality"]
