"""Which device a model runs on: `train.device` and the `--device` of sample, eval and serve.

`auto` takes an accelerator when there is one (CUDA, then Apple's MPS) and the CPU otherwise.
Families never name a device: the trainer and `aigc.load` move the model, and run its code inside
`on_device(device)`, under which tensors a family creates land on that device. Random numbers drawn
from a CPU `torch.Generator` (every seeded sample) are drawn on the CPU and then moved, so a seed gives
the same noise on every device. Checkpoints are always written from CPU copies (device-independent).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from .errors import ConfigError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,3})?)$")


def check_device_name(name: str, what: str = "train.device") -> None:
    if not isinstance(name, str) or not _PATTERN.match(name):
        raise ConfigError(f"{what} is '{name}'", f"use {DEVICE_CHOICES}")


def resolve_device(name: str | None, local_rank: int = 0, what: str = "train.device") -> torch.device:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' | 'mps' -> a torch.device this machine has (ConfigError if not).

    Under several processes on one machine, 'auto' and 'cuda' give process k the k-th GPU.
    """
    name = name or "auto"
    check_device_name(name, what)
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif torch.backends.mps.is_available():
            name = "mps"
        else:
            return torch.device("cpu")
    if name.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(name.split(":")[1]) if ":" in name else local_rank
        if count == 0:
            raise ConfigError(f"{what} is '{name}' but this machine has no usable CUDA GPU",
                              "use auto or cpu (auto takes a GPU when there is one)")
        if index >= count:
            raise ConfigError(f"{what} asks for GPU {index} but this machine has {count}",
                              f"use cuda:0 to cuda:{count - 1}, or one process per GPU")
        return torch.device("cuda", index)
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{what} is 'mps' but this machine has no usable Apple GPU", "use auto or cpu")
    return torch.device(name)


class on_device(TorchFunctionMode):
    """Inside it, tensors created without a device land on `device` (like `with torch.device(...)`),
    except that random draws from a CPU generator are made on the CPU and then moved: the same seed
    gives the same noise on every device. On the CPU it changes nothing and costs nothing."""

    def __init__(self, device: torch.device | str):
        super().__init__()
        self.device = torch.device(device)
        from torch.utils._device import _device_constructors

        self._constructors = _device_constructors()

    def __enter__(self):
        if self.device.type == "cpu":
            return self
        return super().__enter__()

    def __exit__(self, *exc):
        if self.device.type == "cpu":
            return None
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self._constructors and kwargs.get("device") is None:
            gen = kwargs.get("generator")
            if gen is not None and gen.device.type == "cpu":
                return func(*args, **{**kwargs, "device": "cpu"}).to(self.device)
            kwargs = {**kwargs, "device": self.device}
        return func(*args, **kwargs)


def to_cpu(value: Any) -> Any:
    """Samples as the rest of the toolkit expects them: tensors (also inside lists, tuples, dicts and
    dataclasses such as audio clips) on the CPU."""
    if torch.is_tensor(value):
        return value.cpu()
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and any(torch.is_tensor(v) for v in value):
        return type(value)(to_cpu(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: to_cpu(getattr(value, f.name)) for f in dataclasses.fields(value)
                   if f.init and torch.is_tensor(getattr(value, f.name))}
        return dataclasses.replace(value, **changes) if changes else value
    return value
