"""Diffusion (DDPM trained, DDIM / DPM-Solver++ sampled) and flow matching (rectified flow), on one U-Net.

Both are ordinary families on the trainer: one optimizer, one loss per step, an EMA copy of the
network for sampling (train/ema.py), labels with classifier-free guidance (Ho & Salimans 2022: the
label is dropped with probability `model.p_uncond` in training; `guidance` w mixes
unconditional + w * (conditional - unconditional) at sampling: 0 ignores the label, 1 is the plain
conditional model, larger w follows the label harder). The maths lives in aigc.models.samplers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..limits import MAX_WIDTH, check_sizes
from ..pixels import from_signed
from ..plugins import MODELS
from . import samplers as S
from .base import GenerativeModel, PictureNets, SampleOptions
from .capabilities import Conditional, DensityLikelihood, LatentSpace, Trajectory
from .unet import UNet

MAX_SAMPLE_STEPS = 1000
MAX_GUIDANCE = 50.0


@dataclass
class UNetFamilyConfig:
    widths: list[int] = field(default_factory=lambda: [32, 64, 128])  # channels per resolution level
    blocks: int = 1                # residual blocks per level on the way down
    patch: int = 1                 # p x p pixels folded into channels before the first level (1, 2 or 4)
    attention: bool = True         # self-attention at the lowest resolution
    dropout: float = 0.0
    conditional: bool = False      # class labels, with classifier-free guidance
    p_uncond: float = 0.1          # share of training items whose label is dropped (conditional models)
    ema: float = 0.999             # EMA decay of the network used for sampling (0: off)
    sample_steps: int = 20         # default steps of the sampler
    sampler: str = ""              # default sampler ("": the family's first: ddim, euler)
    guidance: float = 1.0          # default classifier-free guidance of a conditional model (1: none extra)
    sample_precision: str = "fp32"  # fp32 | bf16: bf16 autocasts the network's convolutions while sampling

    def check(self) -> None:
        check_sizes(self, "model", ("widths",), MAX_WIDTH // 4, ConfigError)
        check_sizes(self, "model", ("blocks",), 8, ConfigError)
        if not 1 <= len(self.widths) <= 5:
            raise ConfigError(f"model.widths has {len(self.widths)} levels", "use 1 to 5 levels, e.g. [32, 64, 128]")
        if self.patch not in (1, 2, 4):
            raise ConfigError(f"model.patch is {self.patch}", "use 1 (pixels), 2 or 4")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout is {self.dropout}", "use a rate in [0, 1)")
        if not 0.0 <= self.p_uncond < 1.0:
            raise ConfigError(f"model.p_uncond is {self.p_uncond}", "use a probability in [0, 1), e.g. 0.1")
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"model.ema is {self.ema}", "use a decay in [0, 1), e.g. 0.999, or 0 to turn it off")
        if not 1 <= self.sample_steps <= MAX_SAMPLE_STEPS:
            raise ConfigError(f"model.sample_steps is {self.sample_steps}", f"use 1 to {MAX_SAMPLE_STEPS}")
        if not 0.0 <= self.guidance <= MAX_GUIDANCE:
            raise ConfigError(f"model.guidance is {self.guidance}", f"use a weight from 0 (none) to {MAX_GUIDANCE:g}")
        if self.guidance != 1.0 and not self.conditional:
            raise ConfigError(f"model.guidance is {self.guidance} but the model has no labels",
                              "set model.conditional: true, or leave model.guidance at 1")
        if self.sample_precision not in ("fp32", "bf16"):
            raise ConfigError(f"model.sample_precision is '{self.sample_precision}'", "use fp32 or bf16")


@dataclass
class DiffusionConfig(UNetFamilyConfig):
    timesteps: int = 1000          # T of the forward process
    noise_schedule: str = "cosine"  # cosine | linear: how fast the forward process destroys the signal
    prediction: str = "eps"        # eps | v: what the network predicts

    def check(self) -> None:
        super().check()
        if not 2 <= self.timesteps <= 10_000:
            raise ConfigError(f"model.timesteps is {self.timesteps}", "use 2 to 10000 (1000 is usual)")
        if self.noise_schedule not in ("cosine", "linear"):
            raise ConfigError(f"model.noise_schedule is '{self.noise_schedule}'", "use cosine or linear")
        if self.prediction not in ("eps", "v"):
            raise ConfigError(f"model.prediction is '{self.prediction}'", "use eps or v")


@dataclass
class FlowConfig(UNetFamilyConfig):
    time_sampling: str = "uniform"  # uniform | logit-normal (Esser et al. 2024): which t training sees

    def check(self) -> None:
        super().check()
        if self.time_sampling not in ("uniform", "logit-normal"):
            raise ConfigError(f"model.time_sampling is '{self.time_sampling}'", "use uniform or logit-normal")


@dataclass
class UNetSampleOptions(SampleOptions):
    labels: Any = None             # class names or indices, cycled over the samples (conditional models)
    steps: int | None = None       # sampler steps (default: model.sample_steps)
    sampler: str | None = None     # the family's samplers (default: its first)
    guidance: float | None = None  # classifier-free guidance w: 0 unconditional, 1 conditional (default), >1 more
    ema: bool = True               # sample the network's moving average (False: the raw network)

    def check(self) -> None:
        if self.steps is not None and not 1 <= self.steps <= MAX_SAMPLE_STEPS:
            raise ConfigError(f"sample steps {self.steps}", f"use 1 to {MAX_SAMPLE_STEPS} steps")
        if self.guidance is not None and not 0.0 <= self.guidance <= MAX_GUIDANCE:
            raise ConfigError(f"guidance {self.guidance}", f"use a weight from 0 (none) to {MAX_GUIDANCE:g}")


class UNetFamily(PictureNets, GenerativeModel, Conditional, LatentSpace, Trajectory):
    """What diffusion and flow share: the network, labels dropped for guidance, the sampling loop.

    Their latent is the starting noise (one number per pixel, N(0, I)); the default samplers are
    deterministic, so `decode(noise)` is a function and `aigc explore` can walk between noises."""

    modality = "image"
    SampleOptions = UNetSampleOptions
    samplers: tuple[str, ...] = ()
    sample_chunk = 256

    def __init__(self, cfg: UNetFamilyConfig, meta: dict[str, Any]):
        super().__init__(cfg, meta)
        self.shape = self.net_shape(meta)
        c, h, w = self.shape[-3:]  # a picture [C, H, W], or a clip of them [T, C, H, W] (aigc.models.video)
        if h != w:
            raise ConfigError(f"{type(self).__name__} needs square images, got {h}x{w}", "set data.image_size")
        if h % cfg.patch:
            raise ConfigError(f"model.patch {cfg.patch} does not divide {h}x{w} pictures", "use model.patch 1")
        if h // cfg.patch < 2 ** (len(cfg.widths) - 1):
            raise ConfigError(f"pictures of {h}x{w} are too small for {len(cfg.widths)} levels at patch {cfg.patch}",
                              "use fewer model.widths, a smaller model.patch or a larger data.image_size")
        self.num_classes = self.conditional_classes()
        if cfg.sampler and cfg.sampler not in self.samplers:
            raise ConfigError(f"model.sampler is '{cfg.sampler}'", f"use one of {', '.join(self.samplers)}")
        self.net = self.make_net(c, h)

    def make_net(self, channels: int, side: int) -> torch.nn.Module:
        """The network: (x shaped like a sample, t [n], y [n] or None) -> a tensor shaped like x."""
        cfg = self.cfg
        return UNet(channels, list(cfg.widths), blocks=cfg.blocks, attention=cfg.attention,
                    num_classes=self.num_classes, dropout=cfg.dropout, side=side, patch=cfg.patch)

    def ema_modules(self) -> dict[str, float]:
        return {"net": self.cfg.ema} if self.cfg.ema > 0 else {}

    def configure_optimizers(self, train: Any) -> dict[str, torch.optim.Optimizer]:
        return {"net": torch.optim.AdamW(self.net.parameters(), lr=train.lr, betas=tuple(train.betas),
                                         weight_decay=train.weight_decay, fused=True)}

    def _train_labels(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if not self.num_classes:
            return None
        y = batch["y"].clone()
        drop = torch.rand(len(y)) < self.cfg.p_uncond
        y[drop] = self.num_classes  # the "no label" class the unconditional prediction uses
        return y

    def loss(self, x0: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch, opts, step):
        loss = self.loss(self.real(batch["x"]), self._train_labels(batch))
        opts["net"].zero_grad(set_to_none=True)
        loss.backward()
        opts["net"].step()
        return {"loss": loss.detach()}

    def guided(self, net: torch.nn.Module, y: torch.Tensor | None, guidance: float):
        """(x, t [n]) -> the network's output: unconditional + w (conditional - unconditional)."""
        k = self.num_classes
        if y is not None and y.is_floating_point():  # a mix: weights over the k classes and "no label" (0)
            y = F.pad(y, (0, k + 1 - y.shape[1]))

        def no_label(ys: torch.Tensor) -> torch.Tensor:
            if ys.is_floating_point():
                return F.one_hot(torch.full((len(ys),), k), k + 1).to(ys.dtype)
            return torch.full_like(ys, k)

        def call(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if y is None or guidance == 1:
                return net(x, t, y)
            if guidance == 0:
                return net(x, t, no_label(y))
            out, half = [], self.sample_chunk // 2  # both predictions in one call, half a chunk at a time:
            for s in range(0, len(x), half):        # the network never sees more than sample_chunk items
                xs, ts, ys = x[s:s + half], t[s:s + half], y[s:s + half]
                both = net(torch.cat([xs, xs]), torch.cat([ts, ts]), torch.cat([ys, no_label(ys)]))
                cond, uncond = both.chunk(2)
                out.append(uncond + guidance * (cond - uncond))
            return torch.cat(out)
        return call

    def check_sampler(self, sampler: str | None) -> str:
        name = sampler or self.cfg.sampler or self.samplers[0]
        if name not in self.samplers:
            raise ConfigError(f"sampler '{name}' is not one of {type(self).__name__}'s",
                              f"use {', '.join(self.samplers)}")
        return name

    def run_sampler(self, call, noise: torch.Tensor, steps: int, sampler: str, generator: torch.Generator | None,
                    trajectory: list[torch.Tensor] | None) -> torch.Tensor:
        raise NotImplementedError

    def sample_hints(self) -> dict[str, dict[str, Any]]:
        hints: dict[str, dict[str, Any]] = {"sampler": {"choices": list(self.samplers), "default": self.check_sampler(None)},
                                            "steps": {"default": self.cfg.sample_steps}}
        if self.num_classes:
            hints["guidance"] = {"default": self.cfg.guidance}
        return hints

    prior = "gaussian"

    @property
    def latent_dim(self) -> int:
        return math.prod(self.shape)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """Noise [n, C*H*W] -> images through the default (deterministic) sampler."""
        return self.sample(len(z), labels=labels, noise=z.reshape(len(z), *self.shape))

    @torch.no_grad()
    def trajectory(self, n: int, *, steps: int | None = None, labels: Any = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        if n > self.sample_chunk:
            raise ConfigError(f"a trajectory of {n} samples", f"show at most {self.sample_chunk} at once")
        noise = torch.randn(n, *self.shape, generator=generator)
        path: list[torch.Tensor] = []
        self.sample(n, labels=labels, steps=steps, noise=noise, trajectory=path)
        per_chunk = [from_signed(noise.clamp(-1, 1))] + path  # the noise, shown clipped, then each step
        return torch.stack(per_chunk, 1)

    @torch.no_grad()
    def sample(self, n: int, *, labels: Any = None, generator: torch.Generator | None = None,
               steps: int | None = None, sampler: str | None = None, guidance: float | None = None, ema: bool = True,
               noise: torch.Tensor | None = None, trajectory: list[torch.Tensor] | None = None) -> torch.Tensor:
        """n images as float [n, C, H, W] in [0, 1]: noise (drawn from `generator`, or given) taken to
        images by `sampler` in `steps` steps; labels by index or name, `guidance` w for conditional
        models. A deterministic sampler gives the same images for the same noise."""
        sampler = self.check_sampler(sampler)
        steps = steps or self.cfg.sample_steps
        if guidance is not None and not self.num_classes:
            raise ConfigError("guidance needs a conditional model", "train a conditional recipe (fashion-cflow)")
        guidance = float(self.cfg.guidance if guidance is None else guidance)
        y_all = self.resolve_labels(labels, n)
        net = self.averaged("net") if ema else self.net
        out = []
        for start in range(0, n, self.sample_chunk):
            m = min(self.sample_chunk, n - start)
            x = noise[start:start + m] if noise is not None else torch.randn(m, *self.shape, generator=generator)
            y = None if y_all is None else y_all[start:start + m]
            traj = [] if trajectory is not None else None
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.cfg.sample_precision == "bf16"):
                x = self.run_sampler(self.guided(net, y, guidance), x, steps, sampler, generator, traj)
            if trajectory is not None:
                trajectory.extend(from_signed(t.clamp(-1, 1)) for t in traj)
            out.append(self.output(x.clamp(-1, 1)))
        return torch.cat(out) if out else torch.empty(0, *self.shape)


@MODELS.register("diffusion")
class Diffusion(UNetFamily):
    """DDPM (Ho et al. 2020): predict the noise (or v) added at a random step of the forward process."""

    Config = DiffusionConfig
    samplers = ("ddim", "dpm++2m")

    def __init__(self, cfg: DiffusionConfig, meta: dict[str, Any]):
        super().__init__(cfg, meta)
        self.register_buffer("abar", S.alpha_bars(cfg.noise_schedule, cfg.timesteps).float(), persistent=False)

    def describe(self) -> dict[str, Any]:
        return {"process": f"DDPM, T={self.cfg.timesteps}, {self.cfg.noise_schedule} noise schedule, "
                           f"{self.cfg.prediction}-prediction"}

    def loss(self, x0, y):
        t = torch.randint(0, self.cfg.timesteps, (len(x0),))
        noise = torch.randn_like(x0)
        a = self.abar[t]
        xt = S.noised(x0, noise, a)
        out = self.net(xt, t.float(), y)
        if self.cfg.prediction == "eps":
            target = noise
        else:
            aa = a.view(-1, 1, 1, 1)
            target = aa.sqrt() * noise - (1 - aa).sqrt() * x0
        return F.mse_loss(out, target)

    def run_sampler(self, call, noise, steps, sampler, generator, trajectory):
        abar = self.abar.double()

        def denoise(x: torch.Tensor, t: int) -> torch.Tensor:
            a = float(abar[t])
            out = call(x, torch.full((len(x),), float(t))).to(x.dtype)
            if self.cfg.prediction == "eps":
                x0 = (x - (1 - a) ** 0.5 * out) / a ** 0.5
            else:
                x0 = a ** 0.5 * x - (1 - a) ** 0.5 * out
            return x0.clamp(-1, 1)

        if sampler == "ddim":
            return S.ddim(denoise, noise, abar, steps, trajectory=trajectory)
        return S.dpm_solver_2m(denoise, noise, abar, steps, trajectory=trajectory)


class FlowMatching(UNetFamily):
    """Flow matching with the linear path (rectified flow): predict data - noise at a random t."""

    Config = FlowConfig
    samplers = ("euler", "heun", "midpoint")

    def describe(self) -> dict[str, Any]:
        return {"process": f"flow matching, linear path, {self.cfg.time_sampling} t"}

    def loss(self, x0, y):
        noise = torch.randn_like(x0)
        if self.cfg.time_sampling == "logit-normal":
            t = torch.sigmoid(torch.randn(len(x0)))
        else:
            t = torch.rand(len(x0))
        xt = S.flow_point(noise, x0, t)
        return F.mse_loss(self.net(xt, t * 1000, y), x0 - noise)

    def velocity(self, call):
        return lambda x, t: call(x, torch.full((len(x),), t * 1000, dtype=torch.float32)).to(x.dtype)

    def run_sampler(self, call, noise, steps, sampler, generator, trajectory):
        return S.integrate(self.velocity(call), noise, steps, sampler, trajectory=trajectory)


@MODELS.register("flow")
class Flow(FlowMatching, DensityLikelihood):
    """Flow matching on 8-bit images, with their likelihood through the ODE."""

    @property
    def dims(self) -> int:
        return self.latent_dim

    def dequantized_log_likelihood(self, x: torch.Tensor, y: torch.Tensor | None, *, steps: int,
                                   generator: torch.Generator | None = None) -> torch.Tensor:
        """log p of uint8 images in nats on the 8-bit scale: each value v becomes (v + u) / 256 with u
        uniform, mapped to [-1, 1) where the flow lives; the ODE gives the density there (Heun,
        `steps` steps, one Hutchinson probe), and the map's Jacobian (2/256 per value) brings it back."""
        u = torch.rand(x.shape, generator=generator, dtype=torch.float64)
        signed = (x.double() + u) * (2.0 / 256.0) - 1.0
        call = self.guided(self.averaged("net"), y if self.num_classes else None, 1.0)

        def velocity(xv: torch.Tensor, t: float) -> torch.Tensor:
            return call(xv.float(), torch.full((len(xv),), t * 1000, dtype=torch.float32)).to(xv.dtype)

        log_p = S.ode_log_likelihood(velocity, signed, steps, generator=generator)
        return log_p + self.dims * math.log(2.0 / 256.0)
