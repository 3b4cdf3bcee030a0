"""Audio sources: `wav:PATH`, a folder of WAV/FLAC/OGG clips -> int16 [N, 1, L] at data.sample_rate.

Labels come from sub-folders (`PATH/seven/*.wav`) or from the file name through
`data.label_pattern` ("{label}_{speaker}_{index}" for the Free Spoken Digit Dataset); the split from
`train/` and `test/` sub-folders, from `data.split_pattern` ("index=0-4": files whose `index` field
lies in 0..4 are the test split; "speaker=theo,yweweler": those speakers), or at random
(`data.test_fraction`). Every clip is mixed to mono, resampled, cut or padded to `data.seconds`
around its loudest stretch, peak-normalised and stored as int16; decoded once and cached like images.
What was converted (rates, channels, cut, padded, silent) is counted in data.json; unreadable files
are skipped and listed, up to 10% of the folder.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import audio_settings, fit_length, read_audio, resample, to_int16
from ..errors import ConfigError, DataError
from ..plugins import DATA_SOURCES
from .base import Dataset, cached, file_stamp, fingerprint, random_split

AUDIO_EXTS = {".wav", ".flac", ".ogg"}
MAX_BAD_SHARE = 0.10


def name_fields(pattern: str) -> re.Pattern:
    """'{label}_{speaker}_{index}' -> a regex with one named group per field, matched on the file stem."""
    names = re.findall(r"{(\w+)}", pattern)
    if "label" not in names:
        raise ConfigError(f"data.label_pattern '{pattern}' has no {{label}} field",
                          "name the part of the file name that is the class, e.g. {label}_{speaker}_{index}")
    if len(set(names)) != len(names):
        raise ConfigError(f"data.label_pattern '{pattern}' names a field twice", "give each field its own name")
    parts = re.split(r"({\w+})", pattern)
    regex = "".join(f"(?P<{p[1:-1]}>.+?)" if re.fullmatch(r"{\w+}", p) else re.escape(p) for p in parts)
    return re.compile(regex + "$")


def split_rule(rule: str) -> tuple[str, Any]:
    """'index=0-4' -> ('index', range(0, 5)); 'speaker=a,b' -> ('speaker', {'a', 'b'})."""
    field, sep, values = rule.partition("=")
    if not sep or not field.strip() or not values.strip():
        raise ConfigError(f"data.split_pattern '{rule}' is not FIELD=LO-HI or FIELD=A,B",
                          "e.g. index=0-4 (those files are the test split)")
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", values)
    if m:
        return field.strip(), range(int(m.group(1)), int(m.group(2)) + 1)
    return field.strip(), {v.strip() for v in values.split(",") if v.strip()}


def list_clips(root: Path) -> list[Path]:
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTS and p.is_file())
    if not files:
        raise DataError(f"no audio files in {root}", f"put {', '.join(sorted(AUDIO_EXTS))} files there")
    return files


def decode_clips(files: list[Path], rate: int, samples: int, root: Path
                 ) -> tuple[list[np.ndarray], list[Path], list[str], Counter, np.ndarray]:
    """Decode, mono-mix, resample and fit each file; (clips, their files, skipped, what was converted,
    the files' durations in seconds)."""
    clips, kept, bad, seen, durations = [], [], [], Counter(), []
    for f in files:
        try:
            x, facts = read_audio(f, rate)
        except DataError as e:
            bad.append(f"{f}: {e.message}")
            continue
        durations.append(facts["frames"] / facts["rate"])
        seen[f"rate {facts['rate']}"] += 1
        seen[f"{facts['channels']} channel{'s' if facts['channels'] > 1 else ''}"] += 1
        seen[facts["subtype"]] += 1
        seen["cut" if len(x) > samples else "padded" if len(x) < samples else "exact length"] += 1
        if facts["clipped"]:
            seen["clipped"] += 1
        if float(np.abs(x).max(initial=0.0)) < 1e-4:
            seen["silent"] += 1
        clips.append(to_int16(fit_length(x, samples)))
        kept.append(f)
    if len(bad) > MAX_BAD_SHARE * len(files) or not clips:
        raise DataError(f"{len(bad)} of {len(files)} audio files in {root} are unreadable (first: {bad[0]})",
                        f"remove or repair them; up to {MAX_BAD_SHARE:.0%} are skipped automatically")
    return clips, kept, bad, seen, np.array(durations)


def labels_of(files: list[Path], root: Path, pattern: re.Pattern | None) -> tuple[list[dict[str, str]], bool]:
    """Per file its named fields ({'label': ...} from the pattern or its class folder); whether labelled."""
    out = []
    for f in files:
        if pattern is not None:
            m = pattern.match(f.stem)
            if m is None:
                raise DataError(f"{f.name} does not match data.label_pattern",
                                "rename the file or change the pattern (fields in braces, e.g. {label}_{speaker})")
            out.append(m.groupdict())
        else:
            rel = f.relative_to(root).parts
            out.append({"label": rel[0]} if len(rel) > 1 else {})
    labelled = all("label" in x for x in out)
    if not labelled and any("label" in x for x in out):
        raise DataError(f"some files in {root} sit in class folders and some do not",
                        "move every file into a class folder, or none")
    return out, labelled


@DATA_SOURCES.register("wav", modality="audio")
def wav(cfg: Any, arg: str | None) -> Dataset:
    root = Path(arg or "")
    if not root.is_dir():
        raise DataError(f"audio folder {root} does not exist", "check the path after 'wav:'")
    rate, seconds = audio_settings(cfg)
    samples = int(round(rate * seconds))
    pattern = name_fields(cfg.label_pattern) if cfg.label_pattern else None
    rule = split_rule(cfg.split_pattern) if cfg.split_pattern else None
    files = list_clips(root)
    key = "wav-" + fingerprint([file_stamp(f) for f in files], rate, samples, cfg.label_pattern, cfg.split_pattern,
                               cfg.test_fraction, cfg.split_seed)

    def build() -> Dataset:
        split_dirs = (root / "train").is_dir() and (root / "test").is_dir()
        base = {f: (root / f.relative_to(root).parts[0]) if split_dirs else root for f in files}
        fields = {}
        for group in {b for b in base.values()}:
            mine = [f for f in files if base[f] == group]
            found, _ = labels_of(mine, group, pattern)
            fields.update(zip(mine, found, strict=True))
        clips, kept, bad, seen, durations = decode_clips(files, rate, samples, root)
        labelled = all("label" in fields[f] for f in kept)
        names = sorted({fields[f]["label"] for f in kept}, key=_natural) if labelled else []
        x = torch.from_numpy(np.stack(clips)).unsqueeze(1)  # [N, 1, L]
        tensors = {"x": x}
        if names:
            tensors["y"] = torch.tensor([names.index(fields[f]["label"]) for f in kept], dtype=torch.int64)
        if split_dirs:
            is_test = torch.tensor([base[f].name == "test" for f in kept])
        elif rule is not None:
            field, values = rule
            missing = [f for f in kept if field not in fields[f]]
            if missing:
                raise DataError(f"data.split_pattern names '{field}', which {missing[0].name} does not have",
                                "use a field of data.label_pattern")
            is_test = torch.tensor([(int(fields[f][field]) in values) if isinstance(values, range) and
                                    fields[f][field].isdigit() else fields[f][field] in values for f in kept])
        else:
            _, te = random_split(len(kept), cfg.test_fraction, cfg.split_seed)
            is_test = torch.zeros(len(kept), dtype=torch.bool)
            is_test[te] = True
        train = {k: v[~is_test] for k, v in tensors.items()}
        test = {k: v[is_test] for k, v in tensors.items()} if bool(is_test.any()) else None
        if not len(train["x"]):
            raise DataError(f"every clip in {root} fell in the test split", "check data.split_pattern")
        meta: dict[str, Any] = {"source": f"wav:{root}", "sample_rate": rate, "samples": samples, "skipped": bad,
                                "converted": dict(sorted(seen.items())), "synthetic": False,
                                "durations_s": duration_summary(durations)}
        if names:
            meta["class_names"] = names
            meta["num_classes"] = len(names)
        return Dataset(root.name, "audio", train, test, meta)

    return cached(key, build)


def duration_summary(seconds: np.ndarray) -> list[float]:
    """[min, median, max] seconds of the files before they were cut or padded."""
    return [round(float(f(seconds)), 3) for f in (np.min, np.median, np.max)] if len(seconds) else []


def _natural(s: str) -> tuple:
    """'2' < '10': digits compare as numbers."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s))


# ---------------------------------------------------------------- the built-in default: spoken digits

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5"]
SPEEDS, PITCHES = (130, 175), (35, 65)  # words a minute, pitch 0-99: two of each per voice
TEST_VARIANTS = {"m4", "f3"}  # voices held out: the test split is voices the model never heard
SYNTHETIC_NOTE = "synthetic speech made by espeak-ng (not recordings of people)"


def espeak_clip(word: str, voice: str, speed: int, pitch: int) -> tuple[np.ndarray, int]:
    """One word spoken by espeak-ng -> (float samples, rate)."""
    import io
    import subprocess

    import soundfile as sf

    out = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
                         capture_output=True, timeout=30, check=True).stdout
    data, rate = sf.read(io.BytesIO(out), dtype="float32")
    return (data.mean(1) if data.ndim > 1 else data), int(rate)


@DATA_SOURCES.register("spoken-digits", modality="audio")
def spoken_digits(cfg: Any, arg: str | None) -> Dataset:
    """Digits 0-9 spoken by espeak-ng: 7 accents x 12 voice variants x 2 speeds x 2 pitches = 336 clips a
    digit (3,360 in all); the variants m4 and f3 in every accent are the test split (unheard voices).
    `spoken-digits:en-us,en-gb` keeps the accents named (48 clips a digit each)."""
    import shutil

    if shutil.which("espeak-ng") is None:
        raise DataError("spoken-digits needs espeak-ng, which is not installed",
                        "install it (Debian: apt-get install espeak-ng; `make test` does) or use wav:FOLDER")
    accents = [a.strip() for a in arg.split(",")] if arg else ACCENTS
    unknown_accents = [a for a in accents if a not in ACCENTS]
    if unknown_accents:
        raise ConfigError(f"spoken-digits has no accent '{unknown_accents[0]}'", f"use some of: {', '.join(ACCENTS)}")
    rate, seconds = audio_settings(cfg)
    samples = int(round(rate * seconds))
    key = "spoken-digits-" + fingerprint(rate, samples, accents, VARIANTS, SPEEDS, PITCHES, _espeak_version())

    def build() -> Dataset:
        clips, labels, test, seen, durations = [], [], [], Counter(), []
        for accent in accents:
            for variant in VARIANTS:
                for speed in SPEEDS:
                    for pitch in PITCHES:
                        for digit, word in enumerate(DIGITS):
                            x, r = espeak_clip(word, f"{accent}+{variant}", speed, pitch)
                            seen[f"rate {r}"] += 1
                            durations.append(len(x) / r)
                            x = resample(x, r, rate)
                            seen["cut" if len(x) > samples else "padded"] += 1
                            clips.append(to_int16(fit_length(x, samples)))
                            labels.append(digit)
                            test.append(variant in TEST_VARIANTS)
        x = torch.from_numpy(np.stack(clips)).unsqueeze(1)
        y = torch.tensor(labels, dtype=torch.int64)
        is_test = torch.tensor(test)
        meta = {"source": "spoken-digits" + (f":{arg}" if arg else ""), "sample_rate": rate, "samples": samples, "skipped": [],
                "converted": dict(sorted(seen.items())), "synthetic": True, "note": SYNTHETIC_NOTE,
                "durations_s": duration_summary(np.array(durations)),
                "class_names": [str(d) for d in range(10)], "num_classes": 10}
        return Dataset("spoken-digits", "audio", {"x": x[~is_test], "y": y[~is_test]},
                       {"x": x[is_test], "y": y[is_test]}, meta)

    return cached(key, build)


def _espeak_version() -> str:
    import subprocess

    try:
        return subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
