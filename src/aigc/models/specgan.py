"""SpecGAN (Donahue et al. 2019): a DCGAN on log-magnitude spectrograms, turned back into sound by fast
Griffin-Lim with the same STFT. The GAN's maths, losses, conditioning and EMA are the image DCGAN's."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..audio import STFT, to_float
from ..errors import ConfigError
from ..pixels import conv_plan
from ..plugins import MODELS
from .gan import DCGAN, DCGANConfig


@dataclass
class SpecGANConfig(DCGANConfig):
    n_fft: int = 256               # STFT size: n_fft / 2 frequency bins (the Nyquist bin is dropped)
    hop: int = 64                  # samples between frames; the picture is n_fft / 2 frames wide
    griffin_lim_iters: int = 32    # phase-recovery iterations when sampling

    def check(self) -> None:
        super().check()
        if self.n_fft not in (64, 128, 256, 512):
            raise ConfigError(f"model.n_fft is {self.n_fft}", "use 64, 128, 256 or 512")
        if not 1 <= self.hop <= self.n_fft:
            raise ConfigError(f"model.hop is {self.hop}", f"use 1 to n_fft ({self.n_fft}), e.g. n_fft / 4")
        if not 1 <= self.griffin_lim_iters <= 1000:
            raise ConfigError(f"model.griffin_lim_iters is {self.griffin_lim_iters}", "use 1 to 1000, e.g. 32")


@MODELS.register("specgan")
class SpecGAN(DCGAN):
    """G draws an n_fft/2 x n_fft/2 spectrogram in [-1, 1]; D judges spectrograms of real clips."""

    modality = "audio"
    Config = SpecGANConfig
    sample_chunk = 64

    def net_shape(self, meta: dict[str, Any]) -> list[int]:
        cfg = self.cfg
        self.rate, self.samples = int(meta["sample_rate"]), int(meta["samples"])
        side = cfg.n_fft // 2
        if conv_plan(side) is None:
            raise ConfigError(f"model.n_fft {cfg.n_fft} gives {side} bins", "use 64, 128, 256 or 512")
        self.stft = STFT(cfg.n_fft, cfg.hop, frames=side)
        frames = self.stft.frames_for(self.samples)
        if frames > side:
            most = (side - 1) * cfg.hop / self.rate
            raise ConfigError(f"clips of {self.samples / self.rate:g} s make {frames} frames at hop {cfg.hop}; "
                              f"a specgan with n_fft {cfg.n_fft} sees {side}",
                              f"set data.seconds to at most {most:.3f}, or raise model.hop to "
                              f"{-(-self.samples // (side - 1))}")
        return [1, side, side]

    def real(self, x: torch.Tensor) -> torch.Tensor:
        return self.stft.encode(to_float(x).reshape(len(x), -1))

    def output(self, g: torch.Tensor) -> torch.Tensor:
        return g  # spectrograms stay in [-1, 1] until sample() inverts them

    @torch.no_grad()
    def sample(self, n: int, *, labels: Any = None, generator: torch.Generator | None = None,
               ema: bool = True):
        from ..modalities.audio import Clips

        spec = super().sample(n, labels=labels, generator=generator, ema=ema)
        wave = self.stft.decode(spec, self.samples, self.cfg.griffin_lim_iters, generator=generator)
        y = self.resolve_labels(labels, n)
        names = None if y is None else [self.class_names[i] for i in y.tolist()]
        return Clips(wave, self.rate, names)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "spectrogram": f"{self.cfg.n_fft // 2}x{self.cfg.n_fft // 2}, n_fft "
                f"{self.cfg.n_fft}, hop {self.cfg.hop}, fast Griffin-Lim {self.cfg.griffin_lim_iters} iterations"}
