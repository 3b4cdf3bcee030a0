"""Long-run memory: train the document's GAN for 10k steps and compare resident memory at 1k and 10k.

`python -m benchmarks.memory_soak [--steps 10000] [--threads N]` writes benchmarks/results/memory.md.
Growth above 5% between step 1,000 and the last step would point at a leak (logs, samples, checkpoints).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from aigc.config import load_config
from aigc.train.loop import Trainer

from .timing import load_average, machine

RESULTS = Path(__file__).parent / "results"


def rss_mb() -> float:
    """Resident memory of this process now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def soak(steps: int, threads: int | None) -> dict:
    overrides = [f"train.steps={steps}", "train.progress=false", "train.log_every=100",
                 "train.sample_every=1000", "train.ckpt_every=1000"]
    if threads:
        overrides.append(f"train.threads={threads}")
    cfg = load_config("fashion-gan", overrides)
    marks = sorted({min(1000, steps), steps} | set(range(2000, steps, 2000)))
    seen: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp) / "run", echo=lambda m: None)
        step_fn = trainer.train_step

        def watched():
            logs = step_fn()
            if trainer.step in marks and trainer.step not in seen:
                seen[trainer.step] = rss_mb()
            return logs

        trainer.train_step = watched
        tic = time.perf_counter()
        trainer.fit()
        wall = time.perf_counter() - tic
    first, last = seen[marks[0]], seen[marks[-1]]
    return {"steps": steps, "rss_mb": seen, "growth": (last - first) / first, "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--out", default=str(RESULTS / "memory.md"))
    args = ap.parse_args()
    r = soak(args.steps, args.threads)
    marks = sorted(r["rss_mb"])
    lines = ["## Memory over a long run (`python -m benchmarks.memory_soak`)", "",
             "Machine: " + "; ".join(f"{k} {v}" for k, v in machine().items()) + f"; load average at the end {load_average()}.", "",
             "The document's MLP GAN (`fashion-gan`) on Fashion-MNIST, batch 64, a sample grid and a checkpoint "
             f"every 1,000 steps; {r['steps']:,} steps in {r['wall_s']:.0f} s.", "",
             "| step | resident memory (MB) |", "|---:|---:|"]
    lines += [f"| {s:,} | {r['rss_mb'][s]:.1f} |" for s in marks]
    verdict = "within" if r["growth"] < 0.05 else "ABOVE"
    lines += ["", f"Growth from step {marks[0]:,} to {marks[-1]:,}: {r['growth']:+.2%} ({verdict} the 5% bound)."]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.out).with_suffix(".json").write_text(json.dumps(r, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
