"""Families on log-magnitude spectrograms, turned back into sound by fast Griffin-Lim with the same STFT.

`specgan` (Donahue et al. 2019) is the image DCGAN and `specflow` the image flow-matching U-Net, each
through the three hooks its family has for data that is not an image (`net_shape`, `real`,
`output`); the maths, losses, conditioning and EMA are the image families' own. `Spectrogram` holds
what the two share: the STFT, the picture's size, and turning a drawn spectrogram into `Clips`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..audio import STFT, to_float
from ..errors import ConfigError
from ..pixels import conv_plan
from ..plugins import MODELS
from .diffusion import FlowConfig, FlowMatching
from .gan import DCGAN, DCGANConfig


@dataclass
class SpectrogramConfig:
    n_fft: int = 256               # STFT size: n_fft / 2 frequency bins (the Nyquist bin is dropped)
    hop: int = 64                  # samples between frames; the picture is n_fft / 2 frames wide
    griffin_lim_iters: int = 32    # phase-recovery iterations when sampling

    def check(self) -> None:
        super().check()  # type: ignore[misc]  # the family's own config, next in the MRO
        if self.n_fft not in (64, 128, 256, 512):
            raise ConfigError(f"model.n_fft is {self.n_fft}", "use 64, 128, 256 or 512")
        if not 1 <= self.hop <= self.n_fft:
            raise ConfigError(f"model.hop is {self.hop}", f"use 1 to n_fft ({self.n_fft}), e.g. n_fft / 4")
        if not 1 <= self.griffin_lim_iters <= 1000:
            raise ConfigError(f"model.griffin_lim_iters is {self.griffin_lim_iters}", "use 1 to 1000, e.g. 32")


class Spectrogram:
    """A family's pictures are n_fft/2 x n_fft/2 spectrograms in [-1, 1] of the data's clips; its
    samples are those spectrograms inverted to waveforms (Clips). Put before the family's class."""

    modality = "audio"
    sample_chunk = 64
    cfg: Any

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
                              f"a {type(self).__name__.lower()} with n_fft {cfg.n_fft} sees {side}",
                              f"set data.seconds to at most {most:.3f}, or raise model.hop to "
                              f"{-(-self.samples // (side - 1))}")
        return [1, side, side]

    def real(self, x: torch.Tensor) -> torch.Tensor:
        return self.stft.encode(to_float(x).reshape(len(x), -1))

    def output(self, g: torch.Tensor) -> torch.Tensor:
        return g  # spectrograms stay in [-1, 1] until sample() inverts them

    @torch.no_grad()
    def sample(self, n: int, *, labels: Any = None, generator: torch.Generator | None = None, **options: Any):
        from ..modalities.audio import Clips

        spec = super().sample(n, labels=labels, generator=generator, **options)  # type: ignore[misc]
        wave = self.stft.decode(spec, self.samples, self.cfg.griffin_lim_iters, generator=generator)
        y = self.resolve_labels(labels, n)  # type: ignore[attr-defined]
        names = self.label_names(y)  # type: ignore[attr-defined]
        return Clips(wave, self.rate, names)

    def describe(self) -> dict[str, Any]:
        c = self.cfg
        return {**super().describe(), "spectrogram": f"{c.n_fft // 2}x{c.n_fft // 2}, n_fft {c.n_fft}, "  # type: ignore[misc]
                f"hop {c.hop}, fast Griffin-Lim {c.griffin_lim_iters} iterations"}


@dataclass
class SpecGANConfig(SpectrogramConfig, DCGANConfig):
    pass


@MODELS.register("specgan")
class SpecGAN(Spectrogram, DCGAN):
    """G draws a spectrogram; D judges spectrograms of real clips."""

    Config = SpecGANConfig


@dataclass
class SpecFlowConfig(SpectrogramConfig, FlowConfig):
    pass


@MODELS.register("specflow")
class SpecFlow(Spectrogram, FlowMatching):
    """Flow matching from noise to spectrograms on the image U-Net (no likelihood: that is of 8-bit pixels)."""

    Config = SpecFlowConfig
