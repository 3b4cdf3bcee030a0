"""aigc: train generative models on your own data on a CPU, measure them honestly, use them."""
from __future__ import annotations

from .api import load
from .config import Config, load_config
from .errors import UserError

__version__ = "0.1.0"
__all__ = ["Config", "UserError", "load", "load_config", "__version__"]
