"""Name -> object tables filled by decorators, so no code branches on a family or modality name.

This module imports nothing of aigc's: the tables themselves, and the loading of the built-in and
third-party entries that fill them, live in aigc.plugins.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def _lookup_error(kind: str, name: str, choices: Iterable[str]) -> Exception:
    return LookupError(f"unknown {kind} '{name}' (known: {', '.join(sorted(choices))})")


class Registry:
    """A named table; `@REG.register("name", **facts)` adds an entry (facts are read with `info`).

    `missing(kind, name, choices)` builds the error for an unknown name; `load()` is called before
    every lookup so that lazily imported entries are in place (it must be cheap after its first call).
    """

    def __init__(self, kind: str, *, missing: Callable[[str, str, Iterable[str]], Exception] = _lookup_error,
                 load: Callable[[], None] | None = None):
        self.kind = kind
        self._items: dict[str, Any] = {}
        self._info: dict[str, dict[str, Any]] = {}
        self._missing = missing
        self._load = load

    def register(self, name: str, **info: Any) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._items[name] = obj
            self._info[name] = dict(info)
            return obj

        return add

    def unregister(self, name: str) -> None:
        """Remove an entry (a plug-in's tests clean up after themselves with it)."""
        self._items.pop(name, None)
        self._info.pop(name, None)

    def _ready(self) -> None:
        if self._load is not None:
            self._load()

    def get(self, name: str) -> Any:
        self._ready()
        if name not in self._items:
            raise self._missing(self.kind, name, self._items)
        return self._items[name]

    def info(self, name: str) -> dict[str, Any]:
        """The facts given at registration (e.g. a data source's modality)."""
        self.get(name)
        return dict(self._info[name])

    def names(self) -> list[str]:
        self._ready()
        return sorted(self._items)

    def items(self) -> list[tuple[str, Any]]:
        """(name, entry) pairs in registration order."""
        self._ready()
        return list(self._items.items())

    def __contains__(self, name: str) -> bool:
        self._ready()
        return name in self._items
