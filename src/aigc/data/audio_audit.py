"""`aigc data audit` for audio: what the files were (rates, channels, bit depths, lengths), clipping and
silence, exact and near-duplicate clips, and test clips that also sit in the training split.

Near-duplicates are judged on each clip's log spectrogram (the STFT the spectrogram models use),
pooled to 32 x 32, mean removed, unit length: two clips are near-duplicates when the cosine is at
least `near` (0.995 by default), found by the image audit's exact pair search (aigc.data.dedup).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..audio import STFT, to_float
from ..files import atomic_write_text, make_dirs
from . import dedup
from .base import load_dataset

QUIET_DB = -40.0    # a 10 ms frame this far below the clip's loudest frame counts as quiet
SILENT_SHARE = 0.95  # a clip with more quiet frames than this (or no sound at all) is mostly silence
SHOW = 20           # items listed per finding in the report


def clip_features(x: torch.Tensor, rate: int) -> torch.Tensor:
    """int16 clips [N, 1, L] -> unit vectors [N, 1024] of their pooled log spectrograms."""
    n_fft = 256 if rate <= 16_000 else 1024
    stft = STFT(n_fft, n_fft // 4)
    out = []
    for chunk in x.split(512):
        spec = stft.encode(to_float(chunk).reshape(len(chunk), -1))
        f = F.adaptive_avg_pool2d(spec, (32, 32)).flatten(1)
        f = f - f.mean(1, keepdim=True)
        out.append(f / f.norm(dim=1, keepdim=True).clamp_min(1e-8))
    return torch.cat(out)


def audit_audio(cfg: Any, near: float = dedup.NEAR) -> dict[str, Any]:
    data = load_dataset(cfg)
    meta = data.meta
    names = list(meta.get("class_names") or [])
    parts = [("train", data.train)] + ([("test", data.test)] if data.test is not None else [])
    x = torch.cat([p["x"] for _, p in parts])
    is_test = np.concatenate([np.full(len(p["x"]), s == "test") for s, p in parts])
    rate = int(meta["sample_rate"])
    splits = {}
    for s, p in parts:
        facts: dict[str, Any] = {"n": len(p["x"]), "seconds": round(len(p["x"]) * meta["samples"] / rate, 1)}
        if "y" in p and names:
            counts = torch.bincount(p["y"], minlength=len(names)).tolist()
            facts["per_class"] = dict(zip(names, counts, strict=True))
        splits[s] = facts
    silent = torch.nonzero(quiet_share(x, rate) > SILENT_SHARE).flatten().tolist()
    hashes = dedup.content_hashes(x.reshape(len(x), -1))
    exact_groups = dedup.groups_from_keys(hashes)
    pairs, _ = dedup.near_pairs(clip_features(x, rate), near)
    near_groups = _groups(len(x), pairs)
    exact_cross = sorted({i for g in exact_groups for i in g if is_test[i]} & _with_train(exact_groups, is_test))
    near_cross = sorted(_test_near_train(pairs, is_test) - set(exact_cross))
    item = _item_names(parts)
    report = {
        "source": cfg.source, "modality": "audio", "sample_rate": rate, "clip_seconds": meta["samples"] / rate,
        "synthetic": bool(meta.get("synthetic")), "note": meta.get("note"), "splits": splits,
        "files": {"converted": meta.get("converted", {}), "durations_s": meta.get("durations_s"),
                  "unreadable": list(meta.get("skipped") or [])},
        "silent": {"count": len(silent), "quiet_db": QUIET_DB, "share": SILENT_SHARE,
                   "items": [item[i] for i in silent[:SHOW]]},
        "exact_duplicates": {"groups": len(exact_groups), "items": sum(len(g) - 1 for g in exact_groups),
                             "examples": [[item[i] for i in g[:4]] for g in exact_groups[:SHOW]]},
        "near_duplicates": {"groups": len(near_groups), "threshold": near,
                            "examples": [[item[i] for i in g[:4]] for g in near_groups[:SHOW]]},
        "cross_split": {"test_items_exact_in_train": len(exact_cross), "test_items_near_in_train": len(near_cross),
                        "examples": [item[i] for i in (exact_cross + near_cross)[:SHOW]]},
    }
    report["advice"] = advice(report)
    return report


def quiet_share(x: torch.Tensor, rate: int) -> torch.Tensor:
    """Per clip, the share of its 10 ms frames more than 40 dB below its loudest frame (1 for no sound)."""
    step = max(1, rate // 100)
    w = to_float(x).reshape(len(x), -1)
    w = w[:, : (w.shape[1] // step) * step].reshape(len(x), -1, step)
    energy = w.pow(2).mean(2)
    top = energy.amax(1, keepdim=True)
    quiet = (energy < top * 10 ** (QUIET_DB / 10)).float().mean(1)
    return torch.where(top.squeeze(1) > 0, quiet, torch.ones_like(quiet))


def _with_train(groups: list[list[int]], is_test: np.ndarray) -> set[int]:
    """Members of groups that hold at least one training item."""
    return {i for g in groups if any(not is_test[j] for j in g) for i in g}


def _test_near_train(pairs: np.ndarray, is_test: np.ndarray) -> set[int]:
    out = set()
    for i, j in pairs.tolist():
        if is_test[i] != is_test[j]:
            out.add(i if is_test[i] else j)
    return out


def _groups(n: int, pairs: np.ndarray) -> list[list[int]]:
    """Connected groups of near-duplicate pairs (union-find), largest first."""
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in pairs.tolist():
        parent[find(i)] = find(j)
    by: dict[int, list[int]] = {}
    for i in {k for p in pairs.tolist() for k in p}:
        by.setdefault(find(i), []).append(i)
    return sorted((sorted(g) for g in by.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))


def _item_names(parts: list[tuple[str, dict[str, torch.Tensor]]]) -> list[str]:
    return [f"{s}[{k}]" for s, p in parts for k in range(len(p["x"]))]


def advice(r: dict[str, Any]) -> list[str]:
    out = []
    if r["synthetic"]:
        out.append(f"this data is synthetic ({r['note']}): say so wherever you show what a model learned from it")
    conv = r["files"]["converted"]
    rates = sorted(k for k in conv if k.startswith("rate "))
    if len(rates) > 1 or (rates and rates[0] != f"rate {r['sample_rate']}"):
        out.append(f"files came at {', '.join(x[5:] for x in rates)} Hz and were resampled to {r['sample_rate']} Hz")
    if conv.get("cut"):
        out.append(f"{conv['cut']} files were longer than {r['clip_seconds']:g} s and were cut around their loudest "
                   "stretch: raise data.seconds if words were cut off")
    if conv.get("clipped"):
        out.append(f"{conv['clipped']} files clip (samples at full scale): re-record or lower their gain")
    if r["silent"]["count"]:
        out.append(f"{r['silent']['count']} clips are mostly silence: remove them or check the files")
    if r["files"]["unreadable"]:
        out.append(f"{len(r['files']['unreadable'])} files could not be read and were skipped (listed in report.json)")
    if r["exact_duplicates"]["items"]:
        out.append(f"{r['exact_duplicates']['items']} clips are exact copies of another: remove the copies")
    cs = r["cross_split"]
    if cs["test_items_exact_in_train"] or cs["test_items_near_in_train"]:
        out.append(f"{cs['test_items_exact_in_train']} test clips are in the training split exactly and "
                   f"{cs['test_items_near_in_train']} nearly: test figures will flatter the model")
    if not out:
        out.append("nothing to fix found")
    return out


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# Audit of {r['source']}", "", f"Clips of {r['clip_seconds']:g} s at {r['sample_rate']} Hz"
             + (f"; {r['note']}" if r["note"] else "") + ".", "", "## Advice", ""]
    lines += [f"- {a}" for a in r["advice"]]
    lines += ["", "## Splits", "", "| split | clips | seconds |", "|---|---:|---:|"]
    lines += [f"| {s} | {f['n']:,} | {f['seconds']:,} |" for s, f in r["splits"].items()]
    first = next(iter(r["splits"].values()))
    if "per_class" in first:
        lines += ["", "| class | " + " | ".join(r["splits"]) + " |", "|---|" + "---:|" * len(r["splits"])]
        for c in first["per_class"]:
            lines.append(f"| {c} | " + " | ".join(str(f["per_class"].get(c, 0)) for f in r["splits"].values()) + " |")
    lines += ["", "## Files", "", "| what | files |", "|---|---:|"]
    lines += [f"| {k} | {v:,} |" for k, v in r["files"]["converted"].items()]
    d = r["files"]["durations_s"]
    if d:
        lines += ["", f"Durations before cutting or padding: min {d[0]:.2f} s, median {d[1]:.2f} s, max {d[2]:.2f} s."]
    ex, nr, cs = r["exact_duplicates"], r["near_duplicates"], r["cross_split"]
    lines += ["", "## Duplicates and leaks", "",
              f"- exact duplicate groups: {ex['groups']} ({ex['items']} extra copies)",
              f"- near-duplicate groups (spectrogram cosine >= {nr['threshold']}): {nr['groups']}",
              f"- test clips in the training split: {cs['test_items_exact_in_train']} exact, "
              f"{cs['test_items_near_in_train']} near",
              f"- clips that are mostly silence (over {r['silent']['share']:.0%} of 10 ms frames "
              f"{-r['silent']['quiet_db']:.0f} dB below the loudest): {r['silent']['count']}"]
    for title, items in (("Exact duplicates", ex["examples"]), ("Near duplicates", nr["examples"])):
        if items:
            lines += ["", f"{title} (first {len(items)} groups): " + "; ".join(", ".join(g) for g in items)]
    return "\n".join(lines) + "\n"


def run_audio_audit(cfg: Any, out: Path, near: float = dedup.NEAR) -> dict[str, Any]:
    make_dirs(out)
    report = audit_audio(cfg, near)
    atomic_write_text(out / "report.json", json.dumps(report, indent=1, ensure_ascii=False))
    atomic_write_text(out / "report.md", markdown(report))
    return report


def audio_summary(r: dict[str, Any]) -> list[str]:
    sizes = ", ".join(f"{s} {f['n']}" for s, f in r["splits"].items())
    ex, nr, cs = r["exact_duplicates"], r["near_duplicates"], r["cross_split"]
    return [f"{r['source']}: {sizes} clips of {r['clip_seconds']:g} s at {r['sample_rate']} Hz",
            f"unreadable {len(r['files']['unreadable'])}, silent {r['silent']['count']}, exact-duplicate groups "
            f"{ex['groups']}, near-duplicate groups {nr['groups']}, test clips in train "
            f"{cs['test_items_exact_in_train']} exact + {cs['test_items_near_in_train']} near",
            *[f"- {a}" for a in r["advice"]]]
