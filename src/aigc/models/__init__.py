"""Model families; importing this module registers them all."""
from . import gan, rnn, transformer, vae  # noqa: F401
from .base import GenerativeModel, build_model

__all__ = ["GenerativeModel", "build_model"]
