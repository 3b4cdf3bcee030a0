"""Generator and discriminator networks: the document's MLP and a DCGAN sized for 8..64 pixels."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..errors import ConfigError
from ..pixels import conv_plan, conv_sides_near
from .capabilities import embed_labels


def _act(name: str) -> nn.Module:
    return {"relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.2)}[name]


class LabelEmbedding(nn.Module):
    """Concatenates a learned label embedding to the latent (conditional generators)."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, dim)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return z if y is None else torch.cat([z, embed_labels(self.embed, y)], 1)


class Projection(nn.Module):
    """Projection discriminator head (Miyato & Koyama 2018): logit = w.h + <embed(y), h>."""

    def __init__(self, features: int, num_classes: int, sn: bool):
        super().__init__()
        self.linear = spectral_if(nn.Linear(features, 1), sn)
        self.embed = spectral_if(nn.Embedding(num_classes, features), sn) if num_classes else None

    def forward(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        out = self.linear(h).squeeze(1)
        if self.embed is not None and y is not None:
            out = out + (self.embed(y) * h).sum(1)
        return out


def spectral_if(m: nn.Module, on: bool) -> nn.Module:
    return spectral_norm(m) if on else m


class MLPGenerator(nn.Module):
    """z (+ label) -> Dense 128-256-512 ReLU -> C*H*W tanh, reshaped to the image (the document's G)."""

    def __init__(self, z_dim: int, shape: list[int], hidden: list[int], num_classes: int, embed_dim: int,
                 act: str):
        super().__init__()
        self.shape = shape
        self.cond = LabelEmbedding(num_classes, embed_dim) if num_classes else None
        layers, width = [], z_dim + (embed_dim if num_classes else 0)
        for h in hidden:
            layers += [nn.Linear(width, h), _act(act)]
            width = h
        layers += [nn.Linear(width, math.prod(shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond is not None:
            z = self.cond(z, y)
        return self.net(z).view(-1, *self.shape)


class MLPDiscriminator(nn.Module):
    """Image -> Dense 512-256-128 ReLU -> 1 logit (the document's D, sigmoid folded into the loss)."""

    def __init__(self, shape: list[int], hidden: list[int], num_classes: int, act: str, sn: bool):
        super().__init__()
        layers, width = [nn.Flatten()], math.prod(shape)
        for h in hidden:
            layers += [spectral_if(nn.Linear(width, h), sn), _act(act)]
            width = h
        self.features = nn.Sequential(*layers)
        self.head = Projection(width, num_classes, sn)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x), y)


def dcgan_plan(size: int) -> tuple[int, int]:
    """(base side, number of x2 upsamplings): 28 -> (7, 2), 32 -> (4, 3), 64 -> (4, 4) (pixels.conv_plan,
    which `aigc data audit` asks too)."""
    plan = conv_plan(size)
    if plan is None:
        sides = [str(x) for x in sorted({*conv_sides_near(size), 32, 64})]
        raise ConfigError(f"dcgan cannot build {size}x{size} images",
                          f"use a side such as {', '.join(sides[:-1])} or {sides[-1]} (set data.image_size)")
    return plan


class DCGenerator(nn.Module):
    """z -> linear to (ch*2^k, base, base) -> k x [ConvTranspose x2, BN, ReLU] -> conv -> tanh."""

    def __init__(self, z_dim: int, shape: list[int], ch: int, num_classes: int, embed_dim: int):
        super().__init__()
        c_out, size = shape[0], shape[1]
        base, k = dcgan_plan(size)
        self.cond = LabelEmbedding(num_classes, embed_dim) if num_classes else None
        width = ch * 2**k
        self.stem = nn.Sequential(nn.Linear(z_dim + (embed_dim if num_classes else 0), width * base * base, bias=False),
                                  nn.Unflatten(1, (width, base, base)), nn.BatchNorm2d(width), nn.ReLU())
        ups = []
        for _ in range(k):
            ups += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU()]
            width //= 2
        self.ups = nn.Sequential(*ups)
        self.out = nn.Sequential(nn.Conv2d(width, c_out, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond is not None:
            z = self.cond(z, y)
        return self.out(self.ups(self.stem(z)))


class MinibatchStdDev(nn.Module):
    """Appends one feature map: the std of each feature over a group of samples, averaged (Karras et al. 2018).

    A generator that collapses to a few modes gives groups of fakes a small spread that real groups
    do not have, so D can see it. Groups are runs of `group` consecutive samples (the largest size
    up to `group` that divides the batch), so a batch of reals followed by fakes never mixes them.
    """

    def __init__(self, group: int):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = next(k for k in range(min(self.group, b), 0, -1) if b % k == 0)
        std = x.view(b // g, g, c, h, w).var(1, unbiased=False).add(1e-8).sqrt().mean((1, 2, 3))
        return torch.cat([x, std.repeat_interleave(g).view(b, 1, 1, 1).expand(b, 1, h, w)], 1)


class DCDiscriminator(nn.Module):
    """Strided convs with LeakyReLU down to 4x4.

    By default no batch norm, so WGAN-GP's penalty is per sample and real and fake can share one
    forward. `norm="batch"` puts batch norm after every conv but the first (Radford et al.) and
    `mbstd` > 0 a minibatch-std feature before the head: both make D see batch statistics
    (`batch_aware`), so the family then gives it real and fake batches in separate forwards.
    """

    def __init__(self, shape: list[int], ch: int, num_classes: int, sn: bool, norm: str = "none", mbstd: int = 0):
        super().__init__()
        c_in, size = shape[0], shape[1]
        dcgan_plan(size)  # same size check as the generator
        layers, width, side = [], c_in, size
        out = ch
        while side > 4:
            kernel = 4 if side % 2 == 0 else 3
            layers.append(spectral_if(nn.Conv2d(width, out, kernel, 2, 1, bias=norm != "batch" or not layers), sn))
            if norm == "batch" and len(layers) > 1:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2))
            width, out = out, out * 2
            side = (side + 2 - kernel) // 2 + 1
        if mbstd:
            layers.append(MinibatchStdDev(mbstd))
            layers += [spectral_if(nn.Conv2d(width + 1, width, 3, 1, 1), sn), nn.LeakyReLU(0.2)]
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        self.head = Projection(width * side * side, num_classes, sn)
        self.batch_aware = norm == "batch" or mbstd > 0

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x), y)
