"""`aigc serve` under load, on loopback: requests/s, latency, refusals and memory at 1, 8 and 32 clients.

    python -m benchmarks.serve [--dcgan RUN] [--text RUN] [--clients 1 8 32] [--seconds 60] [--n 16]
                               [--workdir runs/bench-serve] [--out benchmarks/results/serve.md]

1. Baseline: `aigc.load(run).sample(n, seed=i)` in this process, for --seconds / 3, per model (the
   server is not running yet): samples/s with nothing in between.
2. The server (`aigc serve`, its defaults: 1 worker per model, queue 16, 60 s limit) in its own
   process; for each model and each client count, that many threads each send requests of n samples
   (PNG for images, JSON for text) back to back for --seconds, seeds all different. Per level:
   requests/s, served samples/s and their share of the baseline, p50/p99 latency of the answered
   and of the refused (429/503) requests, the share refused, any 5xx, and the server's RSS
   (VmRSS from /proc) before and after.

The clients run on the same 2 cores as the server, so they take CPU from it: the served share of the
baseline is a lower bound of what a separate client machine would see. Runs missing from --dcgan /
--text are trained into --workdir first (fashion-dcgan and names-transformer, short: serving cost is
the architecture's, not the training's).
"""
from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from aigc.files import atomic_write_text
from aigc.train.checkpoint import list_checkpoints

from .timing import load_average, machine, results_header

RESULTS = Path(__file__).parent / "results"
SHORT = {"fashion-dcgan": ["train.steps=300"], "names-transformer": ["train.steps=500"]}


def ensure_run(path: Path | None, recipe: str, workdir: Path, echo) -> Path:
    if path is not None:
        return path
    run = workdir / recipe
    if not list_checkpoints(run):
        echo(f"training {recipe} ({' '.join(SHORT[recipe])}) into {run} ...")
        args = [sys.executable, "-m", "aigc", "train", recipe, "--out", str(run), "--quiet"]
        for o in SHORT[recipe]:
            args += ["--set", o]
        subprocess.run(args, check=True)
    return run


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat, clock ticks)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def baseline(run: Path, n: int, seconds: float) -> dict[str, float]:
    import aigc

    loaded = aigc.load(run)
    loaded.sample(n, seed=0)  # warm-up
    count, tic, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - tic < seconds:
        loaded.sample(n, seed=count + 1)
        count += 1
    took, cpu = time.perf_counter() - tic, time.process_time() - cpu
    return {"calls": count, "seconds": took, "samples_per_s": count * n / took, "ms_per_call": 1000 * took / count,
            "cpu_s": cpu, "samples_per_cpu_s": count * n / cpu}


