"""GANs: the document's MLP GAN and DCGAN, with BCE, WGAN-GP and hinge losses, EMA, labels."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..limits import MAX_WIDTH, check_sizes
from ..plugins import GAN_LOSSES, MODELS
from .base import GenerativeModel, PictureNets, SampleOptions
from .capabilities import Conditional, LatentSpace
from .gan_nets import DCDiscriminator, DCGenerator, MLPDiscriminator, MLPGenerator

# ---------------------------------------------------------------- losses


class GANLoss:
    """d_loss(real logits, fake logits) and g_loss(fake logits); `penalty` asks for WGAN-GP."""

    penalty = False

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@GAN_LOSSES.register("bce")
class NonSaturatingBCE(GANLoss):
    """The document's BCE: D tells real (1) from fake (0); G maximises log D(G(z))."""

    def d_loss(self, real, fake):
        return F.softplus(-real).mean() + F.softplus(fake).mean()

    def g_loss(self, fake):
        return F.softplus(-fake).mean()


@GAN_LOSSES.register("wgan-gp")
class WassersteinGP(GANLoss):
    """The document's L_D = -mean(D(x) - D(G(z))), L_G = -mean(D(G(z))), plus a gradient penalty."""

    penalty = True

    def d_loss(self, real, fake):
        return -(real.mean() - fake.mean())

    def g_loss(self, fake):
        return -fake.mean()


@GAN_LOSSES.register("hinge")
class Hinge(GANLoss):
    def d_loss(self, real, fake):
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()

    def g_loss(self, fake):
        return -fake.mean()


