"""A recipe against the pytorch/examples-style DCGAN, on aigc's evaluator, over seeds and training time.

    python -m benchmarks.versus [--recipe fashion-dcgan] [--set KEY=VALUE ...] [--seeds 0,1,2]
                                [--marks 1000,2000,3000] [--n 10000] [--workdir runs/bench-versus]
                                [--only recipe|reference] [--out benchmarks/results/versus.md]

For each seed, the reference (benchmarks/reference/dcgan_tutorial.py, nets="examples", batch 64)
trains in this process and `aigc train RECIPE --set seed=S` in a child process; at each step in
--marks both are sampled (n images; the reference's generator in eval mode, as a user reloading it
would) and measured by the same code `aigc eval` runs: FID, precision, recall, density, coverage
against the first n test images, features of the shipped Fashion-MNIST classifier. Training
minutes count training steps only (the reference's loop timed around its steps; aigc's from
the checkpoint's recorded step time), so evaluation never counts as training.

Writes --out (.md) and its .json: one row per side, seed and mark, a table of means over seeds at
each mark, and benchmarks/results/<out stem>.png (FID and recall against training minutes).
Runs stay in --workdir; a side's rows already in the .json with the same settings are reused
(delete the .json to measure again).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
METRICS = ["fid", "prdc"]
KEYS = ["fid", "precision", "recall", "density", "coverage"]


def _values(result: dict[str, Any]) -> dict[str, float]:
    return {k: v for s in result["sections"] for k, v in s["values"].items() if k in KEYS}


def _request(n: int):
    from aigc.metrics.request import EvalRequest

    return EvalRequest(n=n, metrics=METRICS, floor=False, seed=0, intervals=0, echo=lambda _m: None)  # spread: over seeds


def reference_rows(seed: int, marks: list[int], n: int, workdir: Path) -> list[dict[str, Any]]:
    from aigc.config import DataConfig
    from aigc.data import load_dataset
    from aigc.metrics.image_run import evaluate_image_samples

    from .reference.common import torchvision_root
    from .reference.dcgan_tutorial import DCGANTutorial

    data = load_dataset(DataConfig(source="fashion-mnist"))
    ref = DCGANTutorial(torchvision_root(workdir / "torchvision"), batch_size=64, seed=seed, nets="examples")
    rows, done, train_s = [], 0, 0.0
    for mark in marks:
        tic = time.perf_counter()
        ref.steps(mark - done)
        train_s += time.perf_counter() - tic
        done = mark
        result = evaluate_image_samples(ref.sample(n, seed=0), data, _request(n), kind="samples")
        d_loss, g_loss = (statistics.fmean(x[i] for x in ref.log[-100:]) for i in (0, 1))
        rows.append({"side": "reference", "seed": seed, "step": mark, "train_minutes": train_s / 60,
                     **_values(result), "d_loss_last100": d_loss, "g_loss_last100": g_loss})
        print(f"reference seed {seed} step {mark}: {rows[-1]}", flush=True)
    return rows


def recipe_rows(recipe: str, sets: list[str], seed: int, marks: list[int], n: int,
                workdir: Path) -> list[dict[str, Any]]:
    from aigc.metrics import evaluate_run

    from .quality import training_run

    run = workdir / f"{recipe}-seed{seed}"
    every = marks[0] if all(m % marks[0] == 0 for m in marks) else 1
    overrides = [*sets, f"seed={seed}", f"train.steps={marks[-1]}", f"train.ckpt_every={every}",
                 f"train.keep_last={marks[-1] // every}", "train.sample_every=0"]
    if not (run / "checkpoints" / f"step-{marks[-1]:08d}" / "COMPLETE").is_file():
        training_run(run, recipe, overrides)
    rows = []
    for mark in marks:
        name = f"step-{mark:08d}"
        request = _request(n)
        request.checkpoint = name
        result = evaluate_run(run, request)
        state = json.loads((run / "checkpoints" / name / "state.json").read_text())
        rows.append({"side": "recipe", "seed": seed, "step": mark, "train_minutes": state["elapsed"] / 60,
                     **_values(result)})
        print(f"{recipe} seed {seed} step {mark}: {rows[-1]}", flush=True)
    return rows


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for side in ("reference", "recipe"):
        for step in sorted({r["step"] for r in rows if r["side"] == side}):
            group = [r for r in rows if r["side"] == side and r["step"] == step]
            row = {"side": side, "step": step, "seeds": len(group)}
            for k in ["train_minutes", *KEYS]:
                vals = [r[k] for r in group]
                row[k] = statistics.fmean(vals)
                row[k + "_sd"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
            out.append(row)
    return out


def plot(rows: list[dict[str, Any]], labels: dict[str, str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), dpi=110)
    for ax, key, better in zip(axes, ("fid", "recall"), ("lower", "higher"), strict=True):
        for side, style in (("reference", "s--"), ("recipe", "o-")):
            for seed in sorted({r["seed"] for r in rows if r["side"] == side}):
                pts = sorted((r["train_minutes"], r[key]) for r in rows if r["side"] == side and r["seed"] == seed)
                ax.plot(*zip(*pts, strict=True), style, color="C0" if side == "recipe" else "C1", alpha=0.7,
                        label=labels[side] if seed == min(r["seed"] for r in rows if r["side"] == side) else None)
        ax.set_xlabel("training minutes (steps only, 2 cores)")
        ax.set_ylabel(f"{key} ({better} is better)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _better(ref: float, ours: float, digits: int, lower: bool) -> str:
    """'ref vs ours' with the better one in bold."""
    a, b = f"{ref:.{digits}f}", f"{ours:.{digits}f}"
    if (ours < ref) == lower and ours != ref:
        b = f"**{b}**"
    elif ours != ref:
        a = f"**{a}**"
    return f"{a} vs {b}"


def _fmt(row: dict[str, Any], k: str, digits: int) -> str:
    sd = row[k + "_sd"]
    return f"{row[k]:.{digits}f} ± {sd:.{digits}f}" if row["seeds"] > 1 else f"{row[k]:.{digits}f}"


def write(out: Path, info: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    from aigc.files import atomic_write_text

    from .timing import results_header

    labels = {"reference": "pytorch/examples-style DCGAN (z 100, 64/128 ch)", "recipe": info["recipe_label"]}
    table = summary(rows)
    took = f"{(info['t_end'] - info['t0']) / 60:.0f} min"
    lines = [*results_header("A recipe against the pytorch/examples-style DCGAN", info, took),
             f"Each side trained with seeds {info['seeds']}; at each step mark {info['n']:,} samples measured against "
             f"the first {info['n']:,} Fashion-MNIST test images by aigc's evaluator (FID; precision/recall with "
             "k = 3, density/coverage with k = 5; features of the shipped classifier; seed 0 for the noise). "
             "Minutes count training steps only. Values: mean ± standard deviation over seeds.",
             "", "| side | steps | training min | FID ↓ | precision | recall | density | coverage |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in table:
        lines.append(f"| {labels[r['side']]} | {r['step']:,} | {_fmt(r, 'train_minutes', 2)} | {_fmt(r, 'fid', 2)} | "
                     f"{_fmt(r, 'precision', 3)} | {_fmt(r, 'recall', 3)} | {_fmt(r, 'density', 3)} | "
                     f"{_fmt(r, 'coverage', 3)} |")
    lines += ["", "At equal minutes: for each of the reference's marks, the recipe's longest mark that trained no "
              "longer (means over seeds).", "", "| reference | its minutes | recipe | its minutes | FID ↓ | recall | "
              "coverage |", "|---|---:|---:|---:|---|---|---|"]
    ours = [r for r in table if r["side"] == "recipe"]
    for ref in (r for r in table if r["side"] == "reference"):
        fit = [r for r in ours if r["train_minutes"] <= ref["train_minutes"]]
        if fit:
            r = max(fit, key=lambda x: x["train_minutes"])
            cells = [_better(ref[k], r[k], d, k == "fid") for k, d in (("fid", 2), ("recall", 3), ("coverage", 3))]
            lines.append(f"| {ref['step']:,} steps | {ref['train_minutes']:.2f} | {r['step']:,} steps | "
                         f"{r['train_minutes']:.2f} | " + " | ".join(cells) + " |")
    lines += ["", f"![FID and recall against training minutes]({out.with_suffix('.png').name})", ""]
    atomic_write_text(out, "\n".join(lines) + "\n")
    atomic_write_text(out.with_suffix(".json"), json.dumps({"info": info, "rows": rows, "summary": table}, indent=1))
    plot(rows, labels, out.with_suffix(".png"))


def main(argv: list[str] | None = None) -> int:
    from .timing import load_average, machine

    p = argparse.ArgumentParser(prog="python -m benchmarks.versus", description=__doc__.split("\n")[0])
    p.add_argument("--recipe", default="fashion-dcgan")
    p.add_argument("--set", action="append", default=[], dest="sets")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--marks", default="1000,2000,3000")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--workdir", type=Path, default=Path("runs/bench-versus"))
    p.add_argument("--only", choices=["recipe", "reference"])
    p.add_argument("--out", type=Path, default=RESULTS / "versus.md")
    a = p.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    marks = sorted(int(m) for m in a.marks.split(","))
    label = a.recipe + "".join(f" {s}" for s in a.sets)
    info = {"command": "python -m benchmarks.versus " + " ".join(sys.argv[1:] if argv is None else argv),
            "date": time.strftime("%Y-%m-%d %H:%M"), "t0": time.time(), "machine": machine(), "seeds": seeds, "marks": marks, "n": a.n,
            "recipe": a.recipe, "sets": a.sets, "recipe_label": f"aigc `{label}`", "load_start": load_average()}
    old: list[dict[str, Any]] = []
    if a.out.with_suffix(".json").is_file():
        prev = json.loads(a.out.with_suffix(".json").read_text())
        same = {k: prev["info"].get(k) == info[k] for k in ("marks", "n", "recipe", "sets")}
        old = [r for r in prev["rows"] if (r["side"] == "reference" and same["marks"] and same["n"])
               or (r["side"] == "recipe" and all(same.values()))]
    rows = list(old)
    if old and all(any(r["side"] == side and r["seed"] == seed for r in old) for seed in seeds
                   for side in ("reference", "recipe") if a.only in (None, side)):
        info = {**prev["info"], "command": info["command"]}  # nothing to measure: the tables are rewritten
    for seed in seeds:
        for side in ("reference", "recipe"):
            if a.only not in (None, side) or any(r["side"] == side and r["seed"] == seed for r in rows):
                continue
            if side == "reference":
                rows += reference_rows(seed, marks, a.n, a.workdir)
            else:
                rows += recipe_rows(a.recipe, a.sets, seed, marks, a.n, a.workdir)
            info["load_end"], info["t_end"] = load_average(), time.time()
            write(a.out, info, rows)
    info.setdefault("load_end", load_average())
    info.setdefault("t_end", time.time())
    write(a.out, info, rows)
    print(a.out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
