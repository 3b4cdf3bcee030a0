"""What a family optionally offers, declared by inheriting these classes (never found with getattr).

`isinstance(model, LatentSpace)` is how `aigc explore`, the metrics and the API ask. Each class
names the methods a family must then provide; Python refuses to build a family that declares a
capability and leaves one of them out.

- LatentSpace: samples are decoded from latents z with a known prior (GANs, VAEs).
- Encoder: images map back to latents (VAEs): reconstructions, traversals, real-image walks.
- LatentLikelihood: importance-weighted bounds on log p(x) from log p(x, z) - log q(z|x) (VAEs).
- ExactLikelihood: log p(x) itself, item by item (autoregressive models).
- DensityLikelihood: log p of 8-bit images through a continuous density, uniformly dequantized (flows).
- Conditional: built for class labels; samples by class name or index, or a Mix of classes (a weighted
  sum of their label embeddings: `embed_labels`).
- SequenceSampler: token-by-token sampling with a prompt, temperature, top-k and top-p.
- Trajectory: samples are made in steps from noise, and the steps can be shown (diffusion, flow).
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

from ..errors import ConfigError, unknown
from ..pixels import label_key
from ..prompts import Mix


class LatentSpace(ABC):
    prior: ClassVar[str] = "gaussian"  # z ~ N(0, I): walks between latents follow great circles

    @property
    @abstractmethod
    def latent_dim(self) -> int: ...

    @abstractmethod
    def decode(self, z: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """Latents [n, latent_dim] -> samples, through the network `sample` uses."""


class Encoder(LatentSpace):
    @abstractmethod
    def encode_images(self, x: torch.Tensor, labels: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images -> posterior mean and log variance, [n, latent_dim] each."""

    @abstractmethod
    def reconstruct(self, x: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """uint8 images -> reconstructions in [0, 1]."""


class LatentLikelihood(ABC):
    """A latent-variable model whose log p(x) is bounded by importance sampling (Burda et al. 2016)."""

    @property
    @abstractmethod
    def dims(self) -> int:
        """Values per item (C*H*W), for bits per dimension."""

    @property
    @abstractmethod
    def binary(self) -> bool:
        """Whether the likelihood is over binarized values (the test set is then binarized once, seeded)."""

    @property
    @abstractmethod
    def likelihood_name(self) -> str:
        """What the likelihood is over, in words."""

    @abstractmethod
    def target(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 items -> what the likelihood is over."""

    @abstractmethod
    def log_weights(self, target: torch.Tensor, y: torch.Tensor | None, k: int, *, chunk: int = 1024,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """log p(x, z_i) - log q(z_i | x) for k draws per item, [B, k]."""


class DensityLikelihood(ABC):
    """A continuous density over images (a flow's ODE): 8-bit images are uniformly dequantized, which
    gives a lower bound on their discrete log-likelihood on the same scale as a VAE's (Theis et al. 2016)."""

    @property
    @abstractmethod
    def dims(self) -> int:
        """Values per item (C*H*W), for bits per dimension."""

    @abstractmethod
    def dequantized_log_likelihood(self, x: torch.Tensor, y: torch.Tensor | None, *, steps: int,
                                   generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 images -> log p in nats per image on the 8-bit scale (dequantized with `generator`)."""


class ExactLikelihood(ABC):
    @abstractmethod
    def log_likelihood(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """log p(item) in nats, one value per item of batch['x']."""


class Conditional(ABC):
    """A family that can be built for class labels (`model.conditional`); `num_classes` is 0 when it is not."""

    meta: dict[str, Any]
    cfg: Any

    def conditional_classes(self) -> int:
        """How many labels the model is built for (0 when unconditional); refuses unlabelled data."""
        if not getattr(self.cfg, "conditional", False):
            return 0
        k = int(self.meta.get("num_classes") or 0)
        if not k:
            raise ConfigError("model.conditional is true but the data has no labels",
                              "use labelled data (sub-folders or y) or set model.conditional=false")
        return k

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.get("class_names") or [])

    def resolve_labels(self, labels: Any, n: int) -> torch.Tensor | None:
        """None, an int, a class name, a Mix, or a list of them -> int64 ids [n], or float weights [n, k]
        over the k classes when any item is a Mix (None when unconditional)."""
        if not self.num_classes:
            if labels is not None:
                raise ConfigError(f"{type(self).__name__} was not trained with labels",
                                  "train a conditional recipe (e.g. fashion-cgan) to sample by label")
            return None
        k = len(self.class_names)
        if labels is None:
            return torch.arange(n) % k
        items = labels if isinstance(labels, (list, tuple)) else [labels]
        if not items:
            raise ConfigError("an empty list of labels", f"give one or more of: {', '.join(self.class_names[:10])}"
                              + (", ..." if len(self.class_names) > 10 else ""))
        if not any(isinstance(x, Mix) for x in items):
            ids = [self.label_id(x) for x in items]
            return torch.tensor([ids[i % len(ids)] for i in range(n)], dtype=torch.int64)
        rows = torch.zeros(len(items), k)
        for row, item in zip(rows, items, strict=True):
            for name, weight in (item.weights if isinstance(item, Mix) else [(item, 1.0)]):
                row[self.label_id(name)] += weight
        return rows[torch.arange(n) % len(items)]

    def label_names(self, y: torch.Tensor | None) -> list[str] | None:
        """Each sample's label as a name (a mix: its classes joined by '+', heaviest first)."""
        if y is None:
            return None
        if not y.is_floating_point():
            return [self.class_names[i] for i in y.tolist()]
        names = self.class_names
        return ["+".join(names[i] for i in row.argsort(descending=True).tolist() if row[i] > 0) for row in y]

    def label_id(self, label: Any) -> int:
        names = self.class_names
        if isinstance(label, bool):
            raise ConfigError(f"label {label} is not a class", f"use 0..{len(names) - 1} or a name")
        numeric = isinstance(label, str) and re.fullmatch(r"[+-]?\d+", label.strip()) is not None
        if isinstance(label, int) or (numeric and label not in names):
            i = int(label)  # "-1" is the index -1 (out of range), never the class named "1"
            if not 0 <= i < len(names):
                raise ConfigError(f"label {i} is out of range", f"use 0..{len(names) - 1} or a name")
            return i
        keys = [label_key(s) for s in names]
        key = label_key(str(label))
        if key in keys:
            return keys.index(key)
        raise unknown("label", str(label), names)

    num_classes: int = 0


class SequenceSampler(ABC):
    @abstractmethod
    def generate(self, prefix: list[int], n: int, max_new: int, *, generator: torch.Generator | None = None,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 cache: bool = True) -> torch.Tensor:
        """[n, len(prefix) + up to max_new] token ids."""


def embed_labels(table: torch.nn.Embedding, y: torch.Tensor) -> torch.Tensor:
    """Class ids [n] -> their rows of the embedding table; weights [n, k] -> the weighted sum of the
    table's first k rows (a Mix of classes: every conditional family samples mixes through this)."""
    if y.is_floating_point():  # in float32 with autocast off: one class alone (weight 1, others 0) is its row exactly
        weight = table.weight[:y.shape[1]]
        with torch.autocast(y.device.type, enabled=False):
            return (y.float() @ weight.float()).to(weight.dtype)
    return table(y)


def is_conditional(model: Any) -> bool:
    """A model built for labels (a Conditional family trained with model.conditional)."""
    return isinstance(model, Conditional) and model.num_classes > 0


class Trajectory(ABC):
    @abstractmethod
    def trajectory(self, n: int, *, steps: int | None = None, labels: Any = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """[n, k, C, H, W] in [0, 1]: the noise, then the state after each of the sampler's k - 1 steps."""
