"""VAEs: the document's MLP VAE, a convolutional one, beta-VAE and a label-conditional VAE.

Encoder q(z|x) = N(mu(x), sigma(x)^2), z = mu + sigma * eps, decoder p(x|z) a true pixel
likelihood (Bernoulli for binarized data, discretized logistic for 8-bit images), prior N(0, I).
The loss is -E_q[log p(x|z)] + beta * KL(q(z|x) || p(z)) in nats per image: with beta = 1 it
is the negative ELBO, a bound on -log p(x).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ..errors import ConfigError
from ..limits import MAX_WIDTH, check_sizes
from ..plugins import MODELS
from .base import GenerativeModel, SampleOptions
from .capabilities import Conditional, Encoder, LatentLikelihood
from .vae_nets import PIXEL_LIKELIHOODS, ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder

LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class VAEConfig:
    z_dim: int = 16
    likelihood: str = "logistic"   # logistic (8-bit images) | bernoulli (dynamically binarized data)
    beta: float = 1.0              # weight of the KL term (1: the ELBO; > 1: beta-VAE)
    kl_warmup: int = 0             # steps over which the KL weight rises linearly from 0 to beta
    conditional: bool = False      # encoder and decoder see the label; sample by class name
    embed_dim: int = 16
    hidden: list[int] = field(default_factory=lambda: [512, 256])  # MLP widths (encoder order)
    channels: int = 32             # conv width of the first encoder / last decoder layer

    def check(self) -> None:
        PIXEL_LIKELIHOODS.get(self.likelihood)
        if not self.hidden:
            raise ConfigError("model.hidden is empty", "use positive layer widths, e.g. [512, 256]")
        check_sizes(self, "model", ("z_dim", "embed_dim", "hidden"), MAX_WIDTH, ConfigError)
        check_sizes(self, "model", ("channels",), MAX_WIDTH // 16, ConfigError)
        if not self.beta > 0:
            raise ConfigError(f"model.beta is {self.beta}", "use a positive KL weight (1 for a plain VAE)")
        if self.kl_warmup < 0:
            raise ConfigError(f"model.kl_warmup is {self.kl_warmup}", "use 0 (off) or a number of steps")


@dataclass
class ArchVAEConfig(VAEConfig):
    arch: str = "conv"             # conv | mlp

    def check(self) -> None:
        super().check()
        if self.arch not in ("conv", "mlp"):
            raise ConfigError(f"model.arch is '{self.arch}'", "use conv or mlp")


@dataclass
class BetaVAEConfig(ArchVAEConfig):
    beta: float = 4.0


@dataclass
class CVAEConfig(ArchVAEConfig):
    conditional: bool = True


@dataclass
class VAESampleOptions(SampleOptions):
    labels: Any = None             # class names or indices, cycled over the samples (conditional VAEs)


class VAE(GenerativeModel, Encoder, LatentLikelihood, Conditional):
    """Encoder, decoder and a pixel likelihood; `training_step` maximises the (beta-weighted) ELBO."""

    modality = "image"
    SampleOptions = VAESampleOptions
    prior: ClassVar[str] = "gaussian"      # N(0, I): explore interpolates random latents spherically
    arch: ClassVar[str] = "mlp"

    def __init__(self, cfg: VAEConfig, meta: dict[str, Any]):
        super().__init__(cfg, meta)
        self.shape = list(meta["shape"])
        self.num_classes = self.conditional_classes()
        self.lik = PIXEL_LIKELIHOODS.get(cfg.likelihood)()
        arch = getattr(cfg, "arch", self.arch)
        args = (cfg.z_dim, self.num_classes, cfg.embed_dim)
        if arch == "mlp":
            self.encoder = MLPEncoder(self.shape, cfg.hidden, *args)
            self.decoder = MLPDecoder(self.shape, cfg.hidden, *args, self.lik.params)
        else:
            self.encoder = ConvEncoder(self.shape, cfg.channels, *args)
            self.decoder = ConvDecoder(self.shape, cfg.channels, *args, self.lik.params)

    @property
    def latent_dim(self) -> int:
        return self.cfg.z_dim

    @property
    def dims(self) -> int:
        """Pixel values per image (C*H*W), for bits per dimension."""
        return math.prod(self.shape)

    @property
    def binary(self) -> bool:
        return self.lik.bins == 2

    @property
    def likelihood_name(self) -> str:
        return "bernoulli (binarized)" if self.binary else "discretized logistic (8-bit)"

    # ------------------------------------------------------------ the maths

    def target(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 images -> what the likelihood is over (binarized with `generator`, or scaled)."""
        return self.lik.target(x, generator)

    def labels_of(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        if not self.num_classes:
            return None
        if "y" not in batch:
            raise ConfigError("this conditional VAE needs labels with its images", "pass batch['y']")
        return batch["y"]

    def encode(self, target: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x): mean and log variance, [B, z_dim] each."""
        mu, logvar = self.encoder(target, y)
        return mu, logvar.clamp(-12.0, 8.0)

    def elbo_terms(self, target: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One reparameterised sample: (log p(x|z), KL(q||p)) per image, in nats."""
        mu, logvar = self.encode(target, y)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        log_px = self.lik.log_prob(target, self.decoder(z, y))
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        return log_px, kl

    @torch.no_grad()
    def log_weights(self, target: torch.Tensor, y: torch.Tensor | None, k: int, *, chunk: int = 1024,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """log p(x, z_i) - log q(z_i | x) for k draws z_i ~ q per image, [B, k] (Burda et al. 2016).

        Their mean is an ELBO estimate, their log-mean-exp the k-sample IWAE bound on log p(x).
        The decoder sees at most `chunk` latents at a time (several images per pass when k is
        small, part of one image's draws when k is large), so k = 5,000 fits in memory.
        """
        mu, logvar = self.encode(target, y)
        std = torch.exp(0.5 * logvar)
        out = torch.empty(target.shape[0], k)
        group, step = max(1, chunk // k), min(k, chunk)
        for b in range(0, target.shape[0], group):
            g = min(group, target.shape[0] - b)
            for s in range(0, k, step):
                m = min(step, k - s)
                eps = torch.randn(g, m, mu.shape[1], generator=generator)
                z = (mu[b:b + g, None] + std[b:b + g, None] * eps).flatten(0, 1)
                yb = None if y is None else y[b:b + g, None].expand(g, m).flatten()
                tb = target[b:b + g, None].expand(g, m, *target.shape[1:]).flatten(0, 1)
                log_px = self.lik.log_prob(tb, self.decoder(z, yb)).view(g, m)
                log_pz = -0.5 * (z.pow(2) + LOG_2PI).sum(1).view(g, m)
                log_qz = -0.5 * (eps.pow(2) + LOG_2PI).sum(2) - 0.5 * logvar[b:b + g, None].sum(2)
                out[b:b + g, s:s + m] = log_px + log_pz - log_qz
        return out

    def log_likelihood(self, batch: dict[str, torch.Tensor], k: int = 1000,
                       generator: torch.Generator | None = None) -> torch.Tensor:
        """The k-sample IWAE estimate of log p(x) per image in nats (a lower bound in expectation)."""
        w = self.log_weights(self.target(batch["x"], generator), self.labels_of(batch), k, generator=generator)
        return torch.logsumexp(w, 1) - math.log(k)

    # ------------------------------------------------------------ training

    def configure_optimizers(self, train: Any) -> dict[str, torch.optim.Optimizer]:
        return {"vae": torch.optim.Adam(self.parameters(), lr=train.lr, betas=tuple(train.betas),
                                        weight_decay=train.weight_decay)}

    def kl_weight(self, step: int) -> float:
        if self.cfg.kl_warmup:
            return self.cfg.beta * min(1.0, (step + 1) / self.cfg.kl_warmup)
        return self.cfg.beta

    def training_step(self, batch, opts, step):
        target = self.target(batch["x"])  # Bernoulli: a fresh binarization every step
        log_px, kl = self.elbo_terms(target, self.labels_of(batch))
        loss = (-log_px + self.kl_weight(step) * kl).mean()
        opts["vae"].zero_grad(set_to_none=True)
        loss.backward()
        opts["vae"].step()
        neg_elbo = (kl - log_px).detach().mean()
        return {"loss": loss.detach(), "recon_loss": -log_px.detach().mean(), "kl": kl.detach().mean(),
                "neg_elbo": neg_elbo, "bits_per_dim": neg_elbo / (self.dims * math.log(2.0))}

    # ------------------------------------------------------------ using it

    def _labels(self, labels: Any, n: int) -> torch.Tensor | None:
        """Label ids [n] from names / indices (resolve_labels), or a ready tensor (ids, or a Mix's weights [n, k])."""
        if torch.is_tensor(labels) and self.num_classes:
            return labels if labels.is_floating_point() else labels.to(torch.int64)  # weights [n, k] of a Mix
        return self.resolve_labels(labels, n)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """Latents [n, z_dim] -> the decoder's mean images in [0, 1] (probabilities for Bernoulli)."""
        y = self._labels(labels, len(z))
        out = [self.lik.mean(self.decoder(z[s:s + 1024], None if y is None else y[s:s + 1024]))
               for s in range(0, len(z), 1024)]
        return torch.cat(out) if out else torch.empty(0, *self.shape)

    @torch.no_grad()
    def encode_images(self, x: torch.Tensor, labels: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images -> posterior mean and log variance (binarized data: one seeded binarization).

        A conditional VAE needs the images' own labels (names, indices or an int64 tensor).
        """
        if self.num_classes and labels is None:
            raise ConfigError("encoding images with a conditional VAE needs their labels", "pass labels=")
        return self.encode(self.target(x, torch.Generator().manual_seed(0)), self._labels(labels, len(x)))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """uint8 images -> decoder means at their posterior means, in [0, 1]."""
        mu, _ = self.encode_images(x, labels)
        return self.decode(mu, self._labels(labels, len(x)))

    @torch.no_grad()
    def sample(self, n: int, *, labels: Any = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images as float [n, C, H, W] in [0, 1]: decoder means at z ~ N(0, I) (not pixel draws)."""
        y = self.resolve_labels(labels, n)
        return self.decode(torch.randn(n, self.cfg.z_dim, generator=generator), y)


@MODELS.register("vae-mlp")
class MLPVAE(VAE):
    """The document's form: dense encoder to (mu, log sigma^2), dense decoder."""

    Config = VAEConfig
    arch = "mlp"


@MODELS.register("vae-conv")
class ConvVAE(VAE):
    """Strided-conv encoder, transposed-conv decoder sized like the DCGAN (8..64 pixels)."""

    Config = VAEConfig
    arch = "conv"


@MODELS.register("beta-vae")
class BetaVAE(VAE):
    """beta > 1 presses the code toward the prior: fewer, more separate factors (Higgins et al. 2017)."""

    Config = BetaVAEConfig


@MODELS.register("cvae")
class CVAE(VAE):
    """Encoder and decoder see the label (Sohn et al. 2015): generate 'ankle boot' by name."""

    Config = CVAEConfig
