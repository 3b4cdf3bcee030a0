"""The video recipes as a user runs them: `aigc train RECIPE`, then `aigc eval RUN --n N` with its floor.

    python -m benchmarks.video [RECIPE[+KEY=VALUE...] ...] [--n 500] [--workdir runs/bench-video] [--out FILE]

Trains each recipe (default moving-fashion, the space-time flow, and moving-fashion-mocogan, the GAN)
in a child process, evaluates its last checkpoint with `aigc eval RUN --n N` (frame FID, clip FD,
motion, frozen clips, identity changes, label accuracy; the real floor: N training clips against
the test clips), times sampling in this process, and writes benchmarks/results/video.md (+ .json)
with the issue's targets beside the figures. Runs are kept in --workdir: a recipe trained there
already (with the same settings) is only evaluated again.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .audio import sampling_speed
from .recipes import measure_each
from .timing import results_header

RESULTS = Path(__file__).parent / "results"
DEFAULT = ["moving-fashion", "moving-fashion-mocogan"]
TARGETS = {"frozen": 0.05, "identity_changes": 0.10, "displacement_w1_rel": 0.20}  # issue 20, <= 30 training min
FRAME_FID_FACTOR = 3.0  # frame FID within 3x of the best image recipe's FID
COLUMNS = [("frame_fid", "frame FID ↓"), ("clip_fd", "clip FD ↓"), ("displacement_w1_rel", "motion W1 / mean ↓"),
           ("mean_step_px", "mean step px"), ("frozen", "frozen ↓"), ("identity_changes", "identity changes ↓"),
           ("label_accuracy", "label acc. (clip net)"), ("frame_label_accuracy", "label acc. (frames)")]


def best_image_fid() -> tuple[float, str] | None:
    """The lowest FID of an image recipe in benchmarks/results/recipes*.json (n = 10,000), and its recipe."""
    found = []
    for path in RESULTS.glob("recipes*.json"):
        for row in json.loads(path.read_text()).get("rows", []):
            fid = (row.get("values") or {}).get("fid")
            if fid is not None:
                found.append((float(fid), f"{row['recipe']} ({path.name})"))
    return min(found) if found else None


def _cell(key: str, v: Any) -> str:
    if v is None:
        return "—"
    if key in ("frozen", "identity_changes", "label_accuracy", "frame_label_accuracy"):
        return f"{v:.1%}"
    return f"{v:.2f}" if key in ("frame_fid", "clip_fd", "mean_step_px") else f"{v:.3f}"


def verdicts(v: dict[str, Any], best: tuple[float, str] | None) -> str:
    """Which of the issue's targets the row meets, in words."""
    out = [f"{k.replace('_', ' ')} {'met' if v.get(k) is not None and v[k] < t else 'missed'}"
           for k, t in TARGETS.items()]
    if best and v.get("frame_fid") is not None:
        ratio = v["frame_fid"] / best[0]
        out.append(f"frame FID {ratio:.1f}x the best image FID ({'met' if ratio <= FRAME_FID_FACTOR else 'missed'})")
    return "; ".join(out)


def _held_out(row: dict[str, Any]) -> str:
    f = row.get("features") or {}
    clip, frame = f.get("clip_test_accuracy"), f.get("frame_test_accuracy")
    return (f"clip net {clip:.1%}" if clip is not None else "clip net —") + \
        (f", frame net {frame:.1%}" if frame is not None else ", frame net —")


def render(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    best = best_image_fid()
    first = next((r for r in rows if "values" in r), {})
    out = results_header("Video recipes", info, f"{info['seconds'] / 60:.0f} min") + [
        f"Each recipe trained with `aigc train RECIPE` (its own steps), then `aigc eval RUN --n {info['n']}`: "
        f"{info['n']:,} sampled clips (labels in turn) against the {first.get('n_real', '?')} test clips. Frame FID: "
        "every frame on the frame network (aigc.metrics.features trained on real frames, labelled with the item's "
        "class); clip FD: on a 3-D conv net trained on the real clips (class + frames in order or shuffled); "
        "motion: the centre of brightness's step from frame to frame, W1 distance to the real steps over their "
        "mean; frozen: clips whose centre moves < 0.25 px a frame; identity changes: the frame classifier's "
        "majority class differs between a clip's halves. The floor row is the same measures on "
        f"{info['n']:,} training clips (which both networks trained on: their held-out accuracies, on test "
        f"clips, are {_held_out(first)}). Training minutes are step time recorded in the checkpoint.",
        "",
        f"Targets (issue 20, <= 30 training minutes): frozen < {TARGETS['frozen']:.0%}, identity changes < "
        f"{TARGETS['identity_changes']:.0%}, motion W1 within {TARGETS['displacement_w1_rel']:.0%} of the real mean "
        f"step, frame FID within {FRAME_FID_FACTOR:g}x of the best image recipe's FID"
        + (f" ({best[0]:.2f}, {best[1]}; a different network and n, so the ratio is indicative only)." if best else "."),
        "",
        "| recipe | steps | training min | sampling clips/s | " + " | ".join(h for _, h in COLUMNS) + " |",
        "|---|---:|---:|---:|" + "---:|" * len(COLUMNS)]
    floor = None
    notes = []
    for r in rows:
        if "error" in r:
            out.append(f"| `{r['recipe']}` | failed: {r['error']} |")
            continue
        v = r["values"]
        floor = floor or r.get("floor")
        out.append(f"| `{r['recipe']}` | {r['steps']:,} | {r['train_minutes']:.1f} | {r['clips_per_s']:.1f} | "
                   + " | ".join(_cell(k, v.get(k)) for k, _ in COLUMNS) + " |")
        notes.append(f"- `{r['recipe']}`: {verdicts(v, best)}.")
    if floor:
        out.append("| real floor (train vs test) | | | | " + " | ".join(_cell(k, floor.get(k)) for k, _ in COLUMNS) + " |")
    return "\n".join(out + [""] + notes)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.video", description=__doc__.splitlines()[0])
    p.add_argument("recipes", nargs="*", default=DEFAULT, help="recipes, or variants RECIPE+KEY=VALUE")
    p.add_argument("--n", type=int, default=500, help="clips per evaluation (and training clips in the floor)")
    p.add_argument("--workdir", type=Path, default=Path("runs/bench-video"))
    p.add_argument("--out", type=Path, default=RESULTS / "video.md")
    args = p.parse_args(argv)

    def add(row: dict[str, Any], run_dir: Path, result: dict[str, Any]) -> None:
        row["n_real"], row["features"] = result.get("n_real"), result.get("features")
        row["floor"] = {k: v for s in (result.get("floor") or {}).get("sections", []) for k, v in s["values"].items()}
        row["clips_per_s"] = sampling_speed(run_dir, n=32, warm_up=4)

    return measure_each("video", argv, args, render, add)

if __name__ == "__main__":
    raise SystemExit(main())
