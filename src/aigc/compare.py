"""`aigc compare`: runs and sample files measured on one evaluator, in one table and one picture.

    aigc compare runs/a runs/b theirs.npz [--real SOURCE] [--n 10000] [--metrics fid,prdc] [--out DIR]

Every item meets the same real images (the runs' own data, or --real), the same feature network,
the same n and the same seed, so the rows can be read against each other; the real-data floor
is the last row. Writes DIR/compare.json, compare.md and, for images, compare.png (a grid of
samples per item, side by side).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .files import atomic_write, atomic_write_text

GRID = 36  # samples per item in compare.png


def _flat(result: dict[str, Any]) -> dict[str, float]:
    """The headline numbers of an evaluation: image sections' values, or a text result's scores."""
    if "sections" in result:
        return {k: v for s in result["sections"] for k, v in s["values"].items()
                if "/" not in k and isinstance(v, (int, float))}
    return {k: v for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _intervals(result: dict[str, Any]) -> dict[str, list[float]]:
    """The 95% intervals an evaluation gave, by value name."""
    return {k: v for s in result.get("sections", []) for k, v in (s.get("intervals") or {}).items()}


def _row(item: str, kind: str, result: dict[str, Any]) -> dict[str, Any]:
    return {"item": item, "kind": kind, "n": result.get("n", result.get("samples")), "n_real": result.get("n_real"),
            "values": _flat(result), "intervals": _intervals(result)}


def resolve(items: list[str], real: str | None) -> tuple[list[tuple[str, Path]], Any]:
    """(kind, path) per item and the one Dataset they are all measured against."""
    from .config import DataConfig
    from .data import load_dataset
    from .run import read_run_config

    if len(items) < 2:
        raise ConfigError(f"compare needs two or more runs or sample files, got {len(items)}",
                          "e.g. aigc compare runs/a runs/b")
    entries, configs = [], {}
    for item in items:
        p = Path(item)
        if (p / "config.yaml").is_file():
            entries.append(("run", p))
            data = dataclasses.asdict(read_run_config(p).data)
            data.pop("descriptions", None)  # what prompts match to, not what the model saw
            configs[item] = data
        elif p.exists():
            entries.append(("samples", p))
        else:
            raise ConfigError(f"{item} is neither a run directory nor a samples file or folder", "check the path")
    wanted = {json.dumps(c, sort_keys=True) for c in configs.values()}
    if len(wanted) > 1:
        raise ConfigError(f"the runs were trained on different data ({', '.join(sorted(configs))})",
                          "compare runs of one dataset, so they meet the same real images")
    if real is not None:
        cfg = DataConfig(source=real)
        cfg.check()
        real_cfg = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "descriptions"}
        for item, c in configs.items():
            if c != real_cfg:
                raise ConfigError(f"{item} was trained on {c['source']} (as configured), not on --real {real}",
                                  "leave --real out to use the runs' own data")
    elif configs:
        cfg = DataConfig(**json.loads(next(iter(wanted))))
    else:
        raise ConfigError("sample files alone do not say what real data to compare with", "add --real SOURCE")
    return entries, load_dataset(cfg)


def compare(items: list[str], request: Any, out: Path, real: str | None = None,
            echo: Callable[[str], None] = print) -> dict[str, Any]:
    from .metrics import evaluate_real, evaluate_run, evaluate_samples
    from .modalities.base import Modality
    from .plugins import MODALITIES

    entries, data = resolve(items, real)
    each = dataclasses.replace(request, floor=False, out_dir=None)  # the floor once, at the end
    rows = []
    for kind, path in entries:
        echo(f"measuring {path}")
        result = evaluate_run(path, each) if kind == "run" else evaluate_samples(path, data, each)
        rows.append(_row(str(path), kind, result))
    floor = None
    modality = MODALITIES.get(data.modality)
    if request.floor and type(modality).evaluate_real is not Modality.evaluate_real:  # it has a floor
        real_request = dataclasses.replace(each, floor=True)  # the floor's own request: its default
        floor = _row("real floor (training vs test data)", "real", evaluate_real(data, real_request))
    table = {"data": data.meta.get("source", data.name), "n": request.n, "seed": request.seed,
             "rows": rows, "floor": floor, "picture": str(out / "compare.png") if modality.grids else None}
    atomic_write_text(out / "compare.json", json.dumps(table, indent=1) + "\n")
    atomic_write_text(out / "compare.md", markdown(table) + "\n")
    if modality.grids:
        picture(entries, data, request.seed, out / "compare.png")
    return table


def _columns(table: dict[str, Any]) -> list[str]:
    cols: list[str] = []
    for r in table["rows"] + ([table["floor"]] if table["floor"] else []):
        cols += [k for k in r["values"] if k not in cols]
    return cols


def _num(v: Any, interval: list[float] | None = None) -> str:
    text = "—" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
    return text + (f" [{interval[0]:.3g}, {interval[1]:.3g}]" if interval and v is not None else "")


def _cells(r: dict[str, Any], cols: list[str]) -> list[str]:
    n = f"{r['n']:,} vs {r['n_real']:,}" if isinstance(r.get("n"), int) and r.get("n_real") else _num(r.get("n"))
    return [r["item"], n, *(_num(r["values"].get(c), (r.get("intervals") or {}).get(c)) for c in cols)]


def markdown(table: dict[str, Any]) -> str:
    cols = _columns(table)
    lines = [f"Measured against {table['data']}'s held-out images; n = {table['n'] or 'the standard'} per item, "
             f"seed {table['seed']}. Brackets: 95% intervals from half-samples of both sides.", "",
             "| item | n (items vs real) | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for r in table["rows"] + ([table["floor"]] if table["floor"] else []):
        lines.append("| " + " | ".join(_cells(r, cols)) + " |")
    return "\n".join(lines)


def text_table(table: dict[str, Any]) -> str:
    cols = _columns(table)
    body = [_cells(r, cols) for r in table["rows"] + ([table["floor"]] if table["floor"] else [])]
    head = ["item", "n", *cols]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in [head, *body])


def picture(entries: list[tuple[str, Path]], data: Any, seed: int, path: Path) -> Path:
    """One grid of GRID samples per item, side by side, each titled with its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from torchvision.utils import make_grid

    from .metrics.image_run import read_image_samples
    from .pixels import quantize
    from .run import load

    fig, axes = plt.subplots(1, len(entries), figsize=(3 * len(entries), 3.3), dpi=100, squeeze=False)
    for ax, (kind, p) in zip(axes[0], entries, strict=True):
        if kind == "run":
            images = quantize(load(p).sample(GRID, seed=seed))
        else:
            images = read_image_samples(p, data, None, echo=lambda _m: None)[:GRID]
        grid = make_grid(images, nrow=6, padding=1, pad_value=255)
        ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray" if grid.shape[0] == 1 else None, vmin=0, vmax=255)
        ax.set_title(p.name, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    try:
        return atomic_write(path, lambda f: fig.savefig(f, format="png"))
    finally:
        plt.close(fig)
