"""`aigc data audit` for music sources: pieces and their lengths, each voice's range, keys, meters,
files left out, duplicate pieces (the same notes in the common key) and what the held-out splits
share with training (whole pieces, and soprano melodies harmonised again)."""
from __future__ import annotations

import collections
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_write_text, make_dirs
from ..score import PITCH_NAMES, VOICES, Score
from .music import body_hash, music_splits


def melody_hash(s: Score) -> str:
    """The soprano's notes (pitch and start) in the common key."""
    starts = s.onset[0] & (s.pitch[0] >= 0)
    return hashlib.sha256(s.pitch[0][starts].tobytes() + np.flatnonzero(starts).tobytes()).hexdigest()[:16]


def _pct(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {k: float(np.percentile(a, q)) for k, q in (("min", 0), ("p10", 10), ("median", 50), ("p90", 90), ("max", 100))} if a.size else {}


def note_name(p: int) -> str:
    return f"{PITCH_NAMES[p % 12]}{p // 12 - 1}"


def audit_music(cfg: Any) -> dict[str, Any]:
    from .music import source_pieces

    name, own, skipped = source_pieces(cfg)
    _, splits, _ = music_splits(cfg)
    split_of = {s.name: k for k, v in splits.items() for s in v}
    pieces = [s for v in splits.values() for s in v]
    keys = collections.Counter(s.key for s in own)
    ranges = {}
    for v, voice in enumerate(VOICES):
        ps = np.concatenate([s.pitch[v][s.onset[v] & (s.pitch[v] >= 0)] for s in own])
        ranges[voice] = {"lowest": note_name(int(ps.min())), "highest": note_name(int(ps.max())),
                         "p1": note_name(int(np.percentile(ps, 1))), "p99": note_name(int(np.percentile(ps, 99)))}
    groups: dict[str, list[str]] = collections.defaultdict(list)
    melodies: dict[str, list[str]] = collections.defaultdict(list)
    for s in pieces:
        groups[body_hash(s)].append(s.name)
        melodies[melody_hash(s)].append(s.name)
    dups = [sorted(g) for g in groups.values() if len(g) > 1]
    cross = [g for g in dups if len({split_of[n] for n in g}) > 1]
    shared = [sorted(g) for g in melodies.values() if len({split_of[n] for n in g}) > 1]
    held_shared = sorted({n for g in shared for n in g if split_of[n] != "train"})
    advice = []
    if cross:
        advice.append(f"{len(cross)} pieces appear in two splits: a bug in the split, report it")
    if held_shared:
        advice.append(f"{len(held_shared)} held-out pieces harmonise a soprano melody also in training (the same "
                      "chorale tune set again): their likelihood is easier than a new tune's")
    if skipped:
        advice.append(f"{len(skipped)} files were left out (listed under skipped)")
    bars = [len(s.bar_slices()) for s in own]
    return {
        "source": name, "modality": "music", "pieces": len(own),
        "splits": {k: {"n": len(v), "names": [s.name for s in v]} for k, v in splits.items()},
        "bars": _pct(bars), "sixteenths": _pct([s.steps for s in own]),
        "upbeat_pieces": sum(1 for s in own if len(s.bar_slices()) > 1 and
                             s.bar_slices()[0][1] - s.bar_slices()[0][0] < s.bar_slices()[1][1] - s.bar_slices()[1][0]),
        "voice_ranges": ranges,
        "keys": dict(keys.most_common()), "modes": dict(collections.Counter(s.mode for s in own)),
        "meters": dict(collections.Counter(s.meter for s in own).most_common()),
        "skipped": skipped,
        "duplicates": {"groups": len(dups), "pieces": sum(len(g) for g in dups), "examples": dups[:10]},
        "cross_split": {"pieces_in_two_splits": len(cross), "held_out_sharing_a_melody_with_train": len(held_shared),
                        "examples": shared[:10]},
        "advice": advice,
    }


def markdown(r: dict[str, Any]) -> str:
    lines = [f"# Data audit: {r['source']}", "",
             f"{r['pieces']} pieces; splits: " + ", ".join(f"{k} {v['n']}" for k, v in r["splits"].items()), "",
             f"Bars: median {r['bars'].get('median', 0):g} (10%-90%: {r['bars'].get('p10', 0):g}-{r['bars'].get('p90', 0):g}, "
             f"longest {r['bars'].get('max', 0):g}); {r['upbeat_pieces']} pieces start with an upbeat.", "",
             "| voice | lowest | 1% | 99% | highest |", "|---|---|---|---|---|"]
    lines += [f"| {v} | {x['lowest']} | {x['p1']} | {x['p99']} | {x['highest']} |" for v, x in r["voice_ranges"].items()]
    lines += ["", "Keys (each piece's own, before moving to C major / A minor): " +
              ", ".join(f"{k} {n}" for k, n in r["keys"].items()), "",
              "Meters: " + ", ".join(f"{k} {n}" for k, n in r["meters"].items()), "",
              f"Duplicate pieces (same notes in the common key): {r['duplicates']['groups']} groups, "
              f"{r['duplicates']['pieces']} pieces" + (f", e.g. {', '.join(r['duplicates']['examples'][0])}"
                                                        if r["duplicates"]["examples"] else ""), "",
              f"Pieces in two splits: {r['cross_split']['pieces_in_two_splits']}; held-out pieces whose soprano "
              f"melody is also in training: {r['cross_split']['held_out_sharing_a_melody_with_train']}", ""]
    if r["skipped"]:
        lines += ["Left out:", ""] + [f"- {k}: {v}" for k, v in r["skipped"].items()] + [""]
    lines += ["## Advice", ""] + ([f"- {a}" for a in r["advice"]] or ["- nothing to fix"])
    return "\n".join(lines) + "\n"


def run_music_audit(cfg: Any, out: Path) -> dict[str, Any]:
    make_dirs(out)
    report = audit_music(cfg)
    atomic_write_text(out / "report.json", json.dumps(report, indent=1, ensure_ascii=False))
    atomic_write_text(out / "report.md", markdown(report))
    return report


def music_summary(r: dict[str, Any]) -> list[str]:
    sizes = ", ".join(f"{k} {v['n']}" for k, v in r["splits"].items())
    return [f"{r['source']}: {r['pieces']} pieces ({sizes}), median {r['bars'].get('median', 0):g} bars, "
            f"meters {', '.join(r['meters'])}, {r['modes'].get('major', 0)} major / {r['modes'].get('minor', 0)} minor",
            f"left out {len(r['skipped'])}, duplicate groups {r['duplicates']['groups']}, pieces in two splits "
            f"{r['cross_split']['pieces_in_two_splits']}, held-out melodies also in train "
            f"{r['cross_split']['held_out_sharing_a_melody_with_train']}",
            *[f"- {a}" for a in r["advice"]]]
