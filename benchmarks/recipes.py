"""Each image recipe as a user runs it: `aigc train RECIPE`, then `aigc eval` on what it made.

    python -m benchmarks.recipes [RECIPE[+KEY=VALUE...] ...] [--n 10000] [--workdir runs/bench-recipes]
                                 [--set KEY=VALUE ...] [--out FILE]

`fashion-dcgan+seed=1+train.precision=bf16` is a variant of a recipe: a row of its own, trained in
a folder of its own; --set applies to every row.

Trains in a child process (peak RSS is its own, see benchmarks/peak_rss.py), evaluates the last
checkpoint against the test split with the shipped Fashion-MNIST feature network, and writes
benchmarks/results/recipes.md (+ .json) with the commands, the machine and its load;
`python -m benchmarks.collect` puts the table in BENCHMARKS.md. Runs are kept in --workdir, so a
recipe already trained there is only evaluated again (delete its folder to retrain).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from aigc.config import load_config
from aigc.files import atomic_write_text
from aigc.run import read_run_config
from aigc.train.checkpoint import find_checkpoint, list_checkpoints

from .quality import aigc_process, last_error, training_run
from .timing import load_average, machine, results_header

RESULTS = Path(__file__).parent / "results"
DEFAULT = ["fashion-gan", "fashion-dcgan", "fashion-wgan-gp", "fashion-cgan", "fashion-cvae"]
METRICS = "fid,kid,is,prdc,conditional,memorization"  # likelihoods: benchmarks/vae_likelihood.py
COLUMNS = [("fid", "FID ↓"), ("kid", "KID ↓"), ("is", "IS"), ("precision", "precision"), ("recall", "recall"),
           ("coverage", "coverage"), ("copies", "copies"), ("label_accuracy", "label accuracy")]


def evaluate(run_dir: Path, n: int, args: list[str] | None = None) -> dict[str, Any]:
    """`aigc eval RUN --n N ARGS` (ARGS: image sections, no floor) -> its flat values and the time it took."""
    out = run_dir / "eval-benchmark.json"
    args = ["--n", str(n), *(["--metrics", METRICS, "--no-floor"] if args is None else args)]
    tic = time.perf_counter()
    proc = aigc_process(["eval", str(run_dir), *args, "--out", str(out)])
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"aigc eval failed: {last_error(err, proc.returncode)}")
    result = json.loads(out.read_text())
    if "sections" in result:
        values = {k: v for s in result["sections"] for k, v in s["values"].items() if "/" not in k}
    else:  # a modality with a flat result (audio)
        values = {k: v for k, v in result.items() if isinstance(v, (int, float, dict))}
    return {"values": values, "eval_s": time.perf_counter() - tic, "checkpoint": result["checkpoint"],
            "eval_command": "aigc eval RUN " + " ".join(args)}


def variant(item: str, overrides: list[str]) -> tuple[str, list[str], str]:
    """`RECIPE[+KEY=VALUE...]` -> (recipe, its overrides after the common ones, a folder name)."""
    recipe, *own = item.split("+")
    return recipe, overrides + own, re.sub(r"[^A-Za-z0-9._-]+", "-", item)


def data_key(data: Any) -> dict[str, Any]:
    """A data section with its source's path resolved, to tell whether a kept run saw the data asked for."""
    key = dataclasses.asdict(data)
    kind, sep, arg = key["source"].partition(":")
    if sep and arg and Path(arg).exists():
        key["source"] = f"{kind}:{Path(arg).resolve()}"
    return key


def settings(section: Any) -> Any:
    """A config section as plain values, without what only changes what the terminal shows."""
    if not dataclasses.is_dataclass(section):
        return section
    return {k: v for k, v in dataclasses.asdict(section).items() if k != "progress"}


def measure(item: str, workdir: Path, n: int, overrides: list[str], eval_args: list[str] | None = None
            ) -> dict[str, Any]:
    recipe, overrides, folder = variant(item, overrides)
    run_dir = (workdir / folder).resolve()
    row: dict[str, Any] = {"recipe": item}
    if not list_checkpoints(run_dir):
        row.update(training_run(run_dir, recipe, overrides))
    else:  # evaluated again; the training child's own peak RSS was kept beside the run
        saved, wanted = read_run_config(run_dir), load_config(recipe, overrides)
        if data_key(saved.data) != data_key(wanted.data):
            raise RuntimeError(f"{run_dir} was trained on {saved.data.source}, not {wanted.data.source}: "
                               "delete it to retrain")
        for section in ("seed", "model", "train"):
            a, b = (settings(getattr(c, section)) for c in (saved, wanted))
            if a != b:
                raise RuntimeError(f"{run_dir} was trained with other {section} settings than {item} has now: "
                                   "delete it to retrain")
        row["command"] = f"(trained earlier in {run_dir})"
        rss = run_dir.parent / f"{run_dir.name}-rss.json"
        if rss.is_file():
            row.update(json.loads(rss.read_text()))
    ckpt = find_checkpoint(run_dir)  # the newest intact checkpoint: the one `aigc eval` evaluates
    state = json.loads((ckpt / "state.json").read_text())
    want = load_config(recipe, overrides).train.steps
    if state["step"] < want:
        raise RuntimeError(f"{run_dir} stopped at step {state['step']} of {want}: resume it with `aigc train "
                           f"--resume --out {run_dir}` or delete it")
    row.update(steps=state["step"], train_minutes=state.get("elapsed", 0.0) / 60, **evaluate(run_dir, n, eval_args))
    row["recipe"] = item  # training_run names the bare recipe; the row is the variant
    return row


