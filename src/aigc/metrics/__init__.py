"""Measuring runs: one evaluator per modality (`EVALUATORS`), used by `aigc eval`."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .text import evaluate_text_run

EVALUATORS: dict[str, Callable[..., dict[str, Any]]] = {"text": evaluate_text_run}

__all__ = ["EVALUATORS", "evaluate_text_run"]
