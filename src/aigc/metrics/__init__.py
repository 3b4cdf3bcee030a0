"""Measuring generators offline: quality, diversity, memorization and likelihood, asked of the modality.

`evaluate_run(run_dir, request)` opens a run and hands it to its modality's evaluator;
`evaluate_real(source, request)` gives a dataset's real-data floor; `training_evaluator(cfg, data)`
builds the cheap evaluator the trainer calls every `train.eval_every` steps. Each modality
(aigc.modalities) owns its evaluator and says which optional request fields it honours.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..data.base import Dataset
from ..plugins import MODALITIES
from .image_eval import IMAGE_SECTIONS, Section
from .image_run import DEFAULT_N
from .request import EvalRequest


def evaluate_run(run_dir: str | Path, request: EvalRequest | None = None) -> dict[str, Any]:
    """Evaluate a run directory with the evaluator of its model's modality.

    Image runs give {"kind", "sections": [...], "floor": {...}, ...}; other modalities may give a
    flat dict of scores. Either way "checkpoint" names the checkpoint measured.
    """
    from ..data import load_dataset
    from ..run import load

    request = request or EvalRequest()
    request.check()
    loaded = load(run_dir, request.checkpoint, device=request.device)
    modality = MODALITIES.get(loaded.modality)
    request.refuse_unhonoured(modality.eval_options, f"{loaded.modality} runs")
    data = load_dataset(loaded.config.data)
    result = modality.evaluate(loaded, data, request)
    result = result if "sections" in result else {"checkpoint": loaded.checkpoint.name, **result}
    if loaded.skipped:  # said on stderr by load; recorded so the number is never read as the newest's
        result["skipped_checkpoints"] = loaded.skipped
    return result


def evaluate_samples(path: str | Path, real: str | Dataset, request: EvalRequest | None = None) -> dict[str, Any]:
    """Samples aigc did not make (a folder of images, an npz) against a real data source.

    The same feature network, real images, metrics and floor as `evaluate_run` uses, so samples
    written by `aigc sample --out X.npz` give that run's figures again.
    """
    from ..config import DataConfig
    from ..data import load_dataset

    request = request or EvalRequest()
    request.check()
    data = real if isinstance(real, Dataset) else load_dataset(DataConfig(source=real))
    modality = MODALITIES.get(data.modality)
    request.refuse_unhonoured(modality.eval_options, f"{data.modality} samples")
    return modality.evaluate_samples(Path(path), data, request)


def evaluate_real(source: str | Dataset, request: EvalRequest | None = None) -> dict[str, Any]:
    """The real-data floor of a dataset (training split measured against the test split)."""
    from ..config import DataConfig
    from ..data import load_dataset

    request = request or EvalRequest()
    request.check()
    data = source if isinstance(source, Dataset) else load_dataset(DataConfig(source=source))
    modality = MODALITIES.get(data.modality)
    request.refuse_unhonoured(modality.floor_options, f"{data.modality} data")
    return modality.evaluate_real(data, request)


def training_evaluator(cfg: Any, data: Dataset, echo: Callable[[str], None] = print
                       ) -> Callable[[Any, Dataset], dict[str, float]] | None:
    """The cheap evaluator for the trainer, or None where the data's modality has none."""
    return MODALITIES.get(data.modality).training_evaluator(cfg, data, echo)


__all__ = ["DEFAULT_N", "IMAGE_SECTIONS", "EvalRequest", "Section", "evaluate_real", "evaluate_run", "evaluate_samples",
           "training_evaluator"]