def cell(key: str, v: Any) -> str:
    """A metric as the tables print it (FID and IS to 2 places, shares to 3)."""
    return "—" if v is None else f"{v:.2f}" if key in ("fid", "is") else f"{v:.3f}"


def run_info(module: str, argv: list[str] | None, tic: float, load_start: str, **facts: Any) -> dict[str, Any]:
    """What a results table says about how it was made: command, time taken, date, machine, load."""
    return {"command": f"python -m benchmarks.{module} " + " ".join(argv or sys.argv[1:]), **facts,
            "seconds": time.perf_counter() - tic, "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
            "load_start": load_start, "load_end": load_average()}


def measure_each(module: str, argv: list[str] | None, args: Any, render: Any, add: Any) -> int:
    """The loop of a modality's recipe benchmark: each of args.recipes trained and evaluated by `measure`
    (no image sections), `add(row, run_dir, eval_result)` puts the modality's figures in its row, and
    args.out is rewritten after each recipe. A failed recipe is a row with its error; exit 1 then."""
    tic, load_start = time.perf_counter(), load_average()
    rows = []
    for recipe in args.recipes:
        print(f"{recipe} ...", file=sys.stderr, flush=True)
        try:
            row = measure(recipe, args.workdir, args.n, [], eval_args=[])
            run_dir = (args.workdir / variant(recipe, [])[2]).resolve()
            add(row, run_dir, json.loads((run_dir / "eval-benchmark.json").read_text()))
            rows.append(row)
        except Exception as e:  # one failed recipe must not hide the others' rows
            rows.append({"recipe": recipe, "error": f"{type(e).__name__}: {e}"})
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
        write_rows(args.out, rows, run_info(module, argv, tic, load_start, n=args.n), render)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0 if all("error" not in r for r in rows) else 1


def write_rows(out: Path, rows: list[dict[str, Any]], info: dict[str, Any], render: Any) -> None:
    """OUT (the rendered table) and OUT.json (the rows and info behind it)."""
    atomic_write_text(out, render(rows, info) + "\n")
    atomic_write_text(out.with_suffix(".json"), json.dumps({"info": info, "rows": rows}, indent=1))


def render(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    out = results_header("Recipes as a user runs them", info, f"{info['seconds'] / 60:.0f} min") + [
           f"Each recipe trained with `aigc train RECIPE` (its own steps), then `aigc eval RUN --n {info['n']} "
           f"--metrics {METRICS}`: {info['n']:,} samples against {info['n']:,} test images, features of the "
           "shipped Fashion-MNIST classifier; label accuracy only for conditional recipes. Training minutes "
           "are step time recorded in the checkpoint; peak RSS is the training process's own.", "",
           "| recipe | steps | training min | peak RSS | " + " | ".join(h for _, h in COLUMNS) + " |",
           "|---|---:|---:|---:|" + "---:|" * len(COLUMNS)]
    for r in rows:
        if "error" in r:
            out.append(f"| `{r['recipe']}` | failed: {r['error']} |")
            continue
        rss = f"{r['peak_rss_mb']:,.0f} MB" if "peak_rss_mb" in r else "—"
        cells = [cell(k, r["values"].get(k)) for k, _ in COLUMNS]
        out.append(f"| `{r['recipe']}` | {r['steps']:,} | {r['train_minutes']:.1f} | {rss} | " + " | ".join(cells)
                   + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.recipes", description=__doc__.splitlines()[0])
    p.add_argument("recipes", nargs="*", default=DEFAULT, help="recipes, or variants RECIPE+KEY=VALUE")
    p.add_argument("--n", type=int, default=10_000, help="samples and test images per evaluation")
    p.add_argument("--workdir", type=Path, default=Path("runs/bench-recipes"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every recipe")
    p.add_argument("--out", type=Path, default=RESULTS / "recipes.md")
    p.add_argument("--reuse", action="store_true",
                   help="keep the rows --out's .json already holds for the same checkpoint and n (add recipes "
                        "to a table without evaluating the others again)")
    args = p.parse_args(argv)
    tic, load_start = time.perf_counter(), load_average()
    rows, earlier = [], {}
    if args.reuse and args.out.with_suffix(".json").is_file():
        old = json.loads(args.out.with_suffix(".json").read_text())
        if old["info"]["n"] == args.n:
            earlier = {r["recipe"]: r for r in old["rows"] if "error" not in r}
    for recipe in args.recipes:
        print(f"{recipe} ...", file=sys.stderr, flush=True)
        run_dir = (args.workdir / variant(recipe, args.set)[2]).resolve()
        kept = earlier.get(recipe)
        if kept and list_checkpoints(run_dir) and kept.get("checkpoint") == find_checkpoint(run_dir).name:
            rows.append(kept)
            continue
        try:
            rows.append(measure(recipe, args.workdir, args.n, args.set))
        except Exception as e:  # one failed recipe must not hide the others' rows
            rows.append({"recipe": recipe, "error": f"{type(e).__name__}: {e}"})
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
        # rewritten after every recipe: a long run that dies keeps the rows it finished
        write_rows(args.out, rows, run_info("recipes", argv, tic, load_start, n=args.n), render)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
