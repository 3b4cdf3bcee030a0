"""The README's "Measuring a generator" example: aigc's run against a generator aigc did not make.

    python -m benchmarks.measuring [--run runs/fashion-dcgan] [--steps 3000] [--n 10000]
                                   [--workdir runs/bench-measuring] [--out benchmarks/results/measuring.md]

"Theirs" is the pytorch/examples-style DCGAN (benchmarks/reference/dcgan_tutorial.py, nets="examples",
as a tutorial user would train it) for --steps steps; its generator writes --n images to
WORKDIR/theirs.npz, as any other program could. Then the commands a user types, as child processes:

    aigc eval --samples WORKDIR/theirs.npz --real fashion-mnist --out WORKDIR/theirs-eval.json
    aigc compare RUN WORKDIR/theirs.npz --n N --out WORKDIR/compare

(RUN: --run, or `aigc train fashion-dcgan --out WORKDIR/fashion-dcgan` when --run is not given).
Writes --out with the commands, their printed tables and their wall times, and copies
compare.png next to it.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def aigc(*args: str) -> tuple[str, float]:
    """Run `aigc ARGS` as a user would; (stdout, seconds). A failure stops the benchmark."""
    tic = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "aigc", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"aigc {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout, time.perf_counter() - tic


def theirs(path: Path, steps: int, n: int, workdir: Path) -> float:
    """Train the examples-style DCGAN and write n of its images as an npz; training seconds."""
    from .reference.common import torchvision_root
    from .reference.dcgan_tutorial import DCGANTutorial

    ref = DCGANTutorial(torchvision_root(workdir / "torchvision"), batch_size=64, seed=0, nets="examples")
    tic = time.perf_counter()
    ref.steps(steps)
    seconds = time.perf_counter() - tic
    x = ref.sample(n, seed=0)[:, 0].numpy()  # uint8 [n, 28, 28], the npz layout `aigc eval --samples` reads
    np.savez_compressed(path, x=x)
    return seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="an aigc run to compare (default: train fashion-dcgan into the workdir)")
    p.add_argument("--steps", type=int, default=3000, help="training steps of theirs")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--workdir", default="runs/bench-measuring")
    p.add_argument("--out", default=str(RESULTS / "measuring.md"))
    args = p.parse_args(argv)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    run = Path(args.run) if args.run else work / "fashion-dcgan"
    command = " ".join(["python -m benchmarks.measuring", *(argv if argv is not None else sys.argv[1:])])
    lines = ["# Measuring a generator aigc did not make", "", f"Command: `{command}`", ""]
    if not args.run:
        _, s = aigc("train", "fashion-dcgan", "--out", str(run), "--quiet")
        lines += [f"`aigc train fashion-dcgan --out {run}`: {s / 60:.1f} min", ""]
    npz = work / "theirs.npz"
    s = theirs(npz, args.steps, args.n, work)
    lines += [f"Theirs: the pytorch/examples-style DCGAN, {args.steps:,} steps ({s / 60:.1f} min of training), "
              f"{args.n:,} images written to `{npz}`.", ""]
    for cmd in (["eval", "--samples", str(npz), "--real", "fashion-mnist", "--out", str(work / "theirs-eval.json")],
                ["compare", str(run), str(npz), "--n", str(args.n), "--out", str(work / "compare"), "--quiet"]):
        out, s = aigc(*cmd)
        lines += [f"`aigc {' '.join(cmd)}` ({s / 60:.1f} min):", "", "```", out.rstrip(), "```", ""]
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(work / "compare" / "compare.png", out_path.with_suffix(".png"))
    lines.append(f"![compare.png]({out_path.with_suffix('.png').name})")
    out_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
