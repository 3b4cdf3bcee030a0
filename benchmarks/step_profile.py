"""Where a training step's time goes, for aigc and the tutorial reference: why a speed target is missed.

    python -m benchmarks.step_profile [--steps 40] [--threads N] [--data-root DIR]

For each pair of benchmarks.throughput (the document's MLP GAN, DCGAN) it measures, per step:
- FLOPs (torch.utils.flop_counter: matmuls and convolutions, forward and backward);
- time by kind of work (torch.profiler, self CPU time of each aten op, unscaled): matmul/convolution
  kernels, the optimizer, other aten ops; the step time without the profiler next to it; for the
  reference also its data loading (the DataLoader's per-item transforms), timed apart;
- the bound that follows: if aigc spent *nothing* outside its matmuls/convolutions, it would be
  at most (reference step time) / (aigc's matmul/conv time) times faster than the reference.
Writes benchmarks/results/profile.md (+ .json); `python -m benchmarks.collect` adds it to BENCHMARKS.md.
(Not named profile.py: scripts run from benchmarks/ would import it as the standard library's `profile`.)
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from .reference.common import SYSTEM_DIR, torchvision_root
from .throughput import PAIRS, TARGETS, Bench, step_flops
from .timing import load_average, machine, results_header

RESULTS = Path(__file__).parent / "results"
COMPUTE = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::convolution_backward",
           "aten::_convolution")  # plus every aten::mkldnn_conv* and aten::slow_conv* kernel (see kind)
OPTIMIZER = ("aten::_fused_adam_", "aten::_foreach_", "Optimizer.step", "Optimizer.zero_grad", "aten::lerp_")


def kind(name: str) -> str:
    if name in COMPUTE or name.startswith(("aten::mkldnn_conv", "aten::slow_conv")):
        return "matmul/conv"
    if name.startswith(OPTIMIZER):
        return "optimizer"
    return "other"


def breakdown(step, steps: int) -> dict[str, float]:
    """Milliseconds per step: wall time without the profiler, and the profiler's self CPU time by kind.

    Profiled times are not scaled: the profiler's own overhead lands mostly on the many small ops
    ("other"), so the matmul/conv figure stays close to what those kernels take unprofiled.
    """
    tic = time.perf_counter()
    for _ in range(steps):
        step()
    wall = (time.perf_counter() - tic) / steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    out = {"matmul/conv": 0.0, "optimizer": 0.0, "other": 0.0}
    for e in prof.key_averages():
        out[kind(e.key)] += e.self_cpu_time_total / 1e3 / steps
    return out | {"step_ms": wall * 1e3, "profiled_step_ms": sum(out.values())}


def interleaved_breakdowns(steps_fns: dict[str, Any], steps: int, repeats: int) -> dict[str, dict[str, float]]:
    """breakdown() of each contender, taking turns `repeats` times; the median of every quantity."""
    for fn in steps_fns.values():  # warm-up
        for _ in range(3):
            fn()
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in steps_fns}
    for _ in range(repeats):
        for name, fn in steps_fns.items():
            runs[name].append(breakdown(fn, steps))
    return {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for name, rs in runs.items()}


def data_ms(reference, steps: int) -> float:
    """Milliseconds per batch that the reference's DataLoader (per-item ToTensor + Normalize) costs."""
    reference.data.next()
    tic = time.perf_counter()
    for _ in range(steps):
        reference.data.next()
    return (time.perf_counter() - tic) / steps * 1e3


def measure(bench: Bench, pair: str, steps: int, repeats: int = 5) -> dict[str, Any]:
    recipe, Reference = PAIRS[pair]
    tr = bench.trainer(recipe, [])
    batch = tr.cfg.train.batch_size
    root = torchvision_root(bench.workdir / "torchvision", bench.data_root or SYSTEM_DIR)
    ref = Reference(root, batch_size=batch)
    torch.set_num_threads(bench.threads)
    rows = interleaved_breakdowns({"aigc": tr.train_step, "reference": ref.step}, steps, repeats)
    rows["aigc"]["gflop"] = step_flops(tr.train_step) / 1e9
    rows["reference"] |= {"gflop": step_flops(ref.step) / 1e9, "data_ms": data_ms(ref, steps)}
    a, r = rows["aigc"], rows["reference"]
    return {"pair": pair, "recipe": recipe, "batch": batch, "steps": steps, "repeats": repeats,
            "target": TARGETS[pair], "rows": rows,
            "ratio": r["step_ms"] / a["step_ms"], "bound": r["step_ms"] / a["matmul/conv"],
            "matmul_gflops": a["gflop"] / (a["matmul/conv"] / 1e3)}


