"""Model families; importing this module registers them all."""
from . import diffusion, gan, music, rnn, specgan, transformer, vae, video  # noqa: F401
from .base import GenerativeModel, SampleOptions

__all__ = ["GenerativeModel", "SampleOptions"]
