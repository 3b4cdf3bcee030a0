"""Timing helpers: contenders interleaved in one process, medians, the machine's description and peak."""
from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass
class Timing:
    """Seconds of each repeat; `work` units (images, FLOPs, tokens) are done per repeat."""

    seconds: list[float] = field(default_factory=list)
    work: float = 1.0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        """Units per second at the median repeat."""
        return self.work / self.median

    @property
    def spread(self) -> str:
        """Lowest-highest rate over the repeats, for the tables."""
        lo, hi = self.work / max(self.seconds), self.work / min(self.seconds)
        return f"{_num(lo)}-{_num(hi)}"


def _num(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def interleaved(contenders: dict[str, tuple[Callable[[], None], float]], repeats: int,
                warmup: int = 1) -> dict[str, Timing]:
    """Time each `fn` (doing `work` units) `repeats` times, taking turns so load drifts hit all alike."""
    for fn, _ in contenders.values():
        for _ in range(warmup):
            fn()
    out = {name: Timing(work=work) for name, (_, work) in contenders.items()}
    for _ in range(repeats):
        for name, (fn, _) in contenders.items():
            tic = time.perf_counter()
            fn()
            out[name].seconds.append(time.perf_counter() - tic)
    return out


def matmul_peak(n: int, dtype: torch.dtype) -> tuple[Callable[[], None], float]:
    """A large square matmul and its FLOP count (2 n^3): the machine's practical peak for `dtype`."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    c = torch.empty(n, n, dtype=dtype)

    def run() -> None:
        torch.mm(a, b, out=c)

    return run, 2.0 * n**3


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def load_average() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine() -> dict[str, str]:
    """What the tables were measured on; the load average says whether others shared the CPU."""
    flags = cpu_flags()
    simd = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    mem = ""
    try:
        for line in open("/proc/meminfo", encoding="utf-8"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return {
        "cpu": cpu_model(), "cores": str(os.cpu_count()), "simd": ", ".join(simd) or "n/a", "memory": mem,
        "python": platform.python_version(), "torch": torch.__version__,
        "torch threads": str(torch.get_num_threads()), "os": platform.platform(),
    }


def results_header(title: str, info: dict, took: str, load_note: str = ".") -> list[str]:
    """The lines every results file opens with: title, the command, the machine and its load."""
    return [f"# {title}", "", f"Command: `{info['command']}`; {took} on {info['date']}.", "",
            "Machine: " + "; ".join(f"{k} {v}" for k, v in info["machine"].items()) + ".",
            f"Load average (1/5/15 min) at start {info['load_start']}, at end {info['load_end']}{load_note}", ""]
