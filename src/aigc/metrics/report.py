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


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(section, metric, value, floor) rows; the floor column is empty without a floor."""
    floor = {(s["name"], k): v for s in (result.get("floor") or {}).get("sections", [])
             for k, v in s["values"].items()}
    out = []
    for s in result["sections"]:
        if not s["values"]:
            out.append((s["name"], "-", s["note"], ""))
        for k, v in s["values"].items():
            f = floor.get((s["name"], k))
            out.append((s["name"], k, _fmt(v), "" if f is None else _fmt(f)))
    return out


COLLAPSE = 0.1   # recall and coverage both below this, with precision above PRECISE: few modes covered
PRECISE = 0.5
COPIES = 0.05    # share of "copies" above which samples look memorized (real held-out data: ~1%)


def diagnose(result: dict[str, Any]) -> list[str]:
    """Plain-language warnings the numbers support: mode collapse (the document's "poor diversity")
    and memorization. Empty when nothing stands out."""
    v = {k: x for s in result.get("sections", []) for k, x in s["values"].items()}
    out = []
    if result.get("kind") == "run" and all(k in v for k in ("precision", "recall", "coverage")) \
            and v["recall"] < COLLAPSE and v["coverage"] < COLLAPSE and v["precision"] > PRECISE:
        out.append(f"warning: mode collapse - recall {v['recall']:.2f} and coverage {v['coverage']:.2f} with "
                   f"precision {v['precision']:.2f}: the samples crowd into a few of the data's modes. "
                   "Look at the samples; for a GAN try another model.loss (hinge, wgan-gp) or a lower train.lr")
    if result.get("kind") == "run" and v.get("copies", 0.0) > COPIES:
        out.append(f"warning: memorization - {v['copies']:.1%} of samples sit closer to a training image than "
                   "99% of held-out real images do; see the closest pairs. More data, fewer steps or "
                   "`aigc data audit` for duplicates usually help")
    return out


def describe(result: dict[str, Any]) -> str:
    feats = result.get("features") or {}
    acc = feats.get("test_accuracy")
    net = feats.get("name", "?") + (f", test accuracy {acc:.2%}" if isinstance(acc, float) else "")
    what = {"run": f"{result['n']} generated images from {result.get('run')} ({result.get('checkpoint')})",
            "samples": f"{result['n']} images from {result.get('samples')}"}.get(
        result["kind"], f"{result['n']} real training images of {result['data']}")
    return f"{what} vs the {result['against']}; features: {net}"


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table for the terminal; skipped sections follow it as notes."""
    has_floor = bool(result.get("floor"))
    head = ("section", "metric", "value", "real floor") if has_floor else ("section", "metric", "value")
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
             "| metric | value |" + (" real floor |" if has_floor else ""),
             "|---|---|" + ("---|" if has_floor else "")]
    for sec, metric, value, floor in rows(result):
        name = sec if metric == "-" else metric
        arrow = " (lower is better)" if metric in LOWER_IS_BETTER else ""
        lines.append(f"| {name}{arrow} | {value} |" + (f" {floor} |" if has_floor else ""))
    lines += [""] + [f"**{w}**" for w in diagnose(result)] + ["", "Protocol per section:", ""]
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
