"""The small protocol between a model family and the trainer (see DESIGN.md)."""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import ConfigError, unknown


class GenerativeModel(nn.Module):
    """A family owns its maths; the trainer owns the loop.

    Subclasses set `modality` and `Config` (a dataclass) and are built as `cls(cfg, meta)`, where
    `meta` holds the JSON-able facts about the data (shape, class names, vocabulary).
    """

    modality: ClassVar[str] = "image"
    Config: ClassVar[type]

    def __init__(self, cfg: Any, meta: dict[str, Any]):
        super().__init__()
        self.cfg = cfg
        self.meta = meta

    def configure_optimizers(self, train: Any) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def training_step(self, batch: dict[str, torch.Tensor], opts: dict[str, torch.optim.Optimizer],
                      step: int) -> dict[str, torch.Tensor]:
        """One update (does its own backward and optimizer steps); returns detached scalars to log."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, *, labels: Any = None, generator: torch.Generator | None = None) -> Any:
        raise NotImplementedError

    def log_likelihood(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no likelihood")

    # ------------------------------------------------------------ shared helpers

    def conditional_classes(self) -> int:
        """How many labels a conditional model is built for (0 when unconditional); refuses unlabelled data."""
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
        """None, an int, a class name, or a list of them -> int64 [n] (None when unconditional)."""
        if not getattr(self.cfg, "conditional", False):
            if labels is not None:
                raise ConfigError(f"{type(self).__name__} was not trained with labels",
                                  "train a conditional recipe (e.g. fashion-cgan) to sample by label")
            return None
        k = len(self.class_names)
        if labels is None:
            return torch.arange(n) % k
        items = labels if isinstance(labels, (list, tuple)) else [labels]
        ids = [self._label_id(x) for x in items]
        return torch.tensor([ids[i % len(ids)] for i in range(n)], dtype=torch.int64)

    def _label_id(self, label: Any) -> int:
        from ..data.images import label_key

        names = self.class_names
        if isinstance(label, int) or (isinstance(label, str) and label.isdigit() and label not in names):
            i = int(label)
            if not 0 <= i < len(names):
                raise ConfigError(f"label {i} is out of range", f"use 0..{len(names) - 1} or a name")
            return i
        keys = [label_key(s) for s in names]
        key = label_key(str(label))
        if key in keys:
            return keys.index(key)
        raise unknown("label", str(label), names)


def build_model(model_section: dict[str, Any], meta: dict[str, Any]) -> GenerativeModel:
    """Config section `{name: ..., **params}` + data facts -> a model (through the registry)."""
    from ..config import model_config
    from ..registry import MODELS

    cls = MODELS.get(str(model_section["name"]))
    return cls(model_config(model_section), meta)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
