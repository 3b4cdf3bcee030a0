"""Text dataset audit over raw samples per split: sizes, charset, suspicious characters, lengths,
empty and duplicate samples, train/test overlap, and what each finding means."""
from __future__ import annotations

import unicodedata
from collections import Counter
from typing import Any

import numpy as np

ALLOWED_CONTROL = {"\n", "\t"}
EXAMPLES = 10


def char_script(ch: str) -> str | None:
    """The script of a letter from its Unicode name ('LATIN', 'CYRILLIC', 'CJK'...); None for non-letters."""
    if not unicodedata.category(ch).startswith("L"):
        return None
    name = unicodedata.name(ch, "")
    return name.split(" ")[0] if name else "UNKNOWN"


def suspicious_kind(ch: str) -> str | None:
    """Why a character is suspicious in training text, or None when it is not."""
    if ch == "\ufffd":
        return "replacement"          # a decoding error upstream turned bytes into U+FFFD
    cat = unicodedata.category(ch)
    if cat == "Cc" and ch not in ALLOWED_CONTROL:
        return "control"
    if cat in ("Cf", "Co", "Cs", "Cn"):
        return "invisible"            # zero-width, byte-order marks, private use, unassigned
    return None


def _lengths(samples: list[str]) -> dict[str, Any]:
    if not samples:
        return {"min": 0, "max": 0, "mean": 0.0}
    n = np.array([len(s) for s in samples])
    q = np.percentile(n, [5, 50, 95])
    edges = np.unique(np.percentile(n, np.linspace(0, 100, 11)).round().astype(int))
    hist, edges = np.histogram(n, bins=edges if len(edges) > 1 else 1)
    return {"min": int(n.min()), "p5": float(q[0]), "median": float(q[1]), "p95": float(q[2]),
            "max": int(n.max()), "mean": round(float(n.mean()), 2),
            "histogram": {"edges": [int(e) for e in edges], "counts": hist.tolist()}}


def audit_text(splits: dict[str, list[str]], source: str = "") -> dict[str, Any]:
    """Every finding as JSON-able facts; `splits` maps a split name to its raw samples."""
    charset: Counter = Counter()
    report: dict[str, Any] = {"kind": "text", "source": source, "splits": {}}
    bad_chars: Counter = Counter()
    bad_examples: list[dict[str, Any]] = []
    mixed: list[str] = []
    n_mixed = 0
    for name, samples in splits.items():
        counts = Counter(samples)
        empty = sum(1 for s in samples if not s.strip())
        dups = {s: c for s, c in counts.items() if c > 1 and s.strip()}
        report["splits"][name] = {
            "samples": len(samples), "characters": sum(len(s) for s in samples),
            "empty": empty, "duplicate_extra_copies": sum(c - 1 for c in dups.values()),
            "distinct": len(counts), "lengths": _lengths(samples),
            "top_duplicates": [[s[:80], c] for s, c in Counter(dups).most_common(EXAMPLES)],
        }
        for i, s in enumerate(samples):
            charset.update(s)
            kinds = {suspicious_kind(ch) for ch in s} - {None}
            if kinds:
                bad_chars.update(ch for ch in s if suspicious_kind(ch))
                if len(bad_examples) < EXAMPLES:
                    bad_examples.append({"where": f"{name}[{i}]", "kinds": sorted(kinds), "text": repr(s[:80])})
            scripts = {char_script(ch) for ch in s} - {None}
            if len(scripts) > 1:
                n_mixed += 1
                if len(mixed) < EXAMPLES:
                    mixed.append(f"{name}[{i}] {'+'.join(sorted(scripts))}: {s[:80]!r}")
    report["charset"] = {"size": len(charset),
                         "counts": [[_show(ch), c] for ch, c in charset.most_common()]}
    report["suspicious"] = {
        "characters": [[_show(ch), unicodedata.name(ch, f"U+{ord(ch):04X}"), suspicious_kind(ch), c]
                       for ch, c in bad_chars.most_common()],
        "samples": sum(1 for s in (x for v in splits.values() for x in v)
                       if any(suspicious_kind(ch) for ch in s)),
        "examples": bad_examples,
        "mixed_script_samples": n_mixed, "mixed_script_examples": mixed,
    }
    report["overlap"] = _overlap(splits)
    report["advice"] = text_advice(report)
    return report


def _overlap(splits: dict[str, list[str]]) -> dict[str, Any]:
    if "train" not in splits or "test" not in splits:
        return {"test_samples_in_train": 0, "test_samples": 0, "examples": []}
    train = set(splits["train"])
    norm_train = {" ".join(s.lower().split()) for s in splits["train"]}
    test = splits["test"]
    hits = [s for s in test if s in train]
    loose = [s for s in test if s not in train and " ".join(s.lower().split()) in norm_train]
    return {"test_samples_in_train": len(hits), "test_samples": len(test),
            "share": round(len(hits) / max(len(test), 1), 4),
            "test_samples_in_train_ignoring_case_and_spaces": len(loose),
            "examples": [h[:80] for h in hits[:EXAMPLES]]}


def _show(ch: str) -> str:
    return ch if ch.isprintable() and not ch.isspace() else repr(ch)[1:-1] or f"U+{ord(ch):04X}"


def text_advice(r: dict[str, Any]) -> list[str]:
    """Concrete consequences of the findings, most serious first."""
    out = []
    ov = r["overlap"]
    if ov["test_samples_in_train"]:
        out.append(f"{ov['test_samples_in_train']} of {ov['test_samples']} test samples "
                   f"({ov['share']:.1%}) also occur in train: test loss will read low for them and "
                   "a model that copies training text will look like it generalizes.")
    sus = r["suspicious"]
    if sus["samples"]:
        kinds = sorted({k for _, _, k, _ in sus["characters"]})
        out.append(f"{sus['samples']} samples hold suspicious characters ({', '.join(kinds)}): they "
                   "enter the vocabulary and the model will learn to emit them; clean or drop them.")
    if sus["mixed_script_samples"]:
        out.append(f"{sus['mixed_script_samples']} samples mix scripts (e.g. Latin with Cyrillic "
                   "look-alikes): check them for homoglyphs or encoding damage.")
    for name, s in r["splits"].items():
        if s["empty"]:
            out.append(f"{name}: {s['empty']} empty samples: they teach the model to stop at once; drop them.")
        if s["duplicate_extra_copies"]:
            why = ("those weigh more in training and are the first a model memorizes" if name == "train"
                   else "they count several times in the test loss")
            out.append(f"{name}: {s['duplicate_extra_copies']} extra copies of repeated samples: {why}.")
    if not out:
        out.append("No problems found: no overlap, suspicious characters, empty or duplicate samples.")
    return out
