"""The HTTP service and web page over the Python API (`aigc serve`); needs fastapi and uvicorn."""
from __future__ import annotations

from .app import create_app, load_models

__all__ = ["create_app", "load_models"]
