"""A modality: everything specific to one kind of content, asked by the trainer, the CLI and the report.

Subclass `Modality`, register an instance with `@register` (or `MODALITIES.register(name)(obj)`),
and a family whose `modality` names it trains, samples, saves, evaluates and reports through it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from ..errors import ConfigError
from ..limits import MAX_SAMPLES

MAX_IN_MEMORY = 100_000  # samples one call holds by default (a modality may say otherwise)


class Modality:
    """Defaults for everything optional: a modality must at least save its samples."""

    name: ClassVar[str]
    formats: ClassVar[tuple[str, ...]] = ()       # file formats `aigc sample --format` takes; the first is the default
    prints: ClassVar[bool] = False                # `aigc sample` without --out prints the samples instead of a file
    grids: ClassVar[bool] = False                 # samples save as picture grids (save(..., "png", nrow=)): explore draws
    stream_formats: ClassVar[tuple[str, ...]] = ()  # formats `save_stream` writes chunk by chunk (large n)
    web_formats: ClassVar[dict[str, str]] = {}    # format -> media type `aigc serve` answers with; the first is its default
    eval_options: ClassVar[frozenset[str]] = frozenset()   # optional EvalRequest fields its evaluator honours
    floor_options: ClassVar[frozenset[str]] = frozenset()  # ... and its real-data floor

    # ------------------------------------------------------------ files

    def save(self, samples: Any, path: Path, fmt: str | None = None, **layout: Any) -> Path:
        """Write samples to `path` (its suffix replaced by the format's); returns the path written."""
        raise NotImplementedError

    def format_for(self, path: Path | None, fmt: str | None) -> str:
        """The format asked for (the flag, else the file's suffix when it is one, else the default)."""
        if not self.formats:
            raise ConfigError(f"the {self.name} modality names no file format", "its author must set `formats`")
        if fmt is not None:
            if fmt not in self.formats:
                raise ConfigError(f"--format {fmt} does not fit a {self.name} run", f"use {' or '.join(self.formats)}")
            return fmt
        suffix = path.suffix.lstrip(".").lower() if path is not None else ""
        return suffix if suffix in self.formats else self.formats[0]

    def sample_limit(self, meta: dict[str, Any], fmt: str | None = None) -> int:
        """The most samples held in memory at once (or written in format `fmt`)."""
        return MAX_SAMPLES if fmt in self.stream_formats else MAX_IN_MEMORY

    def save_stream(self, chunks: Iterable[Any], n: int, meta: dict[str, Any], path: Path, fmt: str) -> Path:
        """Write n samples arriving in chunks without holding them all (formats in stream_formats)."""
        raise NotImplementedError

    def encode(self, samples: Any, fmt: str, **layout: Any) -> bytes:
        """Samples as the bytes of one web format (`web_formats`) other than json, for `aigc serve`."""
        raise ConfigError(f"the {self.name} modality cannot encode {fmt}", f"ask for {' or '.join(self.web_formats)}")

    def to_json(self, samples: Any) -> list[Any]:
        """Samples as JSON values, one per sample (e.g. data: URLs of pictures), for `aigc serve`."""
        raise ConfigError(f"the {self.name} modality has no JSON form", "its author must define to_json")

    def to_text(self, samples: Any) -> str:
        """Samples as text for the terminal (modalities that print)."""
        raise NotImplementedError

    # ------------------------------------------------------------ training

    def log_samples(self, tb: Any, samples: Any, step: int) -> None:
        """Show progress samples in TensorBoard (nothing by default)."""

    def report_samples(self, run_dir: Path, path: Path) -> list[str]:
        """Markdown lines that show the final samples (written to `path`) in report.md."""
        rel = path.relative_to(run_dir) if path.is_relative_to(run_dir) else path
        return ["## Samples", "", f"[{rel.name}]({rel.as_posix()})"]

    # ------------------------------------------------------------ measuring

    def evaluate(self, loaded: Any, data: Any, request: Any) -> dict[str, Any]:
        raise ConfigError(f"no evaluation for {self.name} runs yet", "the modality defines none")

    def evaluate_real(self, data: Any, request: Any) -> dict[str, Any]:
        raise ConfigError(f"no real-data floor for {self.name} data yet", "the modality defines none")

    def evaluate_samples(self, path: Path, data: Any, request: Any) -> dict[str, Any]:
        """Samples made elsewhere (files at `path`) measured against `data` as a run's would be."""
        raise ConfigError(f"samples of {self.name} data cannot be evaluated from files yet",
                          "evaluate a run directory instead")

    def training_evaluator(self, cfg: Any, data: Any, echo: Callable[[str], None]
                           ) -> Callable[[Any, Any], dict[str, float]] | None:
        """A cheap evaluator for train.eval_every (first key: lower is better), or None."""
        return None

    def audit(self, cfg: Any, out: Path, near: float) -> dict[str, Any]:
        raise ConfigError(f"no audit for {self.name} data yet", "the modality defines none")

    def audit_summary(self, report: dict[str, Any]) -> list[str]:
        """A few lines for the terminal about an audit report."""
        return [f"{report.get('source', 'data')}: audited"]


def register(cls: type[Modality]) -> type[Modality]:
    """Class decorator: register one instance of a Modality subclass under its `name`."""
    from ..plugins import MODALITIES

    MODALITIES.register(cls.name)(cls())
    return cls
