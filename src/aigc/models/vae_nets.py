"""VAE building blocks: pixel likelihoods (Bernoulli, discretized logistic), encoders and decoders."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..data.images import to_signed
from ..plugins import missing
from ..registry import Registry
from .gan_nets import LabelEmbedding, dcgan_plan

PIXEL_LIKELIHOODS = Registry("pixel likelihood", missing=missing)  # name -> PixelLikelihood subclass


class PixelLikelihood:
    """log p(x | decoder output), summed over pixels; `params` decoder channels per image channel."""

    params = 1
    bins = 256  # how many values one pixel can take (for bits/dim and exactness tests)

    def target(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 images -> the values the likelihood is over."""
        raise NotImplementedError

    def log_prob(self, target: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """Per-image log-likelihood in nats, [B]."""
        raise NotImplementedError

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        """The decoder's mean image in [0, 1]."""
        raise NotImplementedError


@PIXEL_LIKELIHOODS.register("bernoulli")
class Bernoulli(PixelLikelihood):
    """For binarized data: each pixel is 1 with probability sigmoid(logit).

    `target` binarizes dynamically (a fresh Bernoulli(x/255) draw each call, as in the
    literature); pass a seeded generator to get one fixed binarization (the test set).
    """

    bins = 2

    def target(self, x, generator=None):
        return torch.bernoulli(x.float() / 255.0, generator=generator)

    def log_prob(self, target, out):
        return -F.binary_cross_entropy_with_logits(out, target, reduction="none").flatten(1).sum(1)

    def mean(self, out):
        return torch.sigmoid(out)


@PIXEL_LIKELIHOODS.register("logistic")
class DiscretizedLogistic(PixelLikelihood):
    """For 8-bit images: a logistic(mu, s) per pixel, integrated over each of the 256 bins.

    Pixels live in [-1, 1] with bin half-width 1/255; the end bins take the tails, so the 256
    probabilities sum to one (Salimans et al. 2017, PixelCNN++, with one mixture component).
    """

    params = 2
    min_log_scale = -7.0

    def target(self, x, generator=None):
        return to_signed(x)

    def _split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_s = out.chunk(2, dim=1)
        return mu, log_s.clamp(min=self.min_log_scale)

    def log_prob_pixels(self, target: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        mu, log_s = self._split(out)
        centered = target - mu
        inv_s = torch.exp(-log_s)
        plus = inv_s * (centered + 1.0 / 255.0)
        minus = inv_s * (centered - 1.0 / 255.0)
        log_cdf_plus = plus - F.softplus(plus)          # log sigmoid(plus), for the lowest bin
        log_one_minus_cdf_minus = -F.softplus(minus)    # log (1 - sigmoid(minus)), for the highest
        # log(sigmoid(plus) - sigmoid(minus)) without cancellation in either tail:
        # sigmoid(a) - sigmoid(b) = sigmoid(a) * (1 - sigmoid(b)) * (1 - exp(b - a)).
        log_mid = (plus - F.softplus(plus)) - F.softplus(minus) + torch.log(-torch.expm1(minus - plus))
        return torch.where(target < -0.999, log_cdf_plus,
                           torch.where(target > 0.999, log_one_minus_cdf_minus, log_mid))

    def log_prob(self, target, out):
        return self.log_prob_pixels(target, out).flatten(1).sum(1)

    def mean(self, out):
        mu, _ = self._split(out)
        return mu.add(1.0).mul(0.5).clamp(0.0, 1.0)


# ---------------------------------------------------------------- networks


class MLPEncoder(nn.Module):
    """Image (+ label) -> hidden ReLU layers -> (mu, log variance)."""

    def __init__(self, shape: list[int], hidden: list[int], z_dim: int, num_classes: int, embed_dim: int):
        super().__init__()
        self.cond = nn.Embedding(num_classes, embed_dim) if num_classes else None
        layers, width = [], math.prod(shape) + (embed_dim if num_classes else 0)
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 2 * z_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.flatten(1)
        if self.cond is not None:
            h = torch.cat([h, self.cond(y)], 1)
        mu, logvar = self.head(self.body(h)).chunk(2, dim=1)
        return mu, logvar


class MLPDecoder(nn.Module):
    """z (+ label) -> hidden ReLU layers -> likelihood parameters per pixel."""

    def __init__(self, shape: list[int], hidden: list[int], z_dim: int, num_classes: int, embed_dim: int,
                 params: int):
        super().__init__()
        self.out_shape = [shape[0] * params, *shape[1:]]
        self.cond = LabelEmbedding(num_classes, embed_dim) if num_classes else None
        layers, width = [], z_dim + (embed_dim if num_classes else 0)
        for h in reversed(hidden):
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, math.prod(self.out_shape)))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond is not None:
            z = self.cond(z, y)
        return self.net(z).view(-1, *self.out_shape)


class ConvEncoder(nn.Module):
    """Strided 4x4 convs (x2 down per step, as dcgan_plan sizes the decoder) -> (mu, log variance)."""

    def __init__(self, shape: list[int], ch: int, z_dim: int, num_classes: int, embed_dim: int):
        super().__init__()
        base, k = dcgan_plan(shape[1])
        layers, width = [], shape[0]
        for i in range(k):
            layers += [nn.Conv2d(width, ch * 2**i, 4, 2, 1), nn.ReLU()]
            width = ch * 2**i
        layers.append(nn.Flatten())
        self.body = nn.Sequential(*layers)
        self.cond = nn.Embedding(num_classes, embed_dim) if num_classes else None
        feats = width * base * base + (embed_dim if num_classes else 0)
        self.head = nn.Sequential(nn.Linear(feats, 256), nn.ReLU(), nn.Linear(256, 2 * z_dim))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        if self.cond is not None:
            h = torch.cat([h, self.cond(y)], 1)
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar


class ConvDecoder(nn.Module):
    """z (+ label) -> linear to (ch*2^(k-1), base, base) -> k transposed convs x2 -> parameters."""

    def __init__(self, shape: list[int], ch: int, z_dim: int, num_classes: int, embed_dim: int, params: int):
        super().__init__()
        base, k = dcgan_plan(shape[1])
        self.cond = LabelEmbedding(num_classes, embed_dim) if num_classes else None
        width = ch * 2 ** (k - 1)
        self.stem = nn.Sequential(nn.Linear(z_dim + (embed_dim if num_classes else 0), 256), nn.ReLU(),
                                  nn.Linear(256, width * base * base), nn.ReLU(),
                                  nn.Unflatten(1, (width, base, base)))
        ups = []
        for i in range(k):
            last = i == k - 1
            out = shape[0] * params if last else width // 2
            ups.append(nn.ConvTranspose2d(width, out, 4, 2, 1))
            if not last:
                ups.append(nn.ReLU())
            width = out
        self.ups = nn.Sequential(*ups)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.cond is not None:
            z = self.cond(z, y)
        return self.ups(self.stem(z))
