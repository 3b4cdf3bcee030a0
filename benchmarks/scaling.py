"""1 -> 2 processes on this machine, and what each model's processes must exchange every step.

    python -m benchmarks.scaling [--recipes fashion-dcgan fashion-gan] [--steps 120]

Each recipe is trained as a user runs it (`aigc train RECIPE`, its global batch) three ways: one
process on one core, one process on both cores (the default), and `--nproc 2` (two processes, one
core each). Throughput is the median of the logged windows after the first (items/s of the global
batch), so start-up is left out; the two-process rows also give the seconds a step spent averaging
gradients. Scaling efficiency = images/s of 2 processes / (2 x images/s of 1 process on 1 core).

The second table is the all-reduce each recipe's processes do every step: one flattened fp32
gradient per optimizer that steps (a GAN's D every step, its G every n_critic steps). A ring
all-reduce sends 2 (N - 1) / N of it from every process, from which the table gives the time a step
would spend on three links, a bound for estimating N GPUs (before any overlap with compute).

`--quality RECIPE...` also trains each named recipe to its full steps in 1 process (default
threads) and in 2, and evaluates both (`aigc eval RUN --n 10000 --metrics fid,prdc --no-floor`):
the same global batch and steps, so any gap is what 2 processes change (their noise, batch norm
over half the batch), beside what they cost in minutes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from aigc.config import load_config
from aigc.data import load_dataset
from aigc.run import build_model
from aigc.train.distributed import GradSync, World

from .quality import aigc_process, last_error
from .recipes import run_info, write_rows
from .timing import load_average, results_header

ROOT = Path(__file__).resolve().parents[1]
WAYS = [("1 process, 1 thread", 1, 1), ("1 process, 2 threads", 1, 2), ("2 processes, 1 thread each", 2, 1)]
LINKS = {"10 GbE (1.25 GB/s)": 1.25e9, "PCIe 4 x16 (~25 GB/s)": 25e9, "NVLink 4 (~450 GB/s)": 450e9}
COMM_RECIPES = ["fashion-gan", "fashion-dcgan", "fashion-vae", "fashion-flow", "names-transformer", "fsdd-flow"]


def train_fresh(recipe: str, out: Path, nproc: int, extra: list[str]) -> float:
    """`aigc train RECIPE --out OUT --quiet EXTRA [--nproc N]` into an emptied folder; its wall seconds."""
    shutil.rmtree(out, ignore_errors=True)
    args = ["train", recipe, "--out", str(out), "--quiet", *extra] + (["--nproc", str(nproc)] if nproc > 1 else [])
    tic = time.perf_counter()
    proc = aigc_process(args, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"aigc {' '.join(args)} failed: {last_error(err, proc.returncode)}")
    return time.perf_counter() - tic


def train_once(recipe: str, steps: int, nproc: int, threads: int, out: Path) -> dict[str, Any]:
    wall = train_fresh(recipe, out, nproc, ["--steps", str(steps), "--set", f"train.threads={threads}", "--set",
                                            "train.log_every=10", "--set", "train.sample_every=0", "--set",
                                            "train.ckpt_every=0"])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rows = [row for row in rows if "items_per_s" in row][1:]  # the first window holds the warm-up
    sync = [row["sync_s"] for row in rows if "sync_s" in row]
    return {"items_per_s": statistics.median(row["items_per_s"] for row in rows),
            "sync_ms": 1000 * statistics.median(sync) if sync else None, "wall_s": wall}


def quality_rows(recipes: list[str], work: Path, n: int) -> list[dict[str, Any]]:
    from .recipes import evaluate

    rows = []
    for recipe in recipes:
        for nproc in (1, 2):
            out = work / f"{recipe}-full-{nproc}p"
            train_fresh(recipe, out, nproc, [])
            ckpts = sorted((out / "checkpoints").glob("step-*"))
            state = json.loads((ckpts[-1] / "state.json").read_text())
            got = evaluate(out, n, ["--metrics", "fid,prdc", "--no-floor"])
            rows.append({"recipe": recipe, "nproc": nproc, "steps": state["step"],
                         "train_minutes": state["elapsed"] / 60, **{k: got["values"].get(k) for k in
                                                                    ("fid", "precision", "recall", "coverage")}})
            print(rows[-1], flush=True)
    return rows


def comm_rows(recipes: list[str], skipped: list[str]) -> list[dict[str, Any]]:
    rows = []
    for recipe in recipes:
        cfg = load_config(recipe, [])
        try:
            data = load_dataset(cfg.data)
        except Exception as e:  # e.g. FSDD on a machine without it: the row is left out, and said so
            print(f"skipping {recipe}: {e}", file=sys.stderr)
            skipped.append(recipe)
            continue
        model = build_model(cfg.model, data.meta)
        opts = model.configure_optimizers(cfg.train)
        n_critic = int(cfg.model.get("n_critic", 1))
        # what the trainer's all-reduce of each optimizer carries (a GAN's G steps every n_critic steps)
        sizes = GradSync(model, opts, World()).bytes
        per_step = sum(size / (n_critic if name == "g" else 1) for name, size in sizes.items())
        rows.append({"recipe": recipe, "model": cfg.model["name"], "optimizers": list(opts),
                     "mb_per_step": per_step / 1e6, "batch": cfg.train.batch_size})
    return rows


def render(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    out = results_header("1 -> 2 processes on this machine", info, f"{info['seconds'] / 60:.0f} min") + [
        f"Each recipe trained {info['steps']} steps at its own global batch, three ways, nothing else running; "
        "images/s is the median logged window after the first. Efficiency = 2-process images/s / (2 x "
        "1-process-1-thread images/s); against the default (1 process on both cores) the ratio is the "
        "second figure.", "",
        "| recipe | way | images/s | s/step | all-reduce ms/step | efficiency vs 1 core x 2 | vs default |",
        "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows["timing"]:
        base1 = next(x for x in rows["timing"] if x["recipe"] == r["recipe"] and x["nproc"] == 1 and x["threads"] == 1)
        base2 = next(x for x in rows["timing"] if x["recipe"] == r["recipe"] and x["nproc"] == 1 and x["threads"] == 2)
        eff = f"{r['items_per_s'] / (2 * base1['items_per_s']):.2f}" if r["nproc"] == 2 else ""
        vs = f"{r['items_per_s'] / base2['items_per_s']:.2f}" if r["nproc"] == 2 else ""
        sync = f"{r['sync_ms']:.1f}" if r["sync_ms"] is not None else ""
        out.append(f"| {r['recipe']} | {r['way']} | {r['items_per_s']:.0f} | {r['batch'] / r['items_per_s']:.3f} | "
                   f"{sync} | {eff} | {vs} |")
    out += ["", "What every process sends a step (fp32 gradients, ring all-reduce: 2 (N-1)/N of the "
            "reduced size), and the time that takes on three links at full speed:", "",
            "| recipe | model | optimizers | reduced MB/step | sent MB/step/process, N=2 | N=8 | "
            + " | ".join(f"ms/step on {k}, N=8" for k in LINKS) + " |",
            "|---|---|---|---:|---:|---:|" + "---:|" * len(LINKS)]
    for r in rows["comm"]:
        mb = r["mb_per_step"]
        sent = {n: 2 * (n - 1) / n * mb for n in (2, 8)}
        out.append(f"| {r['recipe']} | {r['model']} | {', '.join(r['optimizers'])} | {mb:.2f} | {sent[2]:.2f} | "
                   f"{sent[8]:.2f} | " + " | ".join(f"{1000 * sent[8] * 1e6 / bw:.3f}" for bw in LINKS.values()) + " |")
    if rows.get("quality"):
        out += ["", f"Quality at the recipe's own steps and global batch, 1 process (both cores) against 2 "
                f"(`aigc eval RUN --n {info['n']} --metrics fid,prdc --no-floor`):", "",
                "| recipe | processes | steps | training min | FID | precision | recall | coverage |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        out += [f"| {r['recipe']} | {r['nproc']} | {r['steps']} | {r['train_minutes']:.1f} | {r['fid']:.2f} | "
                f"{r['precision']:.3f} | {r['recall']:.3f} | {r['coverage']:.3f} |" for r in rows["quality"]]
    if info.get("skipped"):
        out += ["", f"Left out (their data is not on the machine that ran this): {', '.join(info['skipped'])}."]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipes", nargs="+", default=["fashion-dcgan", "fashion-gan"])
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--work", default="runs/bench-scaling")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scaling.md"))
    p.add_argument("--quality", nargs="*", default=[], metavar="RECIPE",
                   help="also train these recipes fully in 1 and 2 processes and evaluate both")
    p.add_argument("--n", type=int, default=10000, help="samples a --quality evaluation")
    args = p.parse_args(argv)
    tic, load_start = time.perf_counter(), load_average()
    timing = []
    for recipe in args.recipes:
        batch = load_config(recipe, []).train.batch_size
        for way, nproc, threads in WAYS:
            got = train_once(recipe, args.steps, nproc, threads, Path(args.work) / f"{recipe}-{nproc}x{threads}")
            timing.append({"recipe": recipe, "way": way, "nproc": nproc, "threads": threads, "batch": batch, **got})
            print(recipe, way, f"{got['items_per_s']:.0f} items/s", flush=True)
    skipped: list[str] = []
    rows = {"timing": timing, "comm": comm_rows(COMM_RECIPES, skipped),
            "quality": quality_rows(args.quality, Path(args.work), args.n)}
    info = run_info("scaling", argv, tic, load_start, steps=args.steps, skipped=skipped, n=args.n)
    write_rows(Path(args.out), rows, info, render)
    print(Path(args.out).read_text())


if __name__ == "__main__":
    main()
