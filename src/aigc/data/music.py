"""Music sources (`chorales`, `midi:PATH`): four-voice pieces on a sixteenth grid, in a common key.

Every piece is parsed once into an `aigc.score.Score` (cached), transposed to C major or A minor
(its own key kept as a fact), and the pieces are split by piece, deterministically: pieces with the
same notes share a split, so no piece is in two. The model trains on windows of whole bars (each
row `<s> mode meter begin|cont | ... </s>`, at most data.block_size + 1 tokens), one starting at
every bar, so it sees every bar at every place in its context.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..files import atomic_write_text
from ..plugins import DATA_SOURCES
from ..score import (
    BAR,
    BOS_ID,
    HEADER,
    HOLD,
    INDEX,
    METERS,
    PAD_ID,
    PROMPT_BARS,
    TOKENS,
    CopyFinder,
    Score,
    common_shift,
    encode,
    scores_from_pretty,
)
from .base import Dataset, cache_dir, file_stamp, fingerprint

MAX_PIECES = 100_000   # MIDI files read from one folder
MAX_STEPS = 16 * 4096  # sixteenths in one piece (4,096 bars of 4/4)
CACHE_VERSION = 2  # 2: MIDI on the tick grid, pieces named by their path in the folder


# ---------------------------------------------------------------- reading pieces


def read_chorale(path: Path, name: str = "") -> Score | str:
    """One corpus file as a score, or the reason it is left out."""
    from music21 import corpus, meter

    try:
        s = corpus.parse(str(path))
    except Exception as e:  # music21 raises many kinds on a file it cannot read
        return f"music21 cannot parse it ({type(e).__name__})"
    parts = list(s.parts)
    named = {str(p.partName or "").lower(): p for p in parts}
    voices = [named.get(v) for v in ("soprano", "alto", "tenor", "bass")]
    if any(v is None for v in voices):
        if len(parts) != 4:
            return f"{len(parts)} parts, not the four voices SATB"
        voices = parts
    sigs = list(s.recurse().getElementsByClass(meter.TimeSignature))
    sig = sigs[0].ratioString if sigs else "4/4"
    if sig not in METERS:
        return f"meter {sig}"
    end = int(round(float(s.highestTime) * 4))
    if not 0 < end <= MAX_STEPS:
        return f"{end} sixteenths long"
    pitch = np.full((4, end), -1, dtype=np.int16)
    onset = np.zeros((4, end), dtype=bool)
    for v, part in enumerate(voices):
        for n in part.flatten().notes:
            a = int(round(float(n.offset) * 4))
            b = int(round(float(n.offset + n.quarterLength) * 4))
            if b <= a or a >= end:
                continue  # grace notes and anything shorter than a sixteenth
            p = max(x.midi for x in n.pitches)
            pitch[v, a:b] = p
            onset[v, a] = n.tie is None or n.tie.type == "start"
    bars = sorted({int(round(float(m.offset) * 4)) for m in voices[0].getElementsByClass("Measure")} | {0})
    bars = [b for b in bars if b < end]
    k = s.analyze("key")
    mode = "minor" if k.mode == "minor" else "major"
    for v in range(4):  # a tie into a different pitch (music21 keeps some) starts a note
        prev = np.concatenate([[-1], pitch[v, :-1]])
        onset[v] |= (pitch[v] >= 0) & (prev != pitch[v])
    return Score(pitch, onset, bars, sig, int(k.tonic.pitchClass), mode, Path(path).stem)


def pretty_midi_module() -> Any:
    try:
        import pretty_midi
    except ImportError:
        raise DataError("MIDI files need the PyPI package pretty_midi", "pip install 'aigc[music]'") from None
    return pretty_midi


def read_midi(path: Path, name: str) -> Score | str:
    pretty_midi = pretty_midi_module()
    try:
        pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as e:  # pretty_midi/mido raise many kinds on a damaged file
        return f"not a readable MIDI file ({type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''})"
    try:
        score = scores_from_pretty(pm, name)
    except ValueError as e:
        return str(e)
    except Exception as e:  # a file that parses but holds what pretty_midi cannot time
        return f"its notes cannot be placed ({type(e).__name__})"
    if score.steps > MAX_STEPS:
        return f"{score.steps} sixteenths long"
    return score


def chorale_paths() -> list[Path]:
    try:
        from music21 import corpus
    except ImportError:
        raise DataError("the built-in `chorales` data needs the PyPI package music21",
                        "pip install 'aigc[music]'") from None
    return sorted((Path(p) for p in corpus.getComposer("bach") if Path(p).suffix in (".mxl", ".xml", ".krn")),
                  key=lambda p: p.name)


def midi_paths(arg: str) -> list[Path]:
    root = Path(arg).expanduser()
    if not root.exists():
        raise DataError(f"MIDI folder {root} does not exist", "check the path after midi:")
    if root.is_file():
        raise DataError(f"midi:{arg} is a file", "point it at a folder of .mid files")
    found = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in (".mid", ".midi") and p.is_file() and \
                not any(s.startswith(".") for s in p.relative_to(root).parts):
            found.append(p)
            if len(found) > MAX_PIECES:
                raise DataError(f"midi:{arg} holds more than {MAX_PIECES:,} MIDI files", "use a smaller folder")
    if not found:
        raise DataError(f"midi:{arg} holds no .mid or .midi files", "put your MIDI files in that folder")
    return found


# ---------------------------------------------------------------- the piece cache


def _save_pieces(path: Path, scores: list[Score], skipped: dict[str, str]) -> None:
    head = {"version": CACHE_VERSION, "skipped": skipped,
            "pieces": [{"name": s.name, "meter": s.meter, "tonic": s.tonic, "mode": s.mode, "bars": s.bars,
                        "steps": s.steps} for s in scores]}
    grid = {"pitch": np.concatenate([s.pitch for s in scores], 1).tolist() if scores else [[]] * 4,
            "onset": np.concatenate([s.onset for s in scores], 1).astype(int).tolist() if scores else [[]] * 4}
    atomic_write_text(path, json.dumps({**head, **grid}))


def _load_pieces(path: Path) -> tuple[list[Score], dict[str, str]] | None:
    try:
        blob = json.loads(path.read_text(encoding="utf-8"))
        if blob.get("version") != CACHE_VERSION:
            return None
        pitch = np.asarray(blob["pitch"], dtype=np.int16).reshape(4, -1)
        onset = np.asarray(blob["onset"], dtype=bool).reshape(4, -1)
        scores, at = [], 0
        for p in blob["pieces"]:
            n = int(p["steps"])
            scores.append(Score(pitch[:, at:at + n].copy(), onset[:, at:at + n].copy(), [int(b) for b in p["bars"]],
                                str(p["meter"]), int(p["tonic"]), str(p["mode"]), str(p["name"])))
            at += n
        return scores, {str(k): str(v) for k, v in blob["skipped"].items()}
    except Exception:  # a damaged cache is rebuilt, never trusted
        return None


def read_pieces(source: str, paths: list[Path], names: list[str], reader: Any, key: str, echo: Any = None
                ) -> tuple[list[Score], dict[str, str]]:
    """Every file read once (cached under `key`): the scores (named `names`) and {name: why it was left out}."""
    path = cache_dir() / "music" / f"{key}.json"
    got = _load_pieces(path) if path.is_file() else None
    if got is not None:
        return got
    if echo:
        echo(f"reading {len(paths)} pieces of {source} (once; cached in {path.parent})")
    scores, skipped = [], {}
    for p, name in zip(paths, names, strict=True):
        r = reader(p, name)
        if isinstance(r, str):
            skipped[name] = r
        else:
            scores.append(r)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_pieces(path, scores, skipped)
    except OSError:
        pass
    return scores, skipped


def source_pieces(cfg: Any, echo: Any = None) -> tuple[str, list[Score], dict[str, str]]:
    """(source name, pieces in their own keys, skipped files) of a music DataConfig."""
    from .base import split_source

    prefix, arg = split_source(cfg.source)
    if prefix == "chorales":
        if arg:
            raise DataError(f"data source 'chorales:{arg}' takes no path", "write `chorales`, or midi:PATH for your files")
        paths = chorale_paths()  # first: it says how to install music21 when it is missing
        import music21

        key = fingerprint("chorales", music21.__version__, [p.name for p in paths], CACHE_VERSION)
        scores, skipped = read_pieces("the Bach chorales", paths, [p.name for p in paths], read_chorale, key, echo)
        return "chorales", scores, skipped
    if prefix == "midi" and arg:
        paths = midi_paths(arg)
        root = Path(arg).expanduser()
        names = [p.relative_to(root).with_suffix("").as_posix() for p in paths]  # unique, unlike stems
        key = fingerprint("midi", [file_stamp(p) for p in paths], CACHE_VERSION)
        scores, skipped = read_pieces(f"midi:{arg}", paths, names, read_midi, key, echo)
        if not scores:
            first = next(iter(skipped.items()))
            raise DataError(f"none of the {len(paths)} MIDI files in {arg} could be used ({first[0]}: {first[1]})",
                            "give four-voice MIDI files (four melodic tracks)")
        return f"midi:{arg}", scores, skipped
    raise DataError(f"'{cfg.source}' is not a music source", "use chorales or midi:PATH")


# ---------------------------------------------------------------- splits and rows


def body_hash(score: Score) -> str:
    """A piece's notes in the common key (its name, key and bar lines aside): equal notes, equal hash."""
    s = in_common_key(score)
    return hashlib.sha256(s.pitch.tobytes() + s.onset.tobytes()).hexdigest()[:16]


