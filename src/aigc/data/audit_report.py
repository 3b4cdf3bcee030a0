"""`aigc data audit`: run the image or text audit on a source and write report.md, report.json and
PNG contact sheets of each group of findings."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..files import atomic_write_text, make_dirs
from ..plugins import DATA_SOURCES, MODALITIES
from . import dedup
from .audit import SHOW, ImageData, audit_images, collect_images, item_names
from .base import split_source
from .text_audit import audit_text

THUMB = 56                                  # smallest thumbnail side in contact sheets
SHEET_TITLES = {"exact_duplicates": "Exact duplicates", "near_duplicates": "Near-duplicates",
                "cross_split": "Test images duplicating training images (train left)",
                "outliers": "Outliers (farthest from their class first)"}


def run_audit(cfg: Any, out: Path, near: float = dedup.NEAR) -> dict[str, Any]:
    """Audit the source named by cfg (a DataConfig) with its modality's audit; write report files into out."""
    return MODALITIES.get(source_modality(cfg)).audit(cfg, out, near)


def source_modality(cfg: Any) -> str:
    """The modality a source declared at registration (else the one its data turns out to have)."""
    from .base import load_dataset

    declared = DATA_SOURCES.info(split_source(cfg.source)[0]).get("modality")
    return declared or load_dataset(cfg).modality


def run_text_audit(cfg: Any, out: Path, near: float = dedup.NEAR) -> dict[str, Any]:
    """The text audit (characters, duplicates, leaks, lengths) of a text source."""
    import dataclasses

    from .text import load_text_samples

    make_dirs(out)
    default = next((f.default for f in dataclasses.fields(cfg) if f.name == "block_size"), None)
    report = audit_text(load_text_samples(cfg), cfg.source, cfg.block_size, cfg.block_size == default)
    _write(out, report, text_markdown(report))
    return report


def run_image_audit(cfg: Any, out: Path, near: float = dedup.NEAR) -> dict[str, Any]:
    """The image audit (unreadable files, duplicates, leaks, outliers, contact sheets) of an image source."""
    prefix, arg = split_source(cfg.source)
    if prefix == "folder" and arg and out.resolve().is_relative_to(Path(arg).resolve()):
        raise DataError(f"report folder {out} lies inside the audited folder {arg}",
                        "its contact sheets would be audited next time; give --out elsewhere")
    make_dirs(out)
    data = collect_images(cfg)
    report, sheets = audit_images(data, near)
    report["sheets"] = write_sheets(data, sheets, out)
    _write(out, report, image_markdown(report))
    return report


def _write(out: Path, report: dict[str, Any], markdown: str) -> None:
    for name, text in (("report.json", json.dumps(report, indent=1, ensure_ascii=False)),
                       ("report.md", markdown)):
        atomic_write_text(out / name, text)


def summary(report: dict[str, Any]) -> list[str]:
    """A few lines for the terminal (text audits: sizes and advice)."""
    sizes = ", ".join(f"{k} {v.get('n', v.get('samples'))}" for k, v in report["splits"].items())
    bs = report.get("block_size")  # text: which block size the lengths were compared with
    compared = [f"lengths compared with {bs['compared']}"] if bs else []
    return [f"{report['source']}: {sizes}", *compared] + [f"- {a}" for a in report["advice"]]


def image_summary(report: dict[str, Any]) -> list[str]:
    """The text summary plus the image findings' counts."""
    ex, nr, cs = report["exact_duplicates"], report["near_duplicates"], report["cross_split"]
    head, *advice = summary(report)
    return [head, f"unreadable {len(report['unreadable'])}, exact-duplicate groups {ex['groups']}, "
                  f"near-duplicate groups {nr['groups']}, test items in train "
                  f"{cs['test_items_exact_in_train']} exact + {cs['test_items_near_in_train']} near, "
                  f"outliers {report['outliers']['count']}", *advice]


# ---------------------------------------------------------------- contact sheets

