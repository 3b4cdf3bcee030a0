"""The run's card: loss curves and report.md, written from metrics.jsonl and the run's facts."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..files import atomic_write_text


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a kill is skipped, not fatal
    return rows


def plot_curves(run_dir: Path, extra: tuple[str, ...] = ()) -> Path | None:
    """curves.png: every logged loss, the keys the family names (`extra`) and the primary score of
    in-training evaluations (rows that carry "eval": its name), against the step."""
    rows = read_metrics(run_dir)
    scores = {r["eval"] for r in rows if isinstance(r.get("eval"), str)}
    keys = sorted({k for r in rows for k in r if k.endswith("loss") or k in extra or k in scores})
    if not rows or not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        pts = [(r["step"], r[key]) for r in rows if key in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts])
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(run_dir) / "curves.png"
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def write_report(run_dir: Path, facts: dict[str, Any], samples: list[str] | None = None) -> Path:
    """report.md: the facts in their order (data, model, steps, time...), last losses, samples, curves.

    `samples` are the markdown lines the run's modality writes to show its samples.
    """
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    last = {k: v for r in rows[-5:] for k, v in r.items() if k not in ("step", "time")}
    lines = [f"# Run `{facts['name']}`", "", facts.get("description", ""), "",
             "| what | value |", "|---|---|"]
    for key, value in facts.items():
        if key not in ("name", "description", "sections") and value not in (None, "", []):
            lines.append(f"| {key} | {value} |")
    if last:
        lines += ["", "Last logged values: " + ", ".join(f"{k} = {v:.4g}" for k, v in sorted(last.items())
                                                       if isinstance(v, (int, float)))]
    if samples:
        lines += ["", *samples]
    if (run_dir / "curves.png").is_file():
        lines += ["", "## Training curves", "", "![curves.png](curves.png)"]
    extra = facts.get("sections") or []
    lines += [line for section in extra for line in ("", section)]
    return atomic_write_text(run_dir / "report.md", "\n".join(lines) + "\n")
