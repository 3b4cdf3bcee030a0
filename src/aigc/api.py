"""The Python API: `aigc.load(run_dir)` gives a trained model ready to sample (see aigc.run)."""
from __future__ import annotations

from .run import Loaded, load

__all__ = ["Loaded", "load"]
