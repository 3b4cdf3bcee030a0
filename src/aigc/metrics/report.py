"""Showing evaluation results: a terminal table, a markdown table and the run report's section."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..files import atomic_write_text

BEGIN, END = "<!-- aigc eval: begin -->", "<!-- aigc eval: end -->"
LOWER_IS_BETTER = {"fid", "kid", "inception_fid", "copies"}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


def _value(v: Any, interval: list[float] | None) -> str:
    return _fmt(v) + (f" [{_fmt(interval[0])}, {_fmt(interval[1])}]" if interval else "")


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(section, metric, value, floor) rows, a value followed by its 95% interval where it has one;
    the floor column is empty without a floor."""
    floor = {(s["name"], k): _value(v, (s.get("intervals") or {}).get(k))
             for s in (result.get("floor") or {}).get("sections", []) for k, v in s["values"].items()}
    out = []
    for s in result["sections"]:
        if not s["values"]:
            out.append((s["name"], "-", s["note"], ""))
        for k, v in s["values"].items():
            out.append((s["name"], k, _value(v, (s.get("intervals") or {}).get(k)), floor.get((s["name"], k), "")))
    return out


COLLAPSE = 0.1   # recall below this, with precision (or a conditional model's label accuracy) above PRECISE
PRECISE = 0.5
COPIES = 0.05    # share of "copies" above which samples look memorized (real held-out data: ~0 by construction)
FAR = 10.0       # FID this many times the real floor's: the samples are far from the data
SMALL_REAL = 1000  # fewer real images than this on the real side: say the numbers are rough
UNIFORM_BITS = 8.0  # bits/dim of a uniform model of 8-bit pixels, which needs no training


def _values(result: dict[str, Any] | None) -> dict[str, float]:
    return {k: x for s in (result or {}).get("sections", []) for k, x in s["values"].items()}


def diagnose(result: dict[str, Any]) -> list[str]:
    """Plain-language warnings the numbers support: too few real images to trust them, mode
    collapse (the document's "poor diversity"), samples far from the data, memorization and a
    likelihood worse than no model. Empty when nothing stands out."""
    v, floor = _values(result), _values(result.get("floor"))
    generated = result.get("kind") in ("run", "samples")
    out = []
    n_real = result.get("n_real")
    if isinstance(n_real, int) and n_real < SMALL_REAL:
        out.append(f"note: only {n_real:,} real {result.get('ref_split', 'test')} images to measure against "
                   f"({result['n']:,} on the other side; the README's figures use 10,000 vs 10,000): every number "
                   "here is rough and FID is biased upward at this size - read the intervals, and compare only "
                   "results measured with the same n on both sides")
    labels = v.get("label_accuracy")
    right_classes = isinstance(labels, float) and labels > PRECISE  # a conditional model draws what is asked
    if generated and "recall" in v and v["recall"] < COLLAPSE and (v.get("precision", 0.0) > PRECISE or right_classes):
        per_class = (f" The requested classes come out ({labels:.0%} label accuracy), each in few variants."
                     if right_classes else "")
        out.append(f"warning: mode collapse - recall {v['recall']:.3f} and coverage {v.get('coverage', float('nan')):.3f}"
                   f" with precision {v.get('precision', float('nan')):.2f}: the samples crowd into a few of the "
                   f"data's modes.{per_class} Look at the samples; for a GAN try another model.loss (hinge, "
                   "wgan-gp), a lower train.lr or model.mbstd")
    if generated and "fid" in v and floor.get("fid", 0.0) > 0 and v["fid"] > FAR * floor["fid"]:
        out.append(f"warning: far from the data - FID {v['fid']:.4g} is {v['fid'] / floor['fid']:.0f} times the "
                   f"real floor's {floor['fid']:.3g}; look at the samples before reading the other numbers")
    if generated and v.get("copies", 0.0) > COPIES:
        out.append(f"warning: memorization - {v['copies']:.1%} of samples sit closer to a training image than any "
                   f"held-out real image does ({v.get('copied_train_images', 0):.0f} distinct training images); "
                   "see the closest pairs. More data, fewer steps or `aigc data audit` for duplicates usually help")
    for k, x in v.items():
        if k.endswith("_bits_per_dim") and x > UNIFORM_BITS:
            out.append(f"warning: {k.removesuffix('_bits_per_dim')} gives {x:.2f} bits/dim, worse than a uniform model "
                       f"of 8-bit pixels ({UNIFORM_BITS:g} bits/dim, no training needed): the model is far from trained "
                       "or its likelihood does not fit the data")
    return out


