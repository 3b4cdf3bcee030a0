"""Behaviour unchanged? Train every recipe briefly (and the demo in full) and compare weights tensor for tensor.

    python -m benchmarks.same_weights train DIR [--full-demo]   # with the code you want to pin down
    python -m benchmarks.same_weights compare BEFORE AFTER         # torch.equal on every tensor

Run `train` once at the commit before a refactor (e.g. in a `git worktree`, with
PYTHONPATH=WORKTREE/src) and once after it; `compare` then names every recipe whose final weights
or optimizer state differ. Key renames can be mapped with --rename OLD=NEW.
Each short run uses the recipe as shipped with train.steps cut to STEPS (default 40) and
threads 1, so it exercises each family's real step (losses, EMA, schedules, clipping).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

SHORT = ["digits-gan", "digits-vae", "fashion-gan", "fashion-dcgan", "fashion-wgan-gp", "fashion-cgan",
         "fashion-vae", "fashion-vae-binarized", "fashion-cvae", "names-rnn", "names-gru", "names-lstm",
         "names-transformer"]


def train(out: Path, steps: int, full_demo: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(r, [f"--steps={steps}", "--set", "train.threads=1", "--set", "train.ckpt_every=20",
                 "--set", "train.sample_every=20", "--set", "train.log_every=10"]) for r in SHORT]
    if full_demo:
        jobs.append(("fashion-dcgan", []))  # exactly what `make demo` runs
    for recipe, extra in jobs:
        folder = out / (recipe if extra else "demo")
        if folder.exists():
            print(f"{folder} exists: skipped")
            continue
        cmd = [sys.executable, "-m", "aigc", "train", recipe, "--out", str(folder), "--quiet", *extra]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)


def final_checkpoint(run: Path) -> Path:
    ckpts = sorted(p for p in (run / "checkpoints").glob("step-*") if (p / "COMPLETE").is_file())
    return ckpts[-1]


def compare(before: Path, after: Path, renames: dict[str, str]) -> int:
    import torch
    from safetensors.torch import load_file

    bad = 0
    for run in sorted(p for p in before.iterdir() if (p / "checkpoints").is_dir()):
        other = after / run.name
        if not other.is_dir():
            print(f"{run.name:24s} missing in {after}")
            bad += 1
            continue
        a_ck, b_ck = final_checkpoint(run), final_checkpoint(other)
        diffs = []
        for name in ("model.safetensors", "optim.safetensors"):
            a, b = load_file(str(a_ck / name)), load_file(str(b_ck / name))
            a = {renames.get(k, k): v for k, v in a.items()}
            if set(a) != set(b):
                diffs.append(f"{name}: keys differ ({sorted(set(a) ^ set(b))[:3]})")
                continue
            diffs += [f"{name}:{k}" for k in a if not torch.equal(a[k], b[k])]
        status = "equal" if not diffs else f"DIFFERENT ({len(diffs)} tensors, e.g. {diffs[:2]})"
        print(f"{run.name:24s} {a_ck.name}  {status}")
        bad += bool(diffs) or a_ck.name != b_ck.name
    return 1 if bad else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("out", type=Path)
    t.add_argument("--steps", type=int, default=40)
    t.add_argument("--full-demo", action="store_true", help="also train fashion-dcgan in full (make demo)")
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    c.add_argument("--rename", action="append", default=[], metavar="OLD=NEW")
    args = p.parse_args()
    if args.cmd == "train":
        train(args.out, args.steps, args.full_demo)
        return 0
    return compare(args.before, args.after, dict(r.split("=", 1) for r in args.rename))


if __name__ == "__main__":
    raise SystemExit(main())
