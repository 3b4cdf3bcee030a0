"""Benchmark: each text family on makemore's names.txt split, test loss in nats/char vs. makemore.

    PYTHONPATH=src nice -n 5 python benchmarks/makemore.py --minutes 15 --rnn-minutes 4

Trains the names-* recipes (their model and optimiser settings, data swapped for names.txt) with a
wall-clock budget per family: a short calibration measures the step time, the run then gets the
number of steps that fits (the cosine schedule needs the count up front). Writes
benchmarks/results/makemore.md. makemore's split: names shuffled with torch.randperm seeded 3407,
test = the last min(1000, 10%) names; makemore's default Transformer (204,544 parameters) reaches
about 1.92 nats/char on it.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from aigc.config import load_config
from aigc.data.text import text_dataset
from aigc.metrics.text import nll_per_char
from aigc.models.base import count_parameters
from aigc.run import build_model
from aigc.train import train

ROOT = Path(__file__).resolve().parents[1]
NAMES = ROOT.parent / "shared" / "data" / "names" / "names.txt"
MAKEMORE = {"transformer": (204_544, 1.92)}


def makemore_split(path: Path) -> dict[str, list[str]]:
    """makemore's create_datasets(): randperm after torch.manual_seed(3407); the last names are test."""
    words = [w.strip() for w in path.read_text(encoding="utf-8").splitlines()]
    words = [w for w in words if w]
    n_test = min(1000, int(len(words) * 0.1))
    rp = torch.randperm(len(words), generator=torch.Generator().manual_seed(3407)).tolist()
    return {"train": [words[i] for i in rp[:-n_test]], "test": [words[i] for i in rp[-n_test:]]}


def seconds_per_step(cfg, data, steps: int = 40) -> float:
    model = build_model(cfg.model, data.meta)
    opts = model.configure_optimizers(cfg.train)
    g = torch.Generator().manual_seed(0)
    for s in range(steps + 5):
        if s == 5:
            tic = time.perf_counter()
        idx = torch.randint(0, len(data), (cfg.train.batch_size,), generator=g)
        model.training_step({"x": data.train["x"][idx]}, opts, s)
    return (time.perf_counter() - tic) / steps


def run_family(family: str, minutes: float, data, out: Path, overrides: list[str]) -> dict:
    torch.set_num_threads(1)
    cfg = load_config(f"names-{family}", ["train.sample_every=0", "train.progress=false", "train.threads=1",
                                          f"data.source=lines:{data.name}", *overrides])
    per_step = seconds_per_step(cfg, data)
    steps = max(100, int(minutes * 60 / per_step))
    cfg = load_config(cfg.to_dict(), [f"train.steps={steps}", f"train.ckpt_every={steps}"])
    tic = time.perf_counter()
    result = train(cfg, out / family, data=data, echo=lambda m: None)
    wall = time.perf_counter() - tic
    import aigc

    model = aigc.load(out / family).model
    test, count = nll_per_char(model, data.test["x"])
    train_nll, _ = nll_per_char(model, data.train["x"])
    row = {"family": family, "params": count_parameters(model), "steps": result.step,
           "batch": cfg.train.batch_size, "train_s": result.seconds, "wall_s": wall, "test": test,
           "train_nll": train_nll, "tokens": count, "samples": model.sample(8, generator=torch.Generator().manual_seed(0))}
    print(f"{family}: {row['params']:,} params, {steps} steps, {wall:.0f} s, test {test:.4f} nats/char", flush=True)
    return row


def table(rows: list[dict], args: argparse.Namespace, load: tuple[str, str]) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    lines = [
        "# makemore names.txt benchmark", "",
        f"Command: `python benchmarks/makemore.py --minutes {args.minutes:g} "
        f"--rnn-minutes {args.rnn_minutes:g} --families {args.families}"
        + "".join(f" --set {x}" for x in args.set or []) + f"` (commit {commit}, torch {torch.__version__}, 1 thread).",
        f"Machine: {os.cpu_count()} cores; load average (1/5/15 min) {load[0]} at the start, {load[1]} at the "
        "end (above ~1 means other jobs shared the CPU). Training time is the wall time of the whole run "
        "(checkpoints and sample grids included); the step count is fixed by a calibration at the start.", "",
        "Split: makemore's (torch.randperm seeded 3407; test = last 1,000 of 32,032 names). Test loss: mean "
        "NLL per character in nats, end-of-name token included (makemore's measure).", "",
        "| family | parameters | steps | batch | training time | test loss (nats/char) | train loss | makemore |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ref = MAKEMORE.get(r["family"])
        ref_s = f"{ref[1]} at {ref[0]:,} params" if ref else ""
        lines.append(f"| {r['family']} | {r['params']:,} | {r['steps']:,} | {r['batch']} | "
                     f"{r['train_s'] / 60:.1f} min | **{r['test']:.4f}** | {r['train_nll']:.4f} | {ref_s} |")
    lines += ["", "Samples (seed 0, temperature 1):", ""]
    for r in rows:
        lines.append(f"- {r['family']}: " + ", ".join(r["samples"]))
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=NAMES, help="makemore's names.txt")
    p.add_argument("--minutes", type=float, default=15.0, help="training budget of the transformer")
    p.add_argument("--rnn-minutes", type=float, default=4.0, help="training budget of rnn, gru and lstm each")
    p.add_argument("--families", default="transformer,rnn,gru,lstm")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "makemore.md")
    p.add_argument("--runs", type=Path, help="keep the runs here (default: a temporary folder)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override every recipe, e.g. model.dropout=0")
    args = p.parse_args()
    if not args.data.is_file():
        print(f"error: {args.data} not found (makemore's names.txt; see ../shared/data/README.md)", file=sys.stderr)
        return 2
    data = text_dataset(str(args.data.resolve()), makemore_split(args.data), kind="lines", block_size=64)
    load_start = " ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs or Path(tmp)
        for family in args.families.split(","):
            minutes = args.minutes if family == "transformer" else args.rnn_minutes
            rows.append(run_family(family, minutes, data, runs, args.set or []))
    load_end = " ".join(f"{x:.1f}" for x in os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table(rows, args, (load_start, load_end)), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
