"""A real training run in a child process: its peak resident memory, and FID against training minutes."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def last_error(err: str | None, code: int | None) -> str:
    """What a failed `aigc` child said last on stderr (its one-line error), or its exit code."""
    return ((err or "").strip().splitlines() or [f"exit code {code}"])[-1]


def aigc_process(args: list[str], **kw: Any) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "aigc", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def training_run(run_dir: Path, recipe: str, overrides: list[str]) -> dict[str, Any]:
    """`aigc train` as a user runs it, in a child process that reports its own peak RSS (VmHWM).

    Not the child's kernel rusage: that inherits this (large) process's peak; see benchmarks/peak_rss.py.
    """
    run_dir = Path(run_dir).resolve()  # the child runs from the repository root
    args = ["train", recipe, "--out", str(run_dir), "--quiet"]
    for o in overrides:
        args += ["--set", o]
    report = run_dir.parent / f"{run_dir.name}-rss.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.unlink(missing_ok=True)
    tic = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.peak_rss", str(report), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    _, err = proc.communicate()
    wall = time.perf_counter() - tic
    if proc.returncode != 0 or not report.is_file():
        raise RuntimeError(f"aigc train failed ({proc.returncode}): {last_error(err, proc.returncode)}")
    rss = json.loads(report.read_text())
    return {"recipe": recipe, "overrides": overrides, **rss, "wall_s": wall, "command": "aigc " + " ".join(args)}


def _find_fid(obj: Any) -> float | None:
    """The first number under a key named like 'fid' in an eval JSON of unknown nesting."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if str(k).lower() == "fid" and isinstance(v, (int, float)):
                return float(v)
            if str(k).lower() == "fid" and isinstance(v, dict):
                for kk in ("value", "mean", "fid"):
                    if isinstance(v.get(kk), (int, float)):
                        return float(v[kk])
        for v in obj.values():
            found = _find_fid(v)
            if found is not None:
                return found
    if isinstance(obj, list):
        for v in obj:
            found = _find_fid(v)
            if found is not None:
                return found
    return None


def fid_curve(run_dir: Path, n: int) -> dict[str, Any]:
    """`aigc eval` on each kept checkpoint (a run folder holding only that one) -> FID vs training time."""
    if importlib.util.find_spec("aigc.metrics") is None:
        return {"skipped": "needs aigc.metrics and `aigc eval` (the evaluation issue); rerun after it lands"}
    points = []
    if not list((run_dir / "checkpoints").glob("step-*/COMPLETE")):
        return {"skipped": f"no complete checkpoint in {run_dir} (did the training run fail?)"}
    for ckpt in sorted((run_dir / "checkpoints").glob("step-*")):
        if not (ckpt / "COMPLETE").is_file():
            continue
        state = json.loads((ckpt / "state.json").read_text())
        view = run_dir.parent / f"eval-{ckpt.name}"
        shutil.rmtree(view, ignore_errors=True)
        (view / "checkpoints").mkdir(parents=True)
        for name in ("config.yaml", "data.json"):
            shutil.copy(run_dir / name, view / name)
        shutil.copytree(ckpt, view / "checkpoints" / ckpt.name)
        out = view / "eval.json"
        tic = time.perf_counter()
        proc = aigc_process(["eval", str(view), "--n", str(n), "--out", str(out), "--metrics", "fid", "--no-floor"])
        _, err = proc.communicate()
        if proc.returncode != 0 or not out.is_file():
            return {"skipped": f"`aigc eval` failed on {ckpt.name}: {last_error(err, proc.returncode)}",
                    "points": points}
        fid = _find_fid(json.loads(out.read_text()))
        if fid is None:
            return {"skipped": f"no 'fid' in {out.name}", "points": points}
        points.append({"step": state["step"], "train_minutes": state.get("elapsed", 0.0) / 60, "fid": fid,
                       "eval_s": time.perf_counter() - tic})
    return {"points": points, "n": n}


def plot_fid(curves: dict[str, list[dict[str, Any]]], path: Path, title: str) -> Path:
    """FID against training minutes, one line per label (e.g. fp32 and bf16)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    for label, points in curves.items():
        ax.plot([p["train_minutes"] for p in points], [p["fid"] for p in points], "o-", label=label)
        for p in points:
            ax.annotate(str(p["step"]), (p["train_minutes"], p["fid"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.set_xlabel("training minutes (steps only)")
    ax.set_ylabel("FID (lower is better)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