def contact_sheet(x: torch.Tensor, groups: list[list[int]], path: Path, per_row: int = 8) -> None:
    """One row per group (up to SHOW rows), its members side by side, on a grey background."""
    from PIL import Image

    c, h, w = x.shape[1:]
    scale = max(1, -(-THUMB // max(h, w)))
    th, tw, pad = h * scale, w * scale, 4
    rows = groups[:SHOW]
    width = max(len(g[:per_row]) for g in rows) * (tw + pad) + pad
    sheet = np.full((len(rows) * (th + pad) + pad, width, 3), 128, np.uint8)
    for r, g in enumerate(rows):
        for k, i in enumerate(g[:per_row]):
            img = x[i].numpy().transpose(1, 2, 0).repeat(scale, 0).repeat(scale, 1)
            top, left = pad + r * (th + pad), pad + k * (tw + pad)
            sheet[top:top + th, left:left + tw] = img if c == 3 else img[..., :1]
    Image.fromarray(sheet).save(path)


def write_sheets(data: ImageData, sheets: dict[str, list[list[int]]], out: Path) -> dict[str, Any]:
    x = torch.cat([s.x for s in data.splits.values()])
    names = item_names(data)
    written = {}
    for kind, groups in sheets.items():
        path = out / f"{kind}.png"
        if groups:
            contact_sheet(x, groups, path)
            written[kind] = {"file": path.name, "rows": [[names[i] for i in g[:8]] for g in groups[:SHOW]]}
        elif path.exists():
            path.unlink()  # a sheet from an earlier audit would show findings that are gone
    return written


# ---------------------------------------------------------------- markdown

def _table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def image_markdown(r: dict[str, Any]) -> str:
    md = [f"# Data audit: {r['source']}", "", "## What to do", ""] + [f"- {a}" for a in r["advice"]]
    md += ["", "## Splits", "", _table(
        ["split", "images", "sizes", "modes", "pixel mean", "pixel std", "class balance (max/min)"],
        [[n, s["n"], ", ".join(f"{k} ({v})" for k, v in list(s["sizes"].items())[:4]),
          ", ".join(f"{k} ({v})" for k, v in s["modes"].items()), s["pixel_mean"], s["pixel_std"],
          s.get("balance", "-")] for n, s in r["splits"].items()])]
    classes = [(n, s["classes"]) for n, s in r["splits"].items() if s.get("classes")]
    if classes:
        names = list(classes[0][1])
        md += ["", "## Classes", "", _table(["class"] + [n for n, _ in classes],
                                            [[c] + [cl.get(c, 0) for _, cl in classes] for c in names])]
    ex, nr, cs = r["exact_duplicates"], r["near_duplicates"], r["cross_split"]
    md += ["", "## Duplicates", "",
           f"Near-duplicates: cosine >= {r['near_threshold']} between grey 32x32 brightness-normalised "
           "pictures, not counting exact copies.", "",
           _table(["finding", "groups", "items", "extra copies within splits"],
                  [["exact duplicates", ex["groups"], ex["items"], ex["extra_copies_within_split"]],
                   ["near-duplicates", nr["groups"], nr["items"], nr["extra_copies_within_split"]]]),
           "", f"Test items with a copy in train: {cs['test_items_exact_in_train']} exact, "
           f"{cs['test_items_near_in_train']} near (of {cs['test_items']}).",
           f"`--dedup` would drop: {r['dedup_would_drop']}."]
    md += ["", "## Unreadable files", ""] + ([f"- `{u}`" for u in r["unreadable"][:100]] or ["None."])
    md += ["", "## Outliers", "", f"{r['outliers']['count']} items with robust z >= {r['outliers']['z_threshold']:g}."]
    md += ["", "## Contact sheets", ""]
    for kind, sheet in r.get("sheets", {}).items():
        md += [f"### {SHEET_TITLES[kind]}", "", f"![{kind}]({sheet['file']})", ""]
        md += [f"{k + 1}. " + ", ".join(f"`{n}`" for n in row) for k, row in enumerate(sheet["rows"])] + [""]
    if not r.get("sheets"):
        md.append("Nothing to show.")
    return "\n".join(md) + "\n"


def text_markdown(r: dict[str, Any]) -> str:
    md = [f"# Data audit: {r['source']}", "", "## What to do", ""] + [f"- {a}" for a in r["advice"]]
    md += ["", "## Splits", "", _table(
        ["split", "samples", "characters", "distinct", "empty", "extra duplicate copies",
         "length min / median / p95 / max"],
        [[n, s["samples"], s["characters"], s["distinct"], s["empty"], s["duplicate_extra_copies"],
          f"{s['lengths']['min']} / {s['lengths'].get('median', 0):g} / {s['lengths'].get('p95', 0):g} / "
          f"{s['lengths']['max']}"] for n, s in r["splits"].items()])]
    bs = r.get("block_size")
    if bs and bs["windows"]:
        md += ["", f"Compared with {bs['compared']}: a `text:` source is cut into windows of that many "
                   "characters, so no sample is cut short."]
    elif bs:
        md += ["", f"## Lengths against {bs['compared']}", "",
               f"A row holds {bs['width'] - 1} characters and the end token; samples cut at that size: "
               + ", ".join(f"{k} {v} of {bs['samples'][k]}" for k, v in bs["cut"].items())
               + f". The longest training sample has {bs['longest_train']} characters."]
    ansi = r.get("ansi") or {}
    if ansi.get("sequences"):
        md += ["", "## ANSI escape sequences (terminal colour codes)", "",
               f"{ansi['sequences']} sequences in {ansi['samples']} samples: "
               + ", ".join(f"`{c}` {n}" for c, n in ansi["codes"]) + "."]
        if ansi.get("fix"):
            md += ["", f"Strip them with `{ansi['fix']}` and train on `{ansi['clean_source']}`.", ""]
        md += [f"- {e}" for e in ansi["examples"]]
    cs, sus, ov = r["charset"], r["suspicious"], r["overlap"]
    md += ["", f"## Charset ({cs['size']} characters)", "",
           " ".join(f"`{ch}` {c}" for ch, c in cs["counts"][:120]), "",
           "## Suspicious characters", "",
           f"{sus['samples']} samples hold control, replacement or invisible characters; "
           f"{sus['mixed_script_samples']} mix scripts.", ""]
    md += [f"- {name} ({kind}): {c}" for _, name, kind, c in sus["characters"][:30]]
    md += [f"- `{e['where']}` {e['kinds']}: {e['text']}" for e in sus["examples"]]
    md += [f"- {m}" for m in sus["mixed_script_examples"]]
    md += ["", "## Train/test overlap", "",
           f"{ov['test_samples_in_train']} of {ov['test_samples']} test samples occur in train."]
    return "\n".join(md) + "\n"
