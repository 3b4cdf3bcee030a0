"""Name -> builder tables, filled by decorators, so no code branches on a family name."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .errors import ConfigError, unknown

T = TypeVar("T")


class Registry:
    """A named table of builders; `@REG.register("name")` adds one."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> Any:
        _load_builtins()
        if name not in self._items:
            raise unknown(self.kind, name, self._items, ConfigError)
        return self._items[name]

    def names(self) -> list[str]:
        _load_builtins()
        return sorted(self._items)

    def items(self) -> list[tuple[str, Any]]:
        """(name, builder) pairs in registration order."""
        _load_builtins()
        return list(self._items.items())

    def __contains__(self, name: str) -> bool:
        _load_builtins()
        return name in self._items


MODELS = Registry("model")          # name -> GenerativeModel subclass
GAN_LOSSES = Registry("GAN loss")   # name -> GANLoss subclass
DATA_SOURCES = Registry("data source")  # prefix -> loader(cfg, arg) -> Dataset

_loaded = False


def _load_builtins() -> None:
    """Import the modules whose decorators fill the tables (once, lazily)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from . import data, models  # noqa: F401
