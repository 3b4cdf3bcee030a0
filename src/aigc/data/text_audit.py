"""Text dataset audit over raw samples per split: sizes, charset, suspicious characters, ANSI escape
sequences, lengths (and the samples a data.block_size would cut), empty and duplicate samples,
train/test overlap, and what each finding means."""
from __future__ import annotations

import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..vocab import ANSI, strip_ansi
from .base import split_source
from .text import line_truncation, truncation_warning

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


def audit_text(splits: dict[str, list[str]], source: str = "", block_size: int | None = None,
               default_block_size: bool = False) -> dict[str, Any]:
    """Every finding as JSON-able facts; `splits` maps a split name to its raw samples.

    With `block_size`, line samples (sources other than `text:`) are compared with it: how many a
    run with that data.block_size would cut. ANSI escape sequences are counted as such; suspicious
    characters and scripts are judged on the text without them (the `m` of ESC[32m is no Latin letter).
    """
    charset: Counter = Counter()
    ansi: Counter = Counter()
    ansi_samples, ansi_examples = 0, []
    combos: Counter = Counter()
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
        for i, raw in enumerate(samples):
            charset.update(raw)
            codes = ANSI.findall(raw) if "\x1b" in raw else []
            s = strip_ansi(raw) if codes else raw
            if codes:
                ansi.update(codes)
                ansi_samples += 1
                if len(ansi_examples) < EXAMPLES:
                    ansi_examples.append(f"{name}[{i}]: {raw[:80]!r}")
            kinds = {suspicious_kind(ch) for ch in s} - {None}
            if kinds:
                bad_chars.update(ch for ch in s if suspicious_kind(ch))
                if len(bad_examples) < EXAMPLES:
                    bad_examples.append({"where": f"{name}[{i}]", "kinds": sorted(kinds), "text": repr(s[:80])})
            scripts = {char_script(ch) for ch in s} - {None}
            if len(scripts) > 1:
                n_mixed += 1
                combos["+".join(sorted(scripts))] += 1
                if len(mixed) < EXAMPLES:
                    mixed.append(f"{name}[{i}] {'+'.join(sorted(scripts))}: {s[:80]!r}")
    report["charset"] = {"size": len(charset),
                         "counts": [[_show(ch), c] for ch, c in charset.most_common()]}
    report["suspicious"] = {
        "characters": [[_show(ch), unicodedata.name(ch, f"U+{ord(ch):04X}"), suspicious_kind(ch), c]
                       for ch, c in bad_chars.most_common()],
        "samples": sum(1 for s in (x for v in splits.values() for x in v)
                       if any(suspicious_kind(ch) for ch in (strip_ansi(s) if "\x1b" in s else s))),
        "examples": bad_examples,
        "mixed_script_samples": n_mixed, "mixed_script_examples": mixed,
        "mixed_scripts": dict(combos.most_common()),
    }
    report["ansi"] = {"sequences": sum(ansi.values()), "samples": ansi_samples,
                      "codes": [[repr(c)[1:-1], n] for c, n in ansi.most_common(EXAMPLES)],
                      "examples": ansi_examples, **strip_command(source)}
    report["block_size"] = _block_size(splits, source, block_size, default_block_size)
    report["overlap"] = _overlap(splits)
    report["advice"] = text_advice(report)
    return report


def strip_command(source: str) -> dict[str, str | None]:
    """The `aigc data prepare` command that writes a copy of a lines:/text: file without ANSI escape
    sequences (`fix`), and the source to train on then (`clean_source`)."""
    import shlex

    prefix, arg = split_source(source)
    if prefix not in ("lines", "text") or not arg:
        return {"fix": None, "clean_source": None}
    path = Path(arg)
    clean = path.with_name(f"{path.stem}.clean{path.suffix or '.txt'}")
    return {"fix": f"aigc data prepare {shlex.quote(source)} --strip-ansi --out {shlex.quote(str(clean))}",
            "clean_source": f"{prefix}:{clean}"}


def _block_size(splits: dict[str, list[str]], source: str, block_size: int | None,
                default: bool) -> dict[str, Any] | None:
    """The samples a run with data.block_size = block_size would cut (line sources; `text:` is cut
    into windows of exactly that size, so nothing is lost there)."""
    if block_size is None:
        return None
    said = f"data.block_size={block_size}" + (" (the default; give --block-size N for your run's)" if default else "")
    if split_source(source)[0] == "text":
        return {"block_size": block_size, "compared": said, "windows": True, "cut": {}, "warning": None}
    t = line_truncation(splits, block_size)
    return {**t, "compared": said, "windows": False, "warning": truncation_warning(t)}


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
    ansi = r.get("ansi") or {}
    if ansi.get("sequences"):
        codes = ", ".join(c for c, _ in ansi["codes"][:4])
        fix = (f"strip them with `{ansi['fix']}` and train on {ansi['clean_source']}" if ansi.get("fix")
               else "strip them from the text")
        out.append(f"{ansi['samples']} samples hold {ansi['sequences']} ANSI escape sequences (terminal colour "
                   f"codes such as {codes}): the model would learn to emit them; {fix}.")
    bs = r.get("block_size") or {}
    if bs.get("warning"):
        out.append(f"Compared with {bs['compared']}: {bs['warning']}")
    sus = r["suspicious"]
    if sus["samples"]:
        kinds = sorted({k for _, _, k, _ in sus["characters"]})
        out.append(f"{sus['samples']} samples hold suspicious characters ({', '.join(kinds)}): they "
                   "enter the vocabulary and the model will learn to emit them; clean or drop them.")
    if sus["mixed_script_samples"]:
        combos = sus.get("mixed_scripts") or {}
        which = ", ".join(f"{k} in {v}" for k, v in list(combos.items())[:3])
        out.append(f"{sus['mixed_script_samples']} samples mix scripts ({which or 'e.g. Latin with Cyrillic'}): "
                   "check them for look-alike letters (homoglyphs) or encoding damage.")
    for name, s in r["splits"].items():
        if s["empty"]:
            out.append(f"{name}: {s['empty']} empty samples: they teach the model to stop at once; drop them.")
        if s["duplicate_extra_copies"]:
            why = ("those weigh more in training and are the first a model memorizes" if name == "train"
                   else "they count several times in the test loss")
            out.append(f"{name}: {s['duplicate_extra_copies']} extra copies of repeated samples: {why}.")
    if not out:
        out.append("No problems found: no overlap, suspicious characters, empty or duplicate samples"
                   + (", and no sample cut by " + bs["compared"] if bs and not bs.get("windows") else "")
                   + ".")
    return out