def verdict(s: dict[str, Any]) -> str:
    """What the bound says about the target, in one sentence."""
    a, r = s["rows"]["aigc"], s["rows"]["reference"]
    if s["bound"] < s["target"]:
        return (f"The target is out of reach in fp32 on this machine: even with nothing but its matmuls and "
                f"convolutions, aigc's step would take {a['matmul/conv']:.1f} ms against the reference's "
                f"{r['step_ms']:.1f} ms; only faster arithmetic (bf16) moves it.")
    need = r["step_ms"] / s["target"]
    budget = need - a["matmul/conv"]
    out = (f"Reaching {s['target']:g}x needs a step of {need:.1f} ms: the {a['step_ms'] - a['matmul/conv']:.1f} ms "
           f"spent outside matmuls (optimizer {a['optimizer']:.1f} ms, other ops {a['other']:.1f} ms, the rest "
           f"Python and dispatch) would have to shrink to {budget:.1f} ms.")
    if a["optimizer"] > budget:
        out += (" The optimizer alone takes more: Adam reads and writes every parameter and both moments each "
                "step (a fused, memory-bound kernel; the column includes the generator's EMA update).")
    return out


def render(results: list[dict[str, Any]], info: dict[str, Any]) -> str:
    out = results_header("Where the training step's time goes (why the speed targets are missed)", info,
                 f"{info['seconds']:.0f} s") + [
           "Per step, fp32, batch 64, medians of interleaved repeats (aigc and the reference take turns). "
           "*step ms* is timed without the profiler; the kinds of work are the "
           "torch.profiler's self CPU time per aten op (the profiler's overhead inflates mostly the many small "
           "ops). *bound* = reference step time / aigc's matmul+conv time: the speed-up aigc would reach if "
           "everything but its matmuls and convolutions cost nothing.", ""]
    for s in results:
        if "skipped" in s:
            out += [f"_{s.get('pair', '?')}: skipped: {s['skipped']}_", ""]
            continue
        a, r = s["rows"]["aigc"], s["rows"]["reference"]
        out += [f"## {s['pair']} (`{s['recipe']}`)", "",
                "| | GFLOP/step | step ms | profiled: matmul/conv ms | optimizer ms | other ops ms | "
                "data loading ms |",
                "|---|---:|---:|---:|---:|---:|---:|",
                f"| aigc | {a['gflop']:.3f} | {a['step_ms']:.1f} | {a['matmul/conv']:.1f} | {a['optimizer']:.1f} | "
                f"{a['other']:.1f} | 0 (an index slice) |",
                f"| reference | {r['gflop']:.3f} | {r['step_ms']:.1f} | {r['matmul/conv']:.1f} | "
                f"{r['optimizer']:.1f} | {r['other']:.1f} | {r['data_ms']:.1f} (timed apart) |", "",
                f"Measured ratio {s['ratio']:.2f}x; bound {s['bound']:.2f}x against a target of {s['target']:g}x. "
                f"aigc's matmuls/convolutions run at {s['matmul_gflops']:.0f} GFLOP/s inside the step "
                f"({100 * a['matmul/conv'] / a['step_ms']:.0f}% of its step time); the reference does "
                f"{r['gflop'] / a['gflop']:.2f}x aigc's arithmetic.", "", verdict(s), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.step_profile", description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30, help="steps per timed and per profiled repeat")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats (medians are reported)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--pairs", nargs="*", default=list(PAIRS))
    p.add_argument("--data-root", type=Path, default=None, help="folder with the Fashion-MNIST idx files")
    p.add_argument("--out", type=Path, default=RESULTS / "profile.md")
    args = p.parse_args(argv)
    threads = args.threads or os.cpu_count() or 1
    tic, load_start = time.perf_counter(), load_average()
    results = []
    with tempfile.TemporaryDirectory(prefix="aigc-profile-") as tmp:
        bench = Bench(Path(tmp), threads, args.data_root)
        for pair in args.pairs:
            try:
                results.append(measure(bench, pair, args.steps, args.repeats))
            except Exception as e:  # e.g. no Fashion-MNIST: say so in the table
                results.append({"pair": pair, "skipped": f"{type(e).__name__}: {e}"})
    info = {"command": "python -m benchmarks.step_profile " + " ".join(argv or sys.argv[1:]),
            "seconds": time.perf_counter() - tic, "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": machine() | {"torch threads": str(threads)}, "load_start": load_start,
            "load_end": load_average()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(results, info) + "\n", encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps({"info": info, "results": results}, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0 if all("skipped" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
