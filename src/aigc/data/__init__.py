"""Datasets: decoded once into compact in-memory tensors, batched by index slicing."""
from . import audio, images, music, prepare, text, video  # noqa: F401  (register the built-in sources)
from .base import Dataset, cache_dir, load_dataset

__all__ = ["Dataset", "cache_dir", "load_dataset"]
