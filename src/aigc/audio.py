"""Sound as numbers: reading and writing WAV/FLAC, resampling, fixed-length clips, and the log-magnitude
STFT with its inverse by fast Griffin-Lim. A leaf: data, models and the audio modality import it.

Clips are mono int16 at `sample_rate` in memory (as images are uint8); models see float [-1, 1].
The STFT is torch's (`torch.stft`/`torch.istft`, Hann window, centred frames), so the spectrogram a
model learns and the one Griffin-Lim inverts are the same transform.
"""
from __future__ import annotations

import io
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import ConfigError, DataError

MAX_SECONDS = 60.0          # a clip a model is trained on (data.seconds)
MAX_FILE_SECONDS = 600.0    # a file read at all (longer ones are refused by name)
SAMPLE_RATES = (1000, 192_000)
DB_FLOOR = -80.0            # the quietest level a log spectrogram keeps, relative to a full-scale sine
DEFAULT_RATE, DEFAULT_SECONDS = 8000, 1.0


def audio_settings(cfg: Any) -> tuple[int, float]:
    """(sample rate, seconds) of the clips: the config's, else 8 kHz and 1 s."""
    rate = DEFAULT_RATE if cfg.sample_rate is None else cfg.sample_rate
    seconds = DEFAULT_SECONDS if cfg.seconds is None else cfg.seconds
    if not SAMPLE_RATES[0] <= rate <= SAMPLE_RATES[1]:
        raise ConfigError(f"data.sample_rate is {rate}", f"use {SAMPLE_RATES[0]:,} to {SAMPLE_RATES[1]:,} Hz, e.g. 8000")
    if not 0 < seconds <= MAX_SECONDS:
        raise ConfigError(f"data.seconds is {seconds}", f"use more than 0 and at most {MAX_SECONDS:.0f}")
    return int(rate), float(seconds)


def read_audio(path: Path, sample_rate: int) -> tuple[np.ndarray, dict]:
    """A file -> float32 mono samples at `sample_rate`, plus facts about the file as it was
    (rate, channels, subtype, frames, clipped samples). Corrupt or empty files: DataError naming them."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
        if info.frames == 0 or info.samplerate <= 0:
            raise DataError(f"{path} holds no audio", "remove it or record it again")
        if info.frames / info.samplerate > MAX_FILE_SECONDS:
            raise DataError(f"{path} is {info.frames / info.samplerate:,.0f} s long",
                            f"cut it into clips of at most {MAX_FILE_SECONDS:.0f} s")
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except DataError:
        raise
    except Exception as e:  # soundfile raises its own LibsndfileError (a RuntimeError) for unreadable files
        raise DataError(f"{path} is not a readable audio file ({type(e).__name__}: {str(e)[:120]})",
                        "convert it to WAV or FLAC, or remove it") from None
    facts = {"rate": int(rate), "channels": int(data.shape[1]), "subtype": info.subtype, "frames": int(len(data)),
             "clipped": int((np.abs(data) >= 0.999).sum())}
    mono = data.mean(1) if data.shape[1] > 1 else data[:, 0]
    return resample(mono, int(rate), sample_rate), facts


def resample(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling (scipy.signal.resample_poly: an anti-aliasing FIR, then up/down by the
    rational ratio target/rate)."""
    if rate == target:
        return x.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    ratio = Fraction(target, rate).limit_denominator(1000)
    return resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)


