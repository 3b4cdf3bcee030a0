"""The small protocol between a model family and the trainer (see docs/ARCHITECTURE.md)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..errors import ConfigError, closest
from ..pixels import from_signed, to_signed


@dataclass
class SampleOptions:
    """A family's sample options (subclass it); `aigc.load(run).sample(...)`, the CLI and the service
    validate a caller's options against it once, so each says the same thing about a bad one."""

    def check(self) -> None:
        """Refuse impossible values (ConfigError); types are checked before this is called."""


@dataclass
class NoSampleOptions(SampleOptions):
    pass


class GenerativeModel(nn.Module):
    """A family owns its maths; the trainer owns the loop.

    Subclasses set `modality` (a registered modality's name), `Config` (a dataclass of the model
    section) and `SampleOptions`, and are built as `cls(cfg, meta)`, where `meta` holds the
    JSON-able facts about the data (shape, class names, vocabulary). Optional abilities are
    declared by inheriting the classes in aigc.models.capabilities.
    """

    modality: ClassVar[str] = "image"
    Config: ClassVar[type]
    SampleOptions: ClassVar[type[SampleOptions]] = NoSampleOptions
    curves: ClassVar[tuple[str, ...]] = ()        # logged keys besides *loss that curves.png plots
    train_defaults: ClassVar[dict[str, Any]] = {}  # train.* values this family uses unless the config sets them
    preview_n: ClassVar[int] = 64                 # samples drawn for each progress sample and the final one

    @classmethod
    def makes(cls, meta: dict[str, Any]) -> str:
        """The modality this family makes from data with these facts (its own, unless a family serves
        several: a sequence family makes what its data's token codec says)."""
        return cls.modality

    def __init__(self, cfg: Any, meta: dict[str, Any]):
        super().__init__()
        self.cfg = cfg
        self.meta = meta

    def configure_optimizers(self, train: Any) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def training_step(self, batch: dict[str, torch.Tensor], opts: dict[str, torch.optim.Optimizer],
                      step: int) -> dict[str, torch.Tensor]:
        """One update (does its own backward and optimizer steps); returns detached scalars to log.

        Learning-rate schedules, gradient clipping, EMA and autocast are the trainer's: it applies
        them around each `opt.step()` this calls, for every family alike.
        """
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, **options: Any) -> Any:
        """n samples in the modality's in-memory form; options are the fields of `SampleOptions`.

        Must not change the module's train/eval mode (callers set it once), so that several threads
        can sample from one model at the same time.
        """
        raise NotImplementedError

    def ema_modules(self) -> dict[str, float]:
        """{attribute: decay} of the networks the trainer keeps an exponential moving average of."""
        return {}

    def averaged(self, name: str) -> nn.Module:
        """The EMA copy of network `name` when the run keeps one, else the network itself."""
        ema = self._modules.get(ema_key(name))
        return ema.shadow if ema is not None else getattr(self, name)

    def describe(self) -> dict[str, Any]:
        """Family facts for the run report (e.g. a GAN's loss)."""
        return {}

    def sample_hints(self) -> dict[str, dict[str, Any]]:
        """What a form needs about sample options beyond their dataclass: {option: {"default": value this
        model uses when it is left out, "choices": [...]}} (e.g. a diffusion model's samplers)."""
        return {}


class PictureNets:
    """What a family whose networks work on images [C, H, W] in [-1, 1] (GANs, the U-Net families)
    does with its data by default. A family over other data (aigc.models.specgan: spectrograms of
    clips) overrides these three: how the data's shape and a batch's `x` become pictures, and how a
    finished picture becomes a sample."""

    def net_shape(self, meta: dict[str, Any]) -> list[int]:
        """[C, H, W] of the pictures the networks draw and see."""
        return list(meta["shape"])

    def real(self, x: torch.Tensor) -> torch.Tensor:
        """A training batch's `x` as the networks see it."""
        return to_signed(x)

    def output(self, x: torch.Tensor) -> torch.Tensor:
        """A finished picture in [-1, 1] as a sample (images in [0, 1])."""
        return from_signed(x)


def ema_key(name: str) -> str:
    """Where the EMA copy of network `name` lives in the model (and in its checkpoint keys)."""
    return f"{name.lower()}_ema"


def parse_sample_options(cls: type[SampleOptions], options: dict[str, Any], what: str) -> SampleOptions:
    """Options given by name -> the family's dataclass, or one ConfigError naming the option and the fix."""
    from ..config import coerce_value

    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _hints(cls)
    for key in options:
        if key not in fields:
            guess = closest(str(key), fields)
            hint = (f"did you mean '{guess}'?" if guess else
                    f"its options: {', '.join(fields)}" if fields else "it takes no options")
            raise ConfigError(f"sample option '{key}' does not apply to {what}", hint)
    kwargs = {k: coerce_value(v, hints[k], f"sample option '{k}'") for k, v in options.items()}
    opts = cls(**kwargs)
    opts.check()
    return opts


def _hints(cls: type) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(cls)


def ema_copies(module: nn.Module) -> list[nn.Module]:
    """The EMA copies the trainer attached to a model (train/ema.py), none for a plain module."""
    if not isinstance(module, GenerativeModel):
        return []
    found = (module._modules.get(ema_key(name)) for name in module.ema_modules())
    return [m for m in found if m is not None]


def count_parameters(module: nn.Module) -> int:
    """The model's own trainable parameters: its EMA copies (averages, never trained) are left out
    and counted by `count_ema_parameters`."""
    averaged = {id(p) for m in ema_copies(module) for p in m.parameters()}
    return sum(p.numel() for p in module.parameters() if p.requires_grad and id(p) not in averaged)


def count_ema_parameters(module: nn.Module) -> int:
    """Parameters of the model's EMA copies (0 when it keeps none)."""
    return sum(p.numel() for m in ema_copies(module) for p in m.parameters())
