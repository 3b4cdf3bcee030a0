"""Datasets: decoded once into compact in-memory tensors, batched by index slicing."""
from . import images, prepare  # noqa: F401  (register the image and prepared sources)
from .base import Dataset, cache_dir, load_dataset

__all__ = ["Dataset", "cache_dir", "load_dataset"]
