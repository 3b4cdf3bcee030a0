"""The audio recipes as a user runs them: `aigc train RECIPE`, then `aigc eval` on what it made.

    python -m benchmarks.audio [RECIPE[+KEY=VALUE...] ...] [--data wav:PATH] [--n 1000]
                               [--workdir runs/bench-audio] [--out FILE]

Trains each recipe (default fsdd-specgan and fsdd-flow) on the Free Spoken Digit Dataset
(--data; default the copy beside this repository, ../shared/data/fsdd/recordings) in a child
process, evaluates its last checkpoint with `aigc eval RUN --n N` (the shipped FSDD digit network's
features; 300 test clips; label accuracy of samples asked for each digit in turn; the real floor,
training clips against the test clips), times sampling in this process (`aigc.load(run).sample`,
Griffin-Lim included), and writes benchmarks/results/audio.md (+ .json). Runs are kept in
--workdir, so a recipe trained there already (on the same data) is only evaluated again. With
`--data spoken-digits` (and e.g. `--out benchmarks/results/audio-digits-speech.md`) it measures the
recipes on the built-in synthetic data instead, against its own digit network.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .recipes import COLUMNS, cell, measure, run_info, variant, write_rows
from .timing import load_average, results_header

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"
DEFAULT = ["fsdd-specgan", "fsdd-flow"]
TARGETS = {"label_accuracy": 0.85, "is": 6.0, "recall": 0.5}  # issue 17, at <= 20 training minutes


def sampling_speed(run_dir: Path, n: int = 100, warm_up: int = 8) -> float:
    """Clips per second of `aigc.load(run).sample(n)` after one warm-up call of `warm_up` clips
    (network + Griffin-Lim for audio)."""
    import aigc

    gen = aigc.load(run_dir)
    gen.sample(warm_up, seed=1)
    tic = time.perf_counter()
    gen.sample(n, seed=0)
    return n / (time.perf_counter() - tic)


def render(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    first = next((r["values"] for r in rows if "values" in r), {})
    feats = first.get("features") or {}
    fsdd = "fsdd" in str(info["data"]).lower()
    out = results_header(f"Audio recipes on {info['data']}", info, f"{info['seconds'] / 60:.0f} min") + [
        f"Each recipe trained with `aigc train RECIPE --set data.source={info['data']}` (its own steps), then "
        f"`aigc eval RUN --n {info['n']}`: {info['n']:,} samples (labels 0-9 in turn) against the "
        f"{first.get('n_real')} test clips, on the features of the digit network `{feats.get('name')}` "
        f"(test accuracy {feats.get('test_accuracy')}); label accuracy is the share of samples that network "
        f"hears as the digit asked for. The floor row is {info['n']:,} training clips measured the same way. "
        "Training minutes are step time recorded in the checkpoint; sampling is clips/s of "
        "`aigc.load(run).sample(100)` on this machine, Griffin-Lim included."
        + (f" Targets (issue 17, <= 20 training minutes on FSDD): label accuracy >= {TARGETS['label_accuracy']:.0%}, "
           f"IS >= {TARGETS['is']:g}, recall >= {TARGETS['recall']:g}." if fsdd else ""), "",
        "| recipe | steps | training min | peak RSS | sampling clips/s | " + " | ".join(h for _, h in COLUMNS)
        + " | worst digit |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(COLUMNS) + "---|"]
    floor = None
    for r in rows:
        if "error" in r:
            out.append(f"| `{r['recipe']}` | failed: {r['error']} |")
            continue
        v = r["values"]
        floor = floor or v.get("floor")
        rss = f"{r['peak_rss_mb']:,.0f} MB" if "peak_rss_mb" in r else "—"
        per = v.get("per_label_accuracy") or {}
        worst = min(per.items(), key=lambda kv: kv[1]) if per else None
        out.append(f"| `{r['recipe']}` | {r['steps']:,} | {r['train_minutes']:.1f} | {rss} | {r['clips_per_s']:.0f} | "
                   + " | ".join(cell(k, v.get(k)) for k, _ in COLUMNS)
                   + (f" | {worst[0]}: {worst[1]:.0%} |" if worst else " | — |"))
    if floor:
        out.append("| real floor (train vs test) | | | | | " + " | ".join(cell(k, floor.get(k)) for k, _ in COLUMNS)
                   + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.audio", description=__doc__.splitlines()[0])
    p.add_argument("recipes", nargs="*", default=DEFAULT, help="recipes, or variants RECIPE+KEY=VALUE")
    p.add_argument("--data", default=f"wav:{FSDD}", help="the FSDD recordings as a source")
    p.add_argument("--n", type=int, default=1000, help="samples per evaluation")
    p.add_argument("--workdir", type=Path, default=Path("runs/bench-audio"))
    p.add_argument("--out", type=Path, default=RESULTS / "audio.md")
    args = p.parse_args(argv)
    if args.data.startswith("wav:") and not Path(args.data[4:]).is_dir():
        print(f"error: {args.data[4:]} is not a folder (give --data wav:PATH to the FSDD recordings/)", file=sys.stderr)
        return 2
    tic, load_start = time.perf_counter(), load_average()
    rows = []
    for recipe in args.recipes:
        print(f"{recipe} ...", file=sys.stderr, flush=True)
        try:
            row = measure(recipe, args.workdir, args.n, [f"data.source={args.data}"], eval_args=[])
            row["clips_per_s"] = sampling_speed((args.workdir / variant(recipe, [])[2]).resolve())
            rows.append(row)
        except Exception as e:  # one failed recipe must not hide the others' rows
            rows.append({"recipe": recipe, "error": f"{type(e).__name__}: {e}"})
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
        info = run_info("audio", argv, tic, load_start, n=args.n, data=args.data.replace(str(ROOT.parent), ".."))
        write_rows(args.out, rows, info, render)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