def describe(result: dict[str, Any]) -> str:
    feats = result.get("features") or {}
    acc, mse, base = feats.get("test_accuracy"), feats.get("test_mse"), feats.get("test_mse_mean_image")
    quality = (f", test accuracy {acc:.2%}" if isinstance(acc, float) else
               f", held-out reconstruction MSE {mse:.4g} (the mean image: {base:.4g})"
               if isinstance(mse, float) and isinstance(base, float) else "")
    trained = (f", trained {feats['steps']:,} steps on {feats['n_train']:,} images"
               if feats.get("steps") and feats.get("n_train") and "trained_by" not in feats else "")
    net = feats.get("name", "?") + quality + trained
    unit = {"video": "clips", "audio": "clips", "music": "pieces"}.get(str(result.get("modality")), "images")
    what = {"run": f"{result['n']:,} generated {unit} from {result.get('run')} ({result.get('checkpoint')})",
            "samples": f"{result['n']:,} {unit} from {result.get('samples')}"}.get(
        result["kind"], f"{result['n']:,} real training {unit} of {result['data']}")
    return f"{what} vs the {result['against']}; features: {net}"


def _floor_head(result: dict[str, Any]) -> str:
    f = result.get("floor") or {}
    return f"real floor ({f['n']:,} train vs {f['n_real']:,})" if "n_real" in f else "real floor"


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table for the terminal; skipped sections follow it as notes."""
    has_floor = bool(result.get("floor"))
    head = ("section", "metric", "value", _floor_head(result)) if has_floor else ("section", "metric", "value")
    body = [r if has_floor else r[:3] for r in rows(result) if r[1] != "-"]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    lines = [describe(result), "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=False)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in body]
    lines += [f"{sec}: {note}" for sec, metric, note, _ in rows(result) if metric == "-"]
    for s in result["sections"]:
        for f in s.get("files") or []:
            lines.append(f"{s['name']}: wrote {f}")
    return "\n".join(lines + diagnose(result))


def format_result(result: dict[str, Any]) -> str:
    """Sectioned results (images) as a table; a flat dict of scores (text) as aligned lines."""
    if "sections" in result:
        return format_table(result)
    return "\n".join(f"{k:24s} {v:.4f}" if isinstance(v, float) else f"{k:24s} {v}" for k, v in result.items())


def markdown(result: dict[str, Any]) -> str:
    """The results as a markdown table with the protocol of each section."""
    has_floor = bool(result.get("floor"))
    lines = ["## Evaluation", "", describe(result) + ".", "",
             "| metric | value |" + (f" {_floor_head(result)} |" if has_floor else ""),
             "|---|---|" + ("---|" if has_floor else "")]
    for sec, metric, value, floor in rows(result):
        name = sec if metric == "-" else metric
        arrow = " (lower is better)" if metric in LOWER_IS_BETTER else ""
        lines.append(f"| {name}{arrow} | {value} |" + (f" {floor} |" if has_floor else ""))
    lines += [""] + [f"**{w}**" for w in diagnose(result)]
    if any(s.get("intervals") for s in result["sections"]):
        lines += ["", "Brackets: 95% intervals from half-samples of both sides (delete-half jackknife): how far "
                  "the number moves with the draw of images at this n."]
    lines += ["", "Protocol per section:", ""]
    for s in result["sections"]:
        if s["values"]:
            lines.append(f"- {s['name']}: N = {s['n']} vs {s['against']}; features {s['features']}"
                         + (f"; {s['note']}" if s["note"] else ""))
        for f in s.get("files") or []:
            lines.append(f"  ![{s['name']}]({Path(f).name})")
    return "\n".join(lines)


def update_run_report(run_dir: Path, result: dict[str, Any]) -> Path | None:
    """Put (or replace) the evaluation section in run_dir/report.md; None when there is no report."""
    path = Path(run_dir) / "report.md"
    if not path.is_file() or "sections" not in result:
        return None
    text = path.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{markdown(result)}\n{END}\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + block + tail.lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    return atomic_write_text(path, text)
