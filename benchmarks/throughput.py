"""Training throughput against tutorial-style references, and achieved GFLOP/s against the matmul peak."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from aigc.config import TrainConfig, load_config
from aigc.data import load_dataset
from aigc.train.loop import Trainer

from .reference.common import torchvision_root
from .reference.dcgan_tutorial import DCGANTutorial
from .reference.mlp_gan_tutorial import MLPGANTutorial
from .timing import Timing, interleaved, matmul_peak

# what each comparison trains: aigc's recipe and the reference written for it
PAIRS = {"mlp-gan": ("fashion-gan", MLPGANTutorial), "dcgan": ("fashion-dcgan", DCGANTutorial)}
# The speed references implement the recipes' nets as they were when written; since issue 18 the
# fashion-dcgan recipe's D has batch norm and minibatch std, which the reference lacks, so the speed
# comparison trains the recipe with the nets both sides share (quality: benchmarks/versus.py).
SAME_NETS = {"fashion-dcgan": ["model.d_norm=none", "model.mbstd=0"]}
TARGETS = {"mlp-gan": 3.0, "dcgan": 2.0}


def speed_variants(full: bool, conv: bool = False) -> list[tuple[str, list[str]]]:
    """aigc's default and each speed switch TrainConfig offers (compile takes minutes: full runs, MLP only;
    the memory layout matters only for convolutions)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    out = [("aigc (fp32, default)", [])]
    if "channels_last" in fields and conv:
        out.append(("aigc fp32, NCHW (channels_last off)", ["train.channels_last=false"]))
    if "precision" in fields:
        out.append(("aigc bf16 autocast", ["train.precision=bf16"]))
    if "compile" in fields and full:
        out.append(("aigc torch.compile", ["train.compile=true"]))
    return out


class Bench:
    """Builds trainers on shared data in one scratch folder, with the benchmark's thread count."""

    def __init__(self, workdir: Path, threads: int, data_root: Path | None = None):
        self.workdir, self.threads = workdir, threads
        self.data_root = data_root
        self._data: dict[Any, Any] = {}
        self._count = 0

    def config(self, recipe: str, overrides: list[str]):
        extra = [f"data.root={self.data_root}"] if self.data_root else []
        return load_config(recipe, ["train.progress=false", f"train.threads={self.threads}", *extra,
                                    *SAME_NETS.get(recipe, []), *overrides])

    def trainer(self, recipe: str, overrides: list[str]) -> Trainer:
        cfg = self.config(recipe, overrides)
        key = repr(cfg.data)
        if key not in self._data:
            self._data[key] = load_dataset(cfg.data)
        self._count += 1
        tr = Trainer(cfg, self.workdir / f"run{self._count}", data=self._data[key], echo=lambda m: None)
        tr.model.train()
        return tr


def _steps(obj: Any, n: int):
    step = obj.train_step if isinstance(obj, Trainer) else obj.step

    def run() -> None:
        for _ in range(n):
            step()

    return run


def training_throughput(bench: Bench, pair: str, steps: int, repeats: int, full: bool) -> dict[str, Any]:
    """Images/s of aigc's recipe (and its speed switches) vs the tutorial reference, interleaved."""
    recipe, Reference = PAIRS[pair]
    batch = bench.config(recipe, []).train.batch_size
    contenders = {}
    for label, overrides in speed_variants(full, conv=pair == "dcgan"):
        contenders[label] = (_steps(bench.trainer(recipe, overrides), steps), steps * batch)
    root = torchvision_root(bench.workdir / "torchvision", bench.data_root or Path("/usr/share/datasets/fashion-mnist"))
    contenders["tutorial reference"] = (_steps(Reference(root, batch_size=batch), steps), steps * batch)
    torch.set_num_threads(bench.threads)
    times = interleaved(contenders, repeats, warmup=1)
    ref = times["tutorial reference"].rate
    rows = [{"contender": k, "images_per_s": t.rate, "range": t.spread, "ratio": t.rate / ref}
            for k, t in times.items()]
    return {"pair": pair, "recipe": recipe, "batch": batch, "steps_per_repeat": steps, "repeats": repeats,
            "target": TARGETS[pair], "rows": rows}


def step_flops(step) -> float:
    """FLOPs of one real training step `step()` (forward + backward matmuls and convolutions), counted by torch."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


def gflops(bench: Bench, batches: dict[str, list[int]], steps: int, repeats: int, peak_n: int) -> dict[str, Any]:
    """Achieved GFLOP/s of each model's training step per batch size, next to the fp32 and bf16 peak."""
    contenders: dict[str, tuple[Any, float]] = {
        "matmul fp32": matmul_peak(peak_n, torch.float32),
        "matmul bf16": matmul_peak(peak_n, torch.bfloat16),
    }
    labels = {}
    for pair, sizes in batches.items():
        recipe = PAIRS[pair][0]
        for b in sizes:
            tr = bench.trainer(recipe, [f"train.batch_size={b}"])
            flops = step_flops(tr.train_step)
            label = f"{pair} batch {b}"
            labels[label] = (pair, b, flops)
            contenders[label] = (_steps(tr, steps), flops * steps)
    torch.set_num_threads(bench.threads)
    times: dict[str, Timing] = interleaved(contenders, repeats, warmup=1)
    fp32, bf16 = times["matmul fp32"].rate / 1e9, times["matmul bf16"].rate / 1e9
    rows = []
    for label, (pair, b, flops) in labels.items():
        t = times[label]
        rate = t.rate / 1e9
        rows.append({"model": pair, "batch": b, "gflop_per_step": flops / 1e9,
                     "ms_per_step": 1000 * t.median / steps, "images_per_s": b * steps / t.median,
                     "gflops": rate, "share_fp32": rate / fp32, "share_bf16": rate / bf16})
    return {"peak_fp32": fp32, "peak_bf16": bf16, "peak_n": peak_n, "rows": rows}
