"""The run's card: loss curves and report.md, written from metrics.jsonl and the run's facts."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from ..files import atomic_write_text
from ..models.base import GenerativeModel, count_ema_parameters, count_parameters


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


def parameter_facts(model: nn.Module) -> dict[str, str | None]:
    """The model's own trainable parameter count, and its EMA copies' on a line of their own."""
    ema = count_ema_parameters(model)
    nets = ", ".join(model.ema_modules()) if isinstance(model, GenerativeModel) else ""
    return {"parameters": f"{count_parameters(model):,} (trainable)",
            "EMA copy parameters": f"{ema:,} (moving average of {nets}, not counted above)" if ema else None}


def recipe_data(name: str) -> tuple[str, str] | None:
    """(data source, description) of the recipe called `name`; None when no recipe is."""
    from ..config import DataConfig, recipe_names, recipe_text, safe_yaml

    if name not in recipe_names():
        return None
    raw = safe_yaml(recipe_text(name)) or {}  # the shipped recipe, never a file of that name here
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    return str(data.get("source") or DataConfig.source), str(raw.get("description") or "").strip()


def title_and_description(name: str, description: str, source: str | None) -> tuple[str, str]:
    """The report's title names the data the run trained on; a recipe's own description, written
    for the recipe's data, is not repeated as if it were about other data (`--set data.source=`)."""
    title = f"# Run `{name}`" + (f" on `{source}`" if source else "")
    recipe = recipe_data(name) if source else None
    if recipe is None or recipe[0] == source or description.strip() != recipe[1]:
        return title, description  # the recipe's own data, or a description the user wrote
    return title, (f"`{name}` trained on `{source}`. The recipe was written for `{recipe[0]}`; "
                   f"its description there (about that data, not this run's): {recipe[1]}")


def write_report(run_dir: Path, facts: dict[str, Any], samples: list[str] | None = None) -> Path:
    """report.md: the facts in their order (data, model, steps, time...), last losses, samples, curves.

    `samples` are the markdown lines the run's modality writes to show its samples. The title names
    `facts['data']`, and a recipe's description is kept only for the data it was written for.
    """
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    last = {k: v for r in rows[-5:] for k, v in r.items() if k not in ("step", "time")}
    title, description = title_and_description(str(facts["name"]), str(facts.get("description") or ""),
                                               facts.get("data"))
    lines = [title, "", description, "", "| what | value |", "|---|---|"]
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
