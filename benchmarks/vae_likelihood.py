"""Test-set NLL of a trained VAE run (ELBO and IWAE bounds), until `aigc eval` reports it itself.

Usage: PYTHONPATH=src python benchmarks/vae_likelihood.py RUN_DIR [--ks 1 100 1000 5000] [--n-images 1000]
Writes RUN_DIR/likelihood.json (--json) and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import aigc
from aigc.data import load_dataset
from aigc.metrics.likelihood import likelihood_markdown, likelihood_report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--ks", type=int, nargs="+", default=[1, 100, 1000, 5000])
    p.add_argument("--n-images", type=int, default=1000, help="first N test images (0: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="likelihood.json", help="file name written in RUN_DIR")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    loaded = aigc.load(args.run_dir)
    data = load_dataset(loaded.config.data)
    tic = time.perf_counter()
    report = likelihood_report(loaded.model, data.test["x"], data.test.get("y"), ks=args.ks,
                               n_images=args.n_images or None, echo=print)
    report["wall_s"] = round(time.perf_counter() - tic, 1)
    report["checkpoint"] = loaded.checkpoint.name
    Path(args.run_dir, args.json).write_text(json.dumps(report, indent=1))
    print(likelihood_markdown(report, f"{loaded.config.data.source} test"))
    print(f"wall time {report['wall_s']} s")


if __name__ == "__main__":
    main()
