"""Diffusion and flow recipes: quality against network evaluations, quality against training minutes
beside the GANs, and training throughput against the machine's matmul peak.

    python -m benchmarks.diffusion [--recipes fashion-flow fashion-cflow ...] [--gans fashion-dcgan ...]
                                   [--workdir runs/bench-recipes] [--n 1000] [--nfe 1 2 4 8 16 32 64]
                                   [--skip sampling curves throughput] [--out benchmarks/results/diffusion.md]

A skipped section keeps the figures the last run wrote to --out's .json.

Reads the runs `python -m benchmarks.recipes RECIPE` trained into --workdir (their 10,000-sample rows
are in recipes-flow.md); a recipe not trained there is left out with a line saying so.

1. Sampling: for each sampler of each run, n images (seed 0, classes cycled for conditional runs) at
   each number of network evaluations (NFE; a two-evaluation step counts 2), their FID and recall
   against n test images in the shipped Fashion-MNIST features, and the wall time of sampling.
2. Time to quality: the FID each run logged during training (`train.eval_every`, `train.eval_n`
   samples) against training minutes, in one PNG with the GAN recipes trained with the same
   evaluation settings (--gans, trained into WORKDIR/RECIPE-curve when missing).
3. Throughput: images/s of one training step of each recipe (its batch and precision), its GFLOP/s
   counted by torch.utils.flop_counter, as a share of a 2048^2 matmul's fp32 and bf16 rate, timed
   interleaved. Peak RSS comes from the training child (recipes-flow.md).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from aigc.files import atomic_write_text
from aigc.train.checkpoint import list_checkpoints

from .quality import plot_fid, training_run
from .throughput import Bench, _steps, step_flops
from .timing import interleaved, load_average, machine, matmul_peak, results_header

RESULTS = Path(__file__).parent / "results"
RECIPES = ["fashion-flow", "fashion-cflow", "fashion-diffusion"]
GANS = ["fashion-dcgan"]
SECTIONS = ["sampling", "curves", "throughput"]
CURVE_EVAL = ["train.eval_every=500", "train.eval_n=1000"]  # what the GAN curves log (the flow recipes' eval_n)


def sampling_table(run_dir: Path, nfes: list[int], n: int, echo) -> list[dict[str, Any]]:
    """FID, recall and seconds per (sampler, NFE) for one run."""
    import aigc
    from aigc.data import load_dataset
    from aigc.metrics import image as M
    from aigc.metrics.features import feature_net_for
    from aigc.models import samplers as S
    from aigc.models.capabilities import is_conditional
    from aigc.pixels import quantize

    loaded = aigc.load(run_dir)
    model = loaded.model
    data = load_dataset(loaded.config.data)
    feats = feature_net_for(data, echo=echo)
    ref = feats(data.split("test")["x"][:n])[0]
    kwargs = {"labels": list(range(len(loaded.class_names)))} if is_conditional(model) else {}
    rows = []
    for sampler in model.samplers:
        for nfe in nfes:
            per_step = S.evaluations(sampler, 1)
            if nfe % per_step:
                continue
            tic = time.perf_counter()
            x = quantize(loaded.sample(n, seed=0, sampler=sampler, steps=nfe // per_step, **kwargs))
            seconds = time.perf_counter() - tic
            f = feats(x)[0]
            precision, recall = M.precision_recall(ref, f)
            rows.append({"sampler": sampler, "nfe": nfe, "steps": nfe // per_step, "fid": M.fid(f, ref),
                         "precision": precision, "recall": recall, "seconds": seconds})
            echo(f"  {run_dir.name} {sampler} NFE {nfe}: FID {rows[-1]['fid']:.2f}, recall {recall:.3f}, "
                 f"{seconds:.1f} s")
    return rows


def curve(run_dir: Path) -> list[dict[str, Any]]:
    """The evaluations a run logged while training, with the training minutes of their step."""
    minutes, points = {}, []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "time" in row:
            minutes[row["step"]] = row["time"] / 60
        elif row.get("eval") and "fid" in row:
            points.append(row)
    known = sorted(minutes)
    out = []
    for p in points:  # the step's own log row, else the nearest one before it
        before = [s for s in known if s <= p["step"]]
        if before:
            out.append({**p, "train_minutes": minutes[before[-1]]})
    return out


def throughput(recipes: list[str], workdir: Path, steps: int, repeats: int) -> dict[str, Any]:
    bench = Bench(workdir / "throughput", threads=2)
    contenders: dict[str, Any] = {"matmul fp32": matmul_peak(2048, torch.float32),
                                  "matmul bf16": matmul_peak(2048, torch.bfloat16)}
    facts = {}
    for recipe in recipes:
        tr = bench.trainer(recipe, [])
        flops = step_flops(tr.train_step)
        batch = tr.cfg.train.batch_size
        facts[recipe] = (batch, flops, tr.cfg.train.precision)
        contenders[recipe] = (_steps(tr, steps), flops * steps)
    torch.set_num_threads(bench.threads)
    times = interleaved(contenders, repeats, warmup=1)
    fp32, bf16 = times["matmul fp32"].rate / 1e9, times["matmul bf16"].rate / 1e9
    rows = []
    for recipe, (batch, flops, precision) in facts.items():
        t = times[recipe]
        rows.append({"recipe": recipe, "batch": batch, "precision": precision, "gflop_per_step": flops / 1e9,
                     "ms_per_step": 1000 * t.median / steps, "images_per_s": batch * steps / t.median,
                     "gflops": t.rate / 1e9, "share_fp32": t.rate / 1e9 / fp32, "share_bf16": t.rate / 1e9 / bf16})
    return {"peak_fp32": fp32, "peak_bf16": bf16, "rows": rows, "steps": steps, "repeats": repeats}


def render(info: dict[str, Any], sampling: dict[str, list], curves: dict[str, list], png: Path | None,
           thr: dict[str, Any] | None, missing: list[str]) -> str:
    out = results_header("Diffusion and flow: sampling, time to quality, throughput", info,
                         f"{info['seconds'] / 60:.0f} min")
    made_by = info.get("made_by", {})
    if any(cmds != [info["command"]] for cmds in made_by.values()):
        out.append("Measured by: " + "; ".join(f"{s}: " + ", then ".join(f"`{c}`" for c in cmds)
                                              for s, cmds in made_by.items()) + ".")
        out.append("")
    for m in missing:
        out.append(f"- {m}")
    if missing:
        out.append("")
    if sampling:
        out += [f"## Quality against network evaluations (n = {info['n']:,})", "",
                f"{info['n']:,} samples (seed 0) against {info['n']:,} test images, shipped Fashion-MNIST "
                "features. FID at this n reads higher than at 10,000 (FID falls as n grows): compare rows "
                "with each other, and the recipes' own 10,000-sample rows with the GANs'. Seconds: "
                "sampling alone, 2 threads.", ""]
        for run, rows in sampling.items():
            out += [f"**{run}**", "", "| sampler | NFE | steps | FID ↓ | precision | recall | seconds |",
                    "|---|---:|---:|---:|---:|---:|---:|"]
            out += [f"| {r['sampler']} | {r['nfe']} | {r['steps']} | {r['fid']:.2f} | {r['precision']:.3f} | "
                    f"{r['recall']:.3f} | {r['seconds']:.1f} |" for r in rows]
            out.append("")
    if curves:
        out += ["## Time to quality", "",
                "FID logged during training (`train.eval_every`, 1,000 samples against 1,000 test images) "
                "against minutes of training steps (evaluations not counted).", "",
                "| run | step | training min | FID ↓ | recall |", "|---|---:|---:|---:|---:|"]
        for run, pts in curves.items():
            out += [f"| {run} | {p['step']:,} | {p['train_minutes']:.1f} | {p['fid']:.2f} | "
                    f"{p.get('recall', float('nan')):.3f} |" for p in pts]
        if png:
            out += ["", f"![FID against training minutes]({png.name})"]
        out.append("")
    if thr:
        out += ["## Training throughput", "",
                f"One training step of each recipe at its batch and precision, {thr['steps']} steps x "
                f"{thr['repeats']} repeats interleaved with a 2048x2048 matmul: fp32 {thr['peak_fp32']:.1f} "
                f"GFLOP/s, bf16 {thr['peak_bf16']:.1f} GFLOP/s. FLOPs: matmuls and convolutions, forward and "
                "backward (torch.utils.flop_counter).", "",
                "| recipe | batch | precision | GFLOP/step | ms/step | images/s | GFLOP/s | % fp32 peak | % bf16 peak |",
                "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
        out += [f"| {r['recipe']} | {r['batch']} | {r['precision']} | {r['gflop_per_step']:.2f} | "
                f"{r['ms_per_step']:.0f} | {r['images_per_s']:.0f} | {r['gflops']:.1f} | {100 * r['share_fp32']:.0f}% | "
                f"{100 * r['share_bf16']:.0f}% |" for r in thr["rows"]]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.diffusion", description=__doc__.splitlines()[0])
    p.add_argument("--recipes", nargs="*", default=RECIPES)
    p.add_argument("--gans", nargs="*", default=GANS)
    p.add_argument("--workdir", type=Path, default=Path("runs/bench-recipes"))
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--nfe", type=int, nargs="*", default=[1, 2, 4, 8, 16, 32, 64])
    p.add_argument("--samplers-of", nargs="*", default=None, help="recipes to tabulate samplers for (default: all)")
    p.add_argument("--max-nfe", nargs="*", default=[], metavar="RECIPE=NFE",
                   help="a lower ceiling on --nfe for one recipe (e.g. fashion-diffusion=32), to save time")
    p.add_argument("--skip", nargs="*", default=[], choices=SECTIONS)
    p.add_argument("--add", action="store_true",
                   help="add the sampling rows measured now to the last run's table (same sampler and NFE "
                        "replaced) instead of measuring the whole table again")
    p.add_argument("--out", type=Path, default=RESULTS / "diffusion.md")
    args = p.parse_args(argv)
    tic, load_start = time.perf_counter(), load_average()

    def echo(m: str) -> None:
        print(m, file=sys.stderr, flush=True)

    runs = {r: (args.workdir / r).resolve() for r in args.recipes}
    missing = [f"`{r}`: not trained in {d} (run `python -m benchmarks.recipes {r}` first)"
               for r, d in runs.items() if not list_checkpoints(d)]
    runs = {r: d for r, d in runs.items() if list_checkpoints(d)}
    command = "python -m benchmarks.diffusion " + " ".join(argv if argv is not None else sys.argv[1:])
    sampling, curves, png, thr = {}, {}, None, None
    old = args.out.with_suffix(".json")
    earlier = json.loads(old.read_text()) if (args.skip or args.add) and old.is_file() else None
    # which commands measured each section: a skipped section keeps the last run's figures and their commands
    made_by = {s: [command] for s in SECTIONS}
    if earlier is not None:
        before = earlier["info"].get("made_by") or {s: [earlier["info"]["command"]] for s in SECTIONS}
        for s in args.skip:
            made_by[s] = before[s]
        sampling = earlier["sampling"] if "sampling" in args.skip or args.add else {}
        curves = earlier.get("curves", {}) if "curves" in args.skip else {}
        thr = earlier["throughput"] if "throughput" in args.skip else None
        if args.add and "sampling" not in args.skip:
            made_by["sampling"] = before["sampling"] + [command]
    ceiling = {k: int(v) for k, v in (item.split("=") for item in args.max_nfe)}
    if "sampling" not in args.skip:
        for r, d in runs.items():
            if args.samplers_of is None or r in args.samplers_of:
                echo(f"sampling {r} ...")
                rows = sampling_table(d, [k for k in args.nfe if k <= ceiling.get(r, k)], args.n, echo)
                new = {(x["sampler"], x["nfe"]) for x in rows}
                kept = [x for x in sampling.get(r, []) if (x["sampler"], x["nfe"]) not in new]
                sampling[r] = sorted(kept + rows, key=lambda x: (x["sampler"], x["nfe"]))
    if "curves" in args.skip and curves:
        png = args.out.with_name(args.out.stem + "-time.png")
    if "curves" not in args.skip:
        for r, d in runs.items():
            curves[r] = curve(d)
        for g in args.gans:
            d = (args.workdir / f"{g}-curve").resolve()
            if not list_checkpoints(d):
                echo(f"training {g} with {' '.join(CURVE_EVAL)} ...")
                training_run(d, g, CURVE_EVAL)
            curves[f"{g} (GAN)"] = curve(d)
        png = plot_fid({k: v for k, v in curves.items() if v}, args.out.with_name(args.out.stem + "-time.png"),
                       "FID (1,000 samples) against training minutes")
    if "throughput" not in args.skip:
        echo("throughput ...")
        thr = throughput(list(runs) or args.recipes, args.workdir, steps=5, repeats=3)
    info = {"command": command, "made_by": made_by,
            "n": args.n, "seconds": time.perf_counter() - tic, "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": machine(), "load_start": load_start, "load_end": load_average()}
    atomic_write_text(args.out, render(info, sampling, curves, png, thr, missing))
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(
        {"info": info, "sampling": sampling, "curves": curves, "throughput": thr}, indent=1))
    echo(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