def split_pieces(scores: list[Score], fraction: float, seed: int) -> dict[str, list[Score]]:
    """Test, then val, each round(n * fraction) groups of a seeded shuffle; a group is the pieces
    with the same notes (duplicates in the corpus), so a piece and its copy share a split."""
    groups: dict[str, list[Score]] = {}
    for s in sorted(scores, key=lambda s: s.name):
        groups.setdefault(body_hash(s), []).append(s)
    keys = list(groups)
    n = len(keys)
    k = min(int(round(n * fraction)) if n > 2 else 0, (n - 1) // 2)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    parts = {"test": perm[:k], "val": perm[k:2 * k], "train": perm[2 * k:]}
    return {name: sorted((s for i in idx for s in groups[keys[i]]), key=lambda s: s.name)
            for name, idx in parts.items()}


def in_common_key(score: Score) -> Score:
    return score.transposed(common_shift(score.tonic, score.mode))


def bars_that_fit(slices: list[tuple[int, int]], first: int, width: int) -> int:
    """The end (exclusive) of the most whole bars from bar `first` whose tokens fit in `width` with the
    header and, after a piece's last bar, its end token; `first` itself when not one bar fits."""
    last, used = first, HEADER
    while last < len(slices):
        used += 1 + 4 * (slices[last][1] - slices[last][0])
        if used + (last + 1 == len(slices)) > width:
            break
        last += 1
    return last


def windows(score: Score, width: int) -> list[list[int]]:
    """Rows of at most `width` tokens: one starting at each bar, as many whole bars as fit."""
    slices = score.bar_slices()
    rows = []
    for first in range(len(slices)):
        last = bars_that_fit(slices, first, width)
        if last > first:  # a bar longer than a row is never trained on (the source says so when none fits)
            rows.append(encode(score, first, last))
    return rows


def rows_tensor(rows: list[list[int]], width: int) -> torch.Tensor:
    x = np.full((len(rows), width), PAD_ID, dtype=np.int64)
    for i, r in enumerate(rows):
        x[i, :len(r)] = r
    return torch.from_numpy(x)


def music_splits(cfg: Any, echo: Any = None) -> tuple[str, dict[str, list[Score]], dict[str, str]]:
    """(source, {split: pieces in the common key}, skipped files): the pieces behind the tensors."""
    name, scores, skipped = source_pieces(cfg, echo)
    splits = split_pieces(scores, cfg.test_fraction, cfg.split_seed)
    return name, {k: [in_common_key(s) for s in v] for k, v in splits.items()}, skipped


def music_dataset(cfg: Any) -> Dataset:
    name, splits, skipped = music_splits(cfg, echo=print)
    width = cfg.block_size + 1
    if not splits["train"]:
        raise DataError(f"music source {name} has no training pieces", "give it more pieces")
    tensors, counts = {}, {}
    for split, pieces in splits.items():
        rows = [r for s in pieces for r in windows(s, width)]
        counts[split] = len(rows)
        if rows:
            tensors[split] = {"x": rows_tensor(rows, width)}
    if "train" not in tensors:
        need = HEADER + 1 + max(1 + 4 * (b - a) for p in splits["train"] for a, b in p.bar_slices())
        raise DataError(f"data.block_size={cfg.block_size} holds no bar of {name}",
                        f"use data.block_size of at least {need} (the recipes use 512: 7 bars of 4/4)")
    prompts = [{"name": s.name, "mode": s.mode, "meter": s.meter, "ids": encode(s, 0, PROMPT_BARS, end=False)}
               for s in splits["test"]]
    meta = {
        "source": name, "codec": "music", "kind": "lines", "tokens": list(TOKENS), "block_size": cfg.block_size,
        "n_train": counts.get("train", 0), "n_val": counts.get("val", 0), "n_test": counts.get("test", 0),
        "pieces": {k: [s.name for s in v] for k, v in splits.items()},
        "meters": sorted({s.meter for s in splits["train"]}),
        "prompts": prompts, "skipped": skipped, "train_bars": CopyFinder.of(splits["train"]).pack(),
        "split": {"rule": "pieces with the same notes grouped, groups shuffled (torch.randperm seeded split_seed); "
                          "test, then val, each round(groups * test_fraction)",
                  "seed": cfg.split_seed, "fraction": cfg.test_fraction},
    }
    if skipped:
        meta["warnings"] = [f"{len(skipped)} files left out: " + "; ".join(
            f"{k} ({v})" for k, v in list(skipped.items())[:5]) + (" ..." if len(skipped) > 5 else "")]
    return Dataset(name, "music", tensors["train"], tensors.get("test"), meta, tensors.get("val"))


@DATA_SOURCES.register("chorales", modality="music")
def chorales_source(cfg: Any, arg: str | None) -> Dataset:
    """The Bach chorales of music21's corpus: four voices, sixteenths, C major / A minor."""
    return music_dataset(cfg)


@DATA_SOURCES.register("midi", modality="music")
def midi_source(cfg: Any, arg: str | None) -> Dataset:
    """A folder of four-voice MIDI files, quantized and transposed as the chorales are."""
    return music_dataset(cfg)


__all__ = ["BAR", "BOS_ID", "HOLD", "INDEX", "music_dataset", "music_splits", "source_pieces", "split_pieces",
           "bars_that_fit", "windows"]