class ServeProcess:
    """`python -m aigc serve ARGS --port 0` in its own process, as a user runs it; `url` once it answers,
    `lines` what it wrote to stderr (one line per request). Shared by this benchmark, the page
    screenshot and the tests of the served process."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, headers: dict[str, str] | None = None):
        import os

        self.proc = subprocess.Popen([sys.executable, "-m", "aigc", "serve", *args, "--port", "0"],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                     env={**os.environ, **(env or {})})
        self.url, self.lines = "", []
        ready = threading.Event()

        def read() -> None:
            for line in self.proc.stderr:
                self.lines.append(line.rstrip("\n"))
                m = re.search(r"on (http://[\d.]+:\d+)", line)
                if m and not self.url:
                    self.url = m.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(300) or not self.url:
            self.stop()
            raise RuntimeError("aigc serve did not start: " + "\n".join(self.lines))
        for _ in range(600):  # the socket is bound before uvicorn starts: wait until the app answers
            try:
                if httpx.get(self.url + "/health", timeout=5, headers=headers).status_code in (200, 401):
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("aigc serve never answered: " + "\n".join(self.lines))

    @property
    def statuses(self) -> list[int]:
        """The status of every request the server logged."""
        return [int(m.group(1)) for m in (re.search(r"status=(\d+)", x) for x in self.lines) if m]

    def stop(self, timeout: float = 90) -> int:
        """Ctrl-C, as a user stops it; its exit code (killed after `timeout` s: -9, its last lines printed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                print(f"aigc serve did not stop in {timeout:g} s; its last lines:\n" + "\n".join(self.lines[-10:]))
        return self.proc.wait()


def load_level(url: str, model: str, body: dict[str, Any], clients: int, seconds: float) -> list[tuple[int, float]]:
    """`clients` threads sending requests back to back for `seconds`: (status, seconds) of each."""
    out: list[tuple[int, float]] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    seeds = iter(range(10**9))

    def client() -> None:
        with httpx.Client(timeout=120) as c:
            while time.monotonic() < stop:
                with lock:
                    seed = next(seeds)
                tic = time.perf_counter()
                r = c.post(f"{url}/models/{model}/samples", json={**body, "seed": seed})
                took = time.perf_counter() - tic
                with lock:
                    out.append((r.status_code, took))
                if r.status_code in (429, 503):  # a refused client waits as the server asked, as HTTP clients should
                    time.sleep(min(float(r.headers.get("retry-after", 1)), stop - time.monotonic()) if
                               stop > time.monotonic() else 0)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def summarise(results: list[tuple[int, float]], seconds: float, n: int, base: float) -> dict[str, Any]:
    ok = np.array([t for s, t in results if s == 200])
    refused = np.array([t for s, t in results if s in (429, 503)])

    def p(a: np.ndarray, q: float) -> float:
        return float(np.percentile(a, q) * 1000) if len(a) else float("nan")

    served = len(ok) * n / seconds
    return {"requests": len(results), "ok": len(ok), "refused": len(refused),
            "errors_5xx": sum(1 for s, _ in results if s >= 500 and s != 503),
            "other": sum(1 for s, _ in results if s not in (200, 429, 503) and s < 500),
            "req_per_s": len(results) / seconds, "samples_per_s": served, "share_of_baseline": served / base,
            "p50_ms": p(ok, 50), "p99_ms": p(ok, 99), "refused_p50_ms": p(refused, 50),
            "refused_p99_ms": p(refused, 99), "refused_share": len(refused) / max(1, len(results))}


def render(info: dict[str, Any], base: dict[str, dict], levels: list[dict[str, Any]]) -> str:
    out = results_header("aigc serve under load (loopback)", info, f"{info['seconds'] / 60:.0f} min")
    out += [f"Each request asks for n = {info['n']} samples (images as one PNG grid, names as JSON). Server: "
            f"`aigc serve` with {info.get('workers', 1)} sampling worker(s) per model, queue 16, 60 s limit, in its "
            "own process; clients: threads of this process on the same 2 cores.", "",
            "## In-process baseline (`aigc.load(run).sample(n)`)", "",
            "| model | run | samples/s | ms per call | samples per CPU-second |", "|---|---|---:|---:|---:|"]
    out += [f"| {m} | `{b['run']}` | {b['samples_per_s']:.0f} | {b['ms_per_call']:.1f} | {b['samples_per_cpu_s']:.0f} |"
            for m, b in base.items()]
    out += ["", "## Served", "",
            "Samples/s counts answered requests; the CPU columns are the cores the server and the clients "
            "each used over the level (2 = both cores), and the samples served per second of server CPU "
            "against the baseline's per CPU-second (what HTTP, JSON/PNG and queueing cost beyond sampling). "
            "A refused client waits the Retry-After the server sent before it asks again.", "",
            "| model | clients | req/s | samples/s | % of baseline | server / client cores | per server CPU-s, % of "
            "baseline | p50 ms | p99 ms | refused | refused p99 ms | 5xx | RSS before → after MB |",
            "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in levels:
        out.append(f"| {r['model']} | {r['clients']} | {r['req_per_s']:.1f} | {r['samples_per_s']:.0f} | "
                   f"{100 * r['share_of_baseline']:.0f}% | {r['server_cpu_s'] / info['level_s']:.2f} / "
                   f"{r['client_cpu_s'] / info['level_s']:.2f} | {100 * r['cpu_share_of_baseline']:.0f}% | "
                   f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | "
                   f"{100 * r['refused_share']:.0f}% | {r['refused_p99_ms']:.1f} | {r['errors_5xx']} | "
                   f"{r['rss_before_mb']:.0f} → {r['rss_after_mb']:.0f} |")
    first = levels[0]["rss_before_mb"] if levels else float("nan")
    last = levels[-1]["rss_after_mb"] if levels else float("nan")
    out += ["", f"Server RSS: {info['rss_start_mb']:.0f} MB once started, {first:.0f} MB after 3 s of warm-up "
            f"requests per model, {last:.0f} MB after every level ({100 * (last / first - 1):+.1f}% over the "
            f"levels, {100 * (last / info['rss_start_mb'] - 1):+.1f}% since the start). 5xx answers logged by "
            f"the server: {info['server_5xx']}.", ""]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.splitlines()[0])
    p.add_argument("--dcgan", type=Path, help="an image run (default: fashion-dcgan, 300 steps, trained into --workdir)")
    p.add_argument("--text", type=Path, help="a text run (default: names-transformer, 500 steps)")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--n", type=int, default=16)
    p.add_argument("--workers-per-model", type=int, default=1, help="the server's sampling threads per model")
    p.add_argument("--models", nargs="+", default=["dcgan", "names"], choices=["dcgan", "names"])
    p.add_argument("--workdir", type=Path, default=Path("runs/bench-serve"))
    p.add_argument("--out", type=Path, default=RESULTS / "serve.md")
    args = p.parse_args(argv)
    tic, load_start = time.perf_counter(), load_average()

    def echo(m: str) -> None:
        print(m, file=sys.stderr, flush=True)

    models = {"dcgan": ensure_run(args.dcgan, "fashion-dcgan", args.workdir, echo),
              "names": ensure_run(args.text, "names-transformer", args.workdir, echo)}
    models = {m: models[m] for m in args.models}
    bodies = {"dcgan": {"n": args.n, "format": "png"}, "names": {"n": args.n, "format": "json"}}
    base = {}
    for m, run in models.items():
        echo(f"baseline {m} ...")
        base[m] = {"run": str(run), **baseline(run, args.n, args.seconds / 3)}
    server = ServeProcess(*[f"{k}={v}" for k, v in models.items()], "--workers-per-model", str(args.workers_per_model))
    levels = []
    try:
        pid = server.proc.pid
        rss_start = rss_mb(pid)
        for m in models:  # warm-up: the first requests allocate what every later one reuses
            load_level(server.url, m, bodies[m], 2, 3.0)
        rss_warm = rss_mb(pid)
        for m in models:
            for k in args.clients:
                before, server_cpu, client_cpu = rss_mb(pid), cpu_seconds(pid), time.process_time()
                echo(f"{m}: {k} clients for {args.seconds:.0f} s ...")
                res = load_level(server.url, m, bodies[m], k, args.seconds)
                row = {"model": m, "clients": k, **summarise(res, args.seconds, args.n, base[m]["samples_per_s"]),
                       "rss_before_mb": before, "rss_after_mb": rss_mb(pid),
                       "server_cpu_s": cpu_seconds(pid) - server_cpu, "client_cpu_s": time.process_time() - client_cpu}
                row["samples_per_server_cpu_s"] = row["ok"] * args.n / max(row["server_cpu_s"], 1e-9)
                row["cpu_share_of_baseline"] = row["samples_per_server_cpu_s"] / base[m]["samples_per_cpu_s"]
                levels.append(row)
                echo(f"  {row['req_per_s']:.1f} req/s, {100 * row['share_of_baseline']:.0f}% of baseline, "
                     f"p99 {row['p99_ms']:.0f} ms, refused {100 * row['refused_share']:.0f}% "
                     f"(p99 {row['refused_p99_ms']:.1f} ms)")
    finally:
        code = server.stop()
    info = {"command": "python -m benchmarks.serve " + " ".join(argv if argv is not None else sys.argv[1:]),
            "rss_start_mb": rss_start, "rss_warm_mb": rss_warm,
            "n": args.n, "workers": args.workers_per_model, "level_s": args.seconds, "seconds": time.perf_counter() - tic, "date": time.strftime("%Y-%m-%d %H:%M"),
            "machine": machine(), "load_start": load_start, "load_end": load_average(),
            "server_exit": code, "server_5xx": sum(1 for s in server.statuses if s >= 500)}
    atomic_write_text(args.out, render(info, base, levels))
    atomic_write_text(args.out.with_suffix(".json"), json.dumps({"info": info, "baseline": base, "levels": levels},
                                                                indent=1))
    echo(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