def gradient_penalty(d, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """Gulrajani et al. 2017: (||grad D(x_hat)|| - 1)^2 at per-sample interpolates."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)))
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x_hat, y).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).pow(2).mean()


# ---------------------------------------------------------------- the family


@dataclass
class GANConfig:
    z_dim: int = 100
    loss: str = "bce"              # bce | wgan-gp | hinge
    n_critic: int = 1              # discriminator updates per generator update
    gp_weight: float = 10.0
    conditional: bool = False      # label-conditional G (embedding) and D (projection)
    embed_dim: int = 32
    spectral_norm: bool = False
    ema: float = 0.999             # generator EMA decay, used for sampling (0: off)
    lr_g: float | None = None      # per-network learning rates (default: train.lr)
    lr_d: float | None = None

    def check(self) -> None:
        GAN_LOSSES.get(self.loss)
        check_sizes(self, "model", ("z_dim", "embed_dim"), MAX_WIDTH, ConfigError)
        check_sizes(self, "model", ("n_critic",), 100, ConfigError)
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"model.ema is {self.ema}", "use a decay in [0, 1), e.g. 0.999, or 0 to turn it off")


@dataclass
class MLPGANConfig(GANConfig):
    g_hidden: list[int] = field(default_factory=lambda: [128, 256, 512])
    d_hidden: list[int] = field(default_factory=lambda: [512, 256, 128])
    activation: str = "relu"       # relu (the document) | leaky_relu

    def check(self) -> None:
        super().check()
        check_sizes(self, "model", ("g_hidden", "d_hidden"), MAX_WIDTH, ConfigError)
        if not self.g_hidden or not self.d_hidden:
            raise ConfigError("model.g_hidden and d_hidden need at least one layer each", "e.g. [128, 256, 512]")
        if self.activation not in ("relu", "leaky_relu"):
            raise ConfigError(f"model.activation is '{self.activation}'", "use relu or leaky_relu")


@dataclass
class DCGANConfig(GANConfig):
    channels: int = 32             # width of the first D / last G conv; doubles per resolution step
    d_norm: str = "none"           # none | batch: batch norm in D (after every conv but the first)
    mbstd: int = 0                 # minibatch-std group size in D (0: off), against mode collapse

    def check(self) -> None:
        super().check()
        check_sizes(self, "model", ("channels",), MAX_WIDTH // 16, ConfigError)
        if self.d_norm not in ("none", "batch"):
            raise ConfigError(f"model.d_norm is '{self.d_norm}'", "use none or batch")
        if self.d_norm == "batch" and self.loss == "wgan-gp":
            raise ConfigError("model.d_norm is batch with loss wgan-gp",
                              "the gradient penalty is per sample, which batch norm breaks: use d_norm none")
        if self.mbstd != 0 and not 2 <= self.mbstd <= 64:
            raise ConfigError(f"model.mbstd is {self.mbstd}", "use a group size from 2 to 64 (e.g. 4), or 0 for off")


@dataclass
class GANSampleOptions(SampleOptions):
    labels: Any = None             # class names or indices, cycled over the samples (conditional models)
    ema: bool = True               # sample the generator's moving average (False: the raw generator)


class GAN(PictureNets, GenerativeModel, LatentSpace, Conditional):
    """Alternating updates: one D step per training step, one G step every n_critic steps."""

    modality = "image"
    SampleOptions = GANSampleOptions
    curves = ("gp",)  # the WGAN-GP gradient penalty
    sample_chunk = 1024  # images per generator call when sampling (bounds memory; see DCGAN)

    def __init__(self, cfg: GANConfig, meta: dict[str, Any]):
        super().__init__(cfg, meta)
        self.shape = self.net_shape(meta)
        self.num_classes = self.conditional_classes()
        self.G, self.D = self.build_nets(cfg)
        self.loss = GAN_LOSSES.get(cfg.loss)()

    def ema_modules(self) -> dict[str, float]:
        return {"G": self.cfg.ema} if self.cfg.ema > 0 else {}

    def describe(self) -> dict[str, Any]:
        return {"loss": self.cfg.loss}

    def build_nets(self, cfg):
        raise NotImplementedError

    def configure_optimizers(self, train: Any) -> dict[str, torch.optim.Optimizer]:
        # fused: one kernel per optimizer step instead of ~10 ops per tensor; 3x faster steps on a CPU
        # and the same update up to float rounding (1 ulp)
        kw = {"betas": tuple(train.betas), "weight_decay": train.weight_decay, "fused": True}
        return {
            "d": torch.optim.Adam(self.D.parameters(), lr=self.cfg.lr_d or train.lr, **kw),
            "g": torch.optim.Adam(self.G.parameters(), lr=self.cfg.lr_g or train.lr, **kw),
        }

    def training_step(self, batch, opts, step):
        x = self.real(batch["x"])
        y = batch.get("y") if self.num_classes else None
        z = torch.randn(x.shape[0], self.latent_dim)
        fake = self.G(z, y)  # one generator forward, reused by the D and the G update
        d_loss, logs = self.discriminator_loss(x, fake.detach(), y)
        opts["d"].zero_grad(set_to_none=True)
        d_loss.backward()
        opts["d"].step()
        if step % self.cfg.n_critic == 0:
            self.generator_step(opts["g"], fake, y, logs)
        return logs

    def discriminator_loss(self, x: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None
                           ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D's loss on real x and (detached) fakes, and what to log of it."""
        if getattr(self.D, "batch_aware", False):  # batch statistics in D: real and fake apart
            d_real, d_fake = self.D(x, y), self.D(fake, y)
        else:  # one forward: D treats samples independently, so this equals two forwards
            both = self.D(torch.cat([x, fake]), None if y is None else torch.cat([y, y]))
            d_real, d_fake = both.chunk(2)
        d_loss = self.loss.d_loss(d_real, d_fake)
        logs = {"d_loss": d_loss.detach(), "d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}
        if self.loss.penalty:
            gp = gradient_penalty(self.D, x, fake, y)
            d_loss = d_loss + self.cfg.gp_weight * gp
            logs["gp"] = gp.detach()
        return d_loss, logs

    def generator_loss(self, fake: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.loss.g_loss(self.D(fake, y))

    def generator_step(self, opt: torch.optim.Optimizer, fake: torch.Tensor, y: torch.Tensor | None,
                       logs: dict[str, torch.Tensor]) -> None:
        """One G update on `fake` (drawn with the graph) against a frozen D; logs g_loss."""
        self.D.requires_grad_(False)  # G's backward needs no D weight gradients
        g_loss = self.generator_loss(fake, y)
        opt.zero_grad(set_to_none=True)
        g_loss.backward()
        opt.step()
        self.D.requires_grad_(True)
        logs["g_loss"] = g_loss.detach()

    @torch.no_grad()
    def sample(self, n: int, *, labels: Any = None, generator: torch.Generator | None = None,
               ema: bool = True) -> torch.Tensor:
        """n images as float [n, C, H, W] in [0, 1]; labels by index or name for conditional models."""
        y = self.resolve_labels(labels, n)
        sizes = [min(self.sample_chunk, n - s) for s in range(0, n, self.sample_chunk)]
        return self._decode_chunks((torch.randn(m, self.latent_dim, generator=generator) for m in sizes), y, ema)

    prior = "gaussian"  # z ~ N(0, I): `aigc explore` interpolates spherically

    @property
    def latent_dim(self) -> int:
        return self.cfg.z_dim

    @torch.no_grad()
    def decode(self, z: torch.Tensor, labels: Any = None, ema: bool = True) -> torch.Tensor:  # type: ignore[override]
        """Given latents [n, z_dim] -> images [n, C, H, W] in [0, 1], through the generator `sample` uses."""
        return self._decode_chunks(z.split(self.sample_chunk), self.resolve_labels(labels, len(z)), ema)

    def _decode_chunks(self, chunks: Any, y: torch.Tensor | None, ema: bool) -> torch.Tensor:
        """Latent chunks (drawn lazily, so sampling consumes the generator chunk by chunk) -> images."""
        net = self.averaged("G") if ema else self.G  # in the mode the caller set: sampling never flips it
        out, start = [], 0
        for z in chunks:
            out.append(self.output(net(z, None if y is None else y[start:start + len(z)])))
            start += len(z)
        return torch.cat(out) if out else torch.empty(0, *self.shape)


@MODELS.register("gan-mlp")
class MLPGAN(GAN):
    """The document's worked example: z=100, G 128-256-512 ReLU -> tanh, D 512-256-128 ReLU -> 1."""

    Config = MLPGANConfig

    def build_nets(self, cfg: MLPGANConfig):
        g = MLPGenerator(cfg.z_dim, self.shape, cfg.g_hidden, self.num_classes, cfg.embed_dim, cfg.activation)
        d = MLPDiscriminator(self.shape, cfg.d_hidden, self.num_classes, cfg.activation, cfg.spectral_norm)
        return g, d


@MODELS.register("dcgan")
class DCGAN(GAN):
    """Convolutional G (transposed convs + batch norm) and D (strided convs), Radford et al. 2016."""

    Config = DCGANConfig
    sample_chunk = 128  # conv activations of 128 images stay in cache: 2x the images/s of 1024

    def build_nets(self, cfg: DCGANConfig):
        g = DCGenerator(cfg.z_dim, self.shape, cfg.channels, self.num_classes, cfg.embed_dim)
        d = DCDiscriminator(self.shape, cfg.channels, self.num_classes, cfg.spectral_norm, cfg.d_norm, cfg.mbstd)
        for m in [*g.modules(), *d.modules()]:  # DCGAN init: N(0, 0.02) weights
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)) and not cfg.spectral_norm:
                torch.nn.init.normal_(m.weight, 0.0, 0.02)
        return g, d
