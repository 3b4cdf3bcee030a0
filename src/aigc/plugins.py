"""The tables of what aigc knows (modalities, model families, data sources, GAN losses, token codecs), and where
their entries come from: aigc's own modules and the entry points of installed packages.

A package of your own adds a family, a modality or a data source by naming a module in one of
the entry-point groups below (pyproject.toml):

    [project.entry-points."aigc.families"]
    my-flow = "my_package.flow"        # importing it runs its @MODELS.register("my-flow")

Importing the named object imports its module, whose decorators fill the tables. A plug-in that
fails to import is reported on stderr in one line and left out; the rest of aigc keeps working.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from importlib import metadata

from .errors import ConfigError, unknown
from .registry import Registry

GROUPS = ("aigc.modalities", "aigc.data_sources", "aigc.families")


def missing(kind: str, name: str, choices: Iterable[str]) -> Exception:
    """The one-line error for an unknown name, with the closest spelling."""
    return unknown(kind, name, choices, ConfigError)


def load_plugins() -> None:
    """Import the built-in modules (once) and every entry point not loaded yet.

    Thread-safe: a second thread waits for the first to finish filling the tables (the same
    thread re-entering, as the imports below do, returns at once). A failed import is raised
    again at the next lookup instead of leaving half-filled tables behind.
    """
    global _builtins
    if _builtins:
        return
    with _lock:
        if _builtins or _loading.get("thread") == threading.get_ident():
            return
        _loading["thread"] = threading.get_ident()
        try:
            from . import data, modalities, models  # noqa: F401
            load_entry_points()
            _builtins = True
        finally:
            _loading.clear()


def load_entry_points() -> list[str]:
    """Load the entry points of GROUPS not loaded before; returns the names loaded now.

    Called once with the built-ins, and again by anyone who installed a package since.
    """
    done = []
    for group in GROUPS:
        for ep in metadata.entry_points(group=group):
            key = (group, ep.name, ep.value)
            if key in _entry_points:
                continue
            _entry_points.add(key)
            try:
                ep.load()
            except Exception as e:  # a broken plug-in must not break aigc: say it and go on
                print(f"warning: plug-in '{ep.name}' ({group} = {ep.value}) could not be loaded: "
                      f"{type(e).__name__}: {e}", file=sys.stderr)
                continue
            done.append(ep.name)
    return done


_builtins = False
_lock = threading.RLock()
_loading: dict[str, int] = {}
_entry_points: set[tuple[str, str, str]] = set()


def table(kind: str) -> Registry:
    """A registry with aigc's one-line errors that loads the built-ins and plug-ins before lookups."""
    return Registry(kind, missing=missing, load=load_plugins)


MODALITIES = table("modality")        # name -> Modality instance (aigc.modalities)
MODELS = table("model")               # name -> GenerativeModel subclass
DATA_SOURCES = table("data source")   # prefix -> loader(cfg, arg) -> Dataset; info: modality
GAN_LOSSES = table("GAN loss")        # name -> GANLoss subclass
CODECS = table("token codec")         # name -> TokenCodec subclass: what a sequence family's tokens stand for
