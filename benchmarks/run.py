"""One command for the speed tables: `python -m benchmarks.run [--quick | --smoke] [--out FILE]`.

Contenders run interleaved in this one process (median of >= 5 repeats), so a load that drifts
during the run hits every contender alike; absolute rates on a shared machine still move, ratios
much less. Writes markdown (with the machine's description) and the raw numbers as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import quality, sampling, throughput
from .timing import load_average, machine, results_header

RESULTS = Path(__file__).parent / "results"


@dataclass
class Mode:
    """How much of everything a run measures."""

    name: str
    mlp_steps: int             # training steps per timed repeat
    dc_steps: int
    repeats: int = 5
    gflop_batches: dict[str, list[int]] = field(default_factory=dict)
    peak_n: int = 2048         # side of the square matmul that measures the peak
    sample_batches: list[int] = field(default_factory=lambda: [1, 64, 1024])
    new_tokens: list[int] = field(default_factory=lambda: [64, 256])
    # the child training run (RSS, FID); the full mode trains the whole recipe (3000 steps)
    run_overrides: list[str] = field(default_factory=list)
    fid_n: int = 2000
    min_images: int = 256     # images per timed sampling repeat (at least)
    precisions: list[str] = field(default_factory=lambda: ["fp32"])  # one child run (RSS, FID curve) each


MODES = {
    "smoke": Mode("smoke", mlp_steps=2, dc_steps=1, gflop_batches={"mlp-gan": [64], "dcgan": [64]}, peak_n=256,
                  sample_batches=[1, 64], new_tokens=[8],
                  run_overrides=["train.steps=4", "train.ckpt_every=2", "train.sample_every=0",
                                 "data.limit=512", "train.keep_last=10"], fid_n=0, min_images=8),
    "quick": Mode("quick", mlp_steps=20, dc_steps=5, gflop_batches={"mlp-gan": [64, 1024], "dcgan": [64]},
                  peak_n=1024, run_overrides=["train.steps=300", "train.ckpt_every=100", "train.keep_last=10"],
                  fid_n=1000),
    "full": Mode("full", mlp_steps=50, dc_steps=15, repeats=7,
                 gflop_batches={"mlp-gan": [64, 256, 1024], "dcgan": [64, 256]},
                 run_overrides=["train.ckpt_every=500", "train.keep_last=20"], fid_n=2000,
                 precisions=["fp32", "bf16"]),
}


def _timed(results: dict[str, Any], key: str, fn, *args, **kw) -> None:
    tic = time.perf_counter()
    try:
        results[key] = fn(*args, **kw)
    except Exception as e:  # one broken section must not hide the others' tables
        results[key] = {"skipped": f"failed: {type(e).__name__}: {e}"}
    results[key]["section_s"] = time.perf_counter() - tic
    print(f"  {key}: {results[key]['section_s']:.0f} s", file=sys.stderr, flush=True)


def measure(mode: Mode, threads: int, workdir: Path, data_root: Path | None) -> dict[str, Any]:
    bench = throughput.Bench(workdir, threads, data_root)
    smoke, full = mode.name == "smoke", mode.name == "full"
    r: dict[str, Any] = {}
    _timed(r, "train_mlp", throughput.training_throughput, bench, "mlp-gan", mode.mlp_steps, mode.repeats, full)
    _timed(r, "train_dcgan", throughput.training_throughput, bench, "dcgan", mode.dc_steps, mode.repeats, False)
    _timed(r, "gflops", throughput.gflops, bench, mode.gflop_batches, max(1, mode.dc_steps // 2), mode.repeats,
           mode.peak_n)
    _timed(r, "sample_images", sampling.image_sampling, ["fashion-gan", "fashion-dcgan"], mode.sample_batches,
           mode.repeats, threads, mode.min_images)
    _timed(r, "sample_text", sampling.text_sampling, workdir, mode.new_tokens, mode.repeats, threads)
    extra = [f"train.threads={threads}"] + ([f"data.root={data_root}"] if data_root else [])
    for precision in mode.precisions:  # fp32 first: its keys are "memory" and "fid", the others get a suffix
        suffix = "" if precision == "fp32" else f"_{precision}"
        run_dir = workdir / f"dcgan-{precision}"
        _timed(r, "memory" + suffix, quality.training_run, run_dir, "fashion-dcgan",
               mode.run_overrides + extra + [f"train.precision={precision}"])
        if smoke:
            r["fid" + suffix] = {"skipped": "not in --smoke mode"}
        else:
            _timed(r, "fid" + suffix, quality.fid_curve, run_dir, mode.fid_n)
    return r


# ---------------------------------------------------------------- markdown

NUMERICS = [  # what each speed measure does to the arithmetic (the reference's maths is the yardstick)
    ["uint8 batches in memory, normalised per batch", "on",
     "none: 2x/255 - 1 per pixel, as ToTensor + Normalize(0.5, 0.5) (up to float rounding)"],
    ["D on real and fake in one forward", "on", "none (D has no batch norm; per-sample maths is unchanged)"],
    ["no D weight gradients in the G backward", "on", "none (they were computed and discarded)"],
    ["one generator forward for the D and G updates", "on",
     "same distribution, not the same numbers: the G step reuses the D step's noise instead of drawing "
     "a second batch, as the document's double `predict` does"],
    ["fused Adam", "on", "same update up to float rounding (about 1 ulp)"],
    ["`train.channels_last` (conv weights and activations in NHWC)", "on",
     "float rounding only (other oneDNN kernels); no effect on MLPs"],
    ["`train.precision=bf16` (autocast)", "off",
     "yes: matmul and convolution inputs rounded to bf16 (8-bit mantissa), fp32 accumulation; weights, "
     "optimizer state and losses stay fp32 (FID per precision in section 6)"],
    ["`train.compile=true`", "off", "float rounding only (fused kernels reorder operations)"],
]

def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _skip(section: dict[str, Any]) -> str | None:
    return f"_skipped: {section['skipped']}_" if "skipped" in section and not section.get("rows") else None


def render(r: dict[str, Any], info: dict[str, Any]) -> str:
    out = results_header(f"Speed benchmarks ({info['mode']})", info, f"run took {info['seconds']:.0f} s",
                 " - the machine was shared, so absolute rates are low and noisy; the interleaved ratios are the "
                 "figures to read." if info["loaded"] else ".")
    for key, title in (("train_mlp", "1. Training throughput: the document's MLP GAN"),
                       ("train_dcgan", "2. Training throughput: DCGAN")):
        s = r[key]
        out += [f"## {title}", ""]
        if _skip(s):
            out += [_skip(s), ""]
            continue
        out += [f"Recipe `{s['recipe']}`, batch {s['batch']}, {s['steps_per_repeat']} steps per repeat, "
                f"median of {s['repeats']} interleaved repeats. Target: >= {s['target']:g}x the reference.", "",
                _table(["contender", "images/s (median)", "range", "x reference"],
                       [[x["contender"], f"{x['images_per_s']:,.0f}", x["range"], f"{x['ratio']:.2f}"]
                        for x in s["rows"]]), ""]
    s = r["gflops"]
    out += ["## 3. Achieved GFLOP/s of the training step vs the matmul peak", ""]
    if _skip(s):
        out += [_skip(s), ""]
    else:
        out += [f"Peak: a {s['peak_n']}x{s['peak_n']} matmul, timed interleaved with the steps: "
                f"fp32 {s['peak_fp32']:.1f} GFLOP/s, bf16 {s['peak_bf16']:.1f} GFLOP/s. FLOPs per step are "
                "counted by torch.utils.flop_counter (matmuls and convolutions, forward and backward). "
                "Target: >= 40% of the fp32 peak for the MLP GAN at its best batch size.", "",
                _table(["model", "batch", "GFLOP/step", "ms/step", "images/s", "GFLOP/s", "% fp32 peak",
                        "% bf16 peak"],
                       [[x["model"], x["batch"], f"{x['gflop_per_step']:.3f}", f"{x['ms_per_step']:.1f}",
                         f"{x['images_per_s']:,.0f}", f"{x['gflops']:.1f}", f"{100 * x['share_fp32']:.0f}%",
                         f"{100 * x['share_bf16']:.0f}%"] for x in s["rows"]]), ""]
    out += ["## 4. Sampling", ""]
    s = r["sample_images"]
    out += [_skip(s) or _table(["recipe", "batch", "images/s", "range"],
                               [[x["recipe"], x["batch"], f"{x['images_per_s']:,.0f}", x["range"]]
                                for x in s["rows"]]), ""]
    s = r["sample_text"]
    out += ["Text (Transformer, `names-transformer`), tokens/s with and without the KV cache. "
            "Target: cached >= 5x uncached at 256 new tokens.", ""]
    out += [_skip(s) or _table(["batch", "new tokens", "cached tokens/s", "uncached tokens/s", "speed-up"],
                               [[x["batch"], x["new_tokens"], f"{x['cached']:,.0f}", f"{x['uncached']:,.0f}",
                                 f"{x['speedup']:.1f}x"] for x in s["rows"]]), ""]
    if s.get("note"):
        out += [s["note"], ""]
    runs = [(k[len("memory"):].lstrip("_") or "fp32", r[k], r.get("fid" + k[len("memory"):], {}))
            for k in r if k.startswith("memory")]
    out += ["## 5. Peak resident memory of a Fashion-MNIST training run", "",
            "Each run is measured as the child's own VmHWM (benchmarks/peak_rss.py), not its kernel rusage, "
            "which on Linux inherits the benchmark process's peak. Target: < 1,536 MB.", ""]
    for precision, s, _ in runs:
        if "peak_rss_mb" in s:
            out += [f"- {precision}: `{s['command']}`: peak RSS **{s['peak_rss_mb']:,.0f} MB**, "
                    f"{s['final_rss_mb']:,.0f} MB at exit, {s['wall_s']:.0f} s wall."]
        else:
            out += [f"- {precision}: {_skip(s) or 'no figure'}"]
    out += ["", "## 6. Time to quality: FID of `fashion-dcgan` against training minutes", ""]
    curves = [(precision, f) for precision, _, f in runs if f.get("points")]
    if curves:
        steps = sorted({p["step"] for _, f in curves for p in f["points"]})
        by_step = {prec: {p["step"]: p for p in f["points"]} for prec, f in curves}
        header = ["step"] + [h for prec, _ in curves for h in (f"{prec} minutes", f"{prec} FID")]
        rows = [[st] + [c for prec, _ in curves
                        for c in ((f"{by_step[prec][st]['train_minutes']:.2f}", f"{by_step[prec][st]['fid']:.2f}")
                                  if st in by_step[prec] else ("", ""))] for st in steps]
        out += [f"`aigc eval --n {curves[0][1]['n']} --metrics fid` (FID vs the test set, the shipped Fashion-MNIST "
                "feature network) on each kept checkpoint of the runs above; minutes are training-step time "
                "recorded in the checkpoint.", "", _table(header, rows), ""]
        if r.get("fid_png"):
            out += [f"![FID vs minutes]({r['fid_png']})", ""]
    for precision, _, f in runs:
        if f.get("skipped"):
            out += [f"_{precision} FID skipped: {f['skipped']}_", ""]
    out += ["## Which settings change numerics", "", _table(["setting", "default", "numerics"], NUMERICS), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="fewer steps and sizes (a few minutes)")
    g.add_argument("--smoke", action="store_true", help="seconds: checks the machinery, numbers mean little")
    p.add_argument("--out", type=Path, default=RESULTS / "perf.md", help="markdown file to write")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--data-root", type=Path, default=None, help="folder with the Fashion-MNIST idx files")
    args = p.parse_args(argv)
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    threads = args.threads or os.cpu_count() or 1
    tic, load_start = time.perf_counter(), load_average()
    print(f"benchmarks ({mode.name}, {threads} threads) -> {args.out}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="aigc-bench-") as tmp:
        results = measure(mode, threads, Path(tmp), args.data_root)
        curves = {k[len("fid"):].lstrip("_") or "fp32": v["points"] for k, v in results.items()
                  if k.startswith("fid") and v.get("points")}
        if curves:
            png = args.out.with_name(args.out.stem + "-fid.png")
            quality.plot_fid(curves, png, "fashion-dcgan: FID vs training time")
            results["fid_png"] = png.name
    loads = [float(x) for x in load_average().split(" / ")] if load_average() != "n/a" else [0.0]
    info = {"mode": mode.name, "command": "python -m benchmarks.run " + " ".join(argv or sys.argv[1:]),
            "seconds": time.perf_counter() - tic, "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": machine(), "load_start": load_start, "load_end": load_average(),
            "loaded": max(loads) > (os.cpu_count() or 1) + 0.5}  # more runnable jobs than cores
    info["machine"]["torch threads"] = str(threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(results, info) + "\n", encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps({"info": info, "results": results}, indent=1))
    print(f"wrote {args.out} in {info['seconds']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
