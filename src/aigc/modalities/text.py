"""Text: int64 token rows as data, lists of strings as samples, saved one sample a line."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..files import atomic_write_text
from ..limits import MAX_TEXT_SAMPLES
from .base import Modality, register

TEXT_EVAL_N = 1000  # samples for novelty, distinct-n and the length gap


@register
class TextModality(Modality):
    name = "text"
    formats = ("txt",)
    prints = True
    web_formats = {"json": "application/json", "txt": "text/plain; charset=utf-8"}

    def save(self, samples: list[str], path: Path, fmt: str | None = None, **layout: Any) -> Path:
        self.format_for(Path(path), fmt)
        return atomic_write_text(Path(path).with_suffix(".txt"), self.to_text(samples) + "\n")

    def encode(self, samples: list[str], fmt: str, **layout: Any) -> bytes:
        if fmt != "txt":
            return super().encode(samples, fmt)
        return (self.to_text(samples) + "\n").encode("utf-8")

    def to_json(self, samples: list[str]) -> list[str]:
        return [str(s) for s in samples]

    def sample_limit(self, meta: dict[str, Any], fmt: str | None = None) -> int:
        return MAX_TEXT_SAMPLES

    def to_text(self, samples: list[str]) -> str:
        return "\n".join(str(s) for s in samples)

    def log_samples(self, tb: Any, samples: list[str], step: int) -> None:
        tb.add_text("samples", "\n\n".join(samples[:16]), step)

    def report_samples(self, run_dir: Path, path: Path) -> list[str]:
        from ..vocab import escape_controls

        # samples.txt keeps control characters raw; report.md shows them escaped (read as bytes: a CR stays a CR)
        shown = escape_controls(path.read_bytes().decode("utf-8", errors="replace")[:2000])
        fence = "`" * max(3, 1 + max((len(r) for r in re.findall("`+", shown)), default=0))
        body = shown if shown.endswith("\n") else shown + "\n"
        return ["## Samples", "", f"{fence}\n{body}{fence}"]

    def evaluate(self, loaded: Any, data: Any, request: Any) -> dict[str, Any]:
        from ..errors import ConfigError
        from ..metrics.text import evaluate_text_run
        from ..models.capabilities import ExactLikelihood

        if not isinstance(loaded.model, ExactLikelihood):
            raise ConfigError(f"{loaded.what} have no exact likelihood for the text metrics",
                              "the family must declare aigc.models.capabilities.ExactLikelihood")
        return evaluate_text_run(loaded, data, request.n_or(TEXT_EVAL_N), seed=request.seed, split=request.split)

    def evaluate_samples(self, path: Path, data: Any, request: Any) -> dict[str, Any]:
        from ..metrics.text import evaluate_text_samples

        return evaluate_text_samples(path, data, request.n, split=request.split)

    def audit_summary(self, report: dict[str, Any]) -> list[str]:
        from ..data.audit_report import summary

        return summary(report)

    def audit(self, cfg: Any, out: Path, near: float) -> dict[str, Any]:
        from ..data.audit_report import run_text_audit

        return run_text_audit(cfg, out, near)
