"""Kinds of content (image, text, audio, video): each a registered aigc.modalities.base.Modality."""
from . import audio, image, music, text, video  # noqa: F401  (register the built-in modalities)
from .base import Modality, register

__all__ = ["Modality", "register"]