def fit_length(x: np.ndarray, samples: int) -> np.ndarray:
    """Cut or zero-pad to exactly `samples`, keeping the loudest stretch when cutting (a spoken word
    sits somewhere in its file; its energy says where)."""
    if len(x) == samples:
        return x
    if len(x) < samples:
        pad = samples - len(x)
        return np.pad(x, (pad // 2, pad - pad // 2))
    energy = np.cumsum(np.concatenate([[0.0], x.astype(np.float64) ** 2]))
    window = energy[samples:] - energy[:-samples]
    start = int(np.argmax(window))
    return x[start:start + samples]


def to_int16(x: np.ndarray, peak: float = 0.95) -> np.ndarray:
    """Peak-normalise (silence stays silence) and quantise to 16 bits."""
    top = float(np.abs(x).max()) if len(x) else 0.0
    y = x * (peak / top) if top > 1e-6 else np.zeros_like(x)
    return np.clip(np.round(y * 32767), -32768, 32767).astype(np.int16)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """int16 samples -> float in [-1, 1]."""
    return x.float() / 32768.0


def wav_bytes(x: torch.Tensor | np.ndarray, sample_rate: int) -> bytes:
    """One clip (float in [-1, 1] or int16) as the bytes of a 16-bit PCM WAV file."""
    import soundfile as sf

    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.dtype != np.int16:
        arr = np.clip(np.round(arr.astype(np.float64) * 32767), -32768, 32767).astype(np.int16)
    buf = io.BytesIO()
    sf.write(buf, arr.reshape(-1), sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


# ---------------------------------------------------------------- spectrograms


class STFT:
    """The log-magnitude STFT a spectrogram model learns, and its inverse.

    `encode(wave [n, L]) -> [n, 1, bins, frames]` in [-1, 1]: magnitude in dB relative to a full-scale
    sine, floored at DB_FLOOR, mapped linearly; the Nyquist bin is dropped and frames cut or padded so
    both sides are `bins` x `frames` (a power of two suits the conv nets). `decode` inverts the scale
    and finds a phase by fast Griffin-Lim (Perraudin et al. 2013: momentum 0.99).
    """

    def __init__(self, n_fft: int = 256, hop: int = 64, frames: int | None = None):
        self.n_fft, self.hop = n_fft, hop
        self.bins = n_fft // 2
        self.frames = frames
        self.window = torch.hann_window(n_fft)
        self.ref = self.window.sum().item() / 2  # |STFT| of a full-scale sine at a bin's centre

    def frames_for(self, samples: int) -> int:
        return samples // self.hop + 1

    def magnitude(self, wave: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(wave.float(), self.n_fft, self.hop, window=self.window.to(wave.device), center=True,
                          return_complex=True)
        return spec.abs()

    def encode(self, wave: torch.Tensor) -> torch.Tensor:
        mag = self.magnitude(wave)[:, :self.bins]
        db = 20 * torch.log10(mag.clamp_min(1e-10) / self.ref)
        x = (db.clamp(DB_FLOOR, 0.0) / -DB_FLOOR) * 2 + 1  # [-80, 0] dB -> [-1, 1]
        if self.frames is not None:
            x = x[..., :self.frames] if x.shape[-1] >= self.frames else \
                torch.nn.functional.pad(x, (0, self.frames - x.shape[-1]), value=-1.0)
        return x.unsqueeze(1)

    def to_magnitude(self, x: torch.Tensor) -> torch.Tensor:
        """[n, 1, bins, frames] in [-1, 1] -> linear magnitude [n, bins + 1, frames] (Nyquist bin silent)."""
        db = (x.squeeze(1).clamp(-1, 1) - 1) / 2 * -DB_FLOOR
        mag = self.ref * 10 ** (db / 20)
        mag = torch.where(x.squeeze(1) <= -1 + 1e-6, torch.zeros_like(mag), mag)
        return torch.cat([mag, torch.zeros_like(mag[:, :1])], 1)

    def griffin_lim(self, mag: torch.Tensor, samples: int, iters: int = 32, momentum: float = 0.99,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """A waveform [n, samples] whose STFT magnitude is close to `mag` [n, bins + 1, frames]."""
        angles = torch.exp(2j * math.pi * torch.rand(mag.shape, generator=generator)).to(mag.device)
        rebuilt = torch.zeros_like(angles)
        window = self.window.to(mag.device)  # a no-op on the CPU; the magnitudes' device elsewhere
        for _ in range(iters):
            previous = rebuilt
            wave = torch.istft(mag * angles, self.n_fft, self.hop, window=window, center=True, length=samples)
            rebuilt = torch.stft(wave, self.n_fft, self.hop, window=window, center=True, return_complex=True)
            angles = rebuilt - previous * (momentum / (1 + momentum))
            angles = angles / angles.abs().clamp_min(1e-16)
        return torch.istft(mag * angles, self.n_fft, self.hop, window=window, center=True, length=samples)

    def decode(self, x: torch.Tensor, samples: int, iters: int = 32,
               generator: torch.Generator | None = None) -> torch.Tensor:
        mag = self.to_magnitude(x)
        frames = self.frames_for(samples)
        if mag.shape[-1] < frames:
            mag = torch.nn.functional.pad(mag, (0, frames - mag.shape[-1]))
        return self.griffin_lim(mag[..., :frames], samples, iters, generator=generator).clamp(-1, 1)


def spectral_convergence(target_mag: torch.Tensor, wave: torch.Tensor, stft: STFT) -> float:
    """||  |STFT(wave)| - target  ||_F / || target ||_F: how well a waveform meets a magnitude."""
    got = stft.magnitude(wave)[..., :target_mag.shape[-2], :target_mag.shape[-1]]
    return float((got - target_mag).norm() / target_mag.norm().clamp_min(1e-12))
