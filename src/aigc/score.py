"""Four-voice scores on a sixteenth-note grid: the music modality's leaf (data, models, metrics and the
modality import it; it imports nothing of aigc's but errors and files).

A `Score` holds, for each voice (soprano, alto, tenor, bass) and each sixteenth-note step, the MIDI
pitch sounding (-1: rest) and whether a note starts there, plus the steps where bars begin. The
token encoding (see docs/ARCHITECTURE.md, "Music") writes a score as

    <s> mode meter begin|cont  |  S A T B  S A T B ...  |  S A T B ...  </s>

one token per voice per step, each the pitch of a note that starts there (`p60`), `_` for a note held
from the step before, or `r` for silence; `|` before each bar. It is DeepBach's grid (Hadjeres et al.
2017: sixteenths, a hold symbol) serialized step by step in the order Coconet and Music Transformer
use for the chorales (soprano to bass at each step), with bar lines and a two-token header.
"""
from __future__ import annotations

import base64
import hashlib
import io
import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError

VOICES = ("soprano", "alto", "tenor", "bass")
STEPS_PER_QUARTER = 4  # sixteenth notes
LOW, HIGH = 21, 108    # the pitches a token can name (a piano's keys, A0..C8)
MODES = ("major", "minor")
METERS = ("4/4", "3/4", "2/4", "5/4", "6/4", "2/2", "3/2", "4/2", "3/8", "6/8", "9/8", "12/8")
SPECIAL = ["<pad>", "<s>", "<unk>"]  # the same ids as aigc.vocab: pad 0, start/end 1, unknown 2
HOLD, REST, BAR, BEGIN, CONT = "_", "r", "|", "begin", "cont"
TOKENS = SPECIAL + list(MODES) + list(METERS) + [BEGIN, CONT, BAR, HOLD, REST] + [f"p{p}" for p in range(LOW, HIGH + 1)]
INDEX = {t: i for i, t in enumerate(TOKENS)}
VOICE_IDS = [INDEX[HOLD], INDEX[REST]] + [INDEX[f"p{p}"] for p in range(LOW, HIGH + 1)]  # a voice's token at a step
PAD_ID, BOS_ID, UNK_ID = 0, 1, 2
HEADER = 4  # <s> mode meter begin|cont
PROMPT_BARS = 4  # bars of each test piece's opening kept with a run (sampling's --prompt-bars)
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_SPELLINGS = {"C": 0, "B#": 0, "C#": 1, "DB": 1, "D": 2, "D#": 3, "EB": 3, "E": 4, "FB": 4, "F": 5, "E#": 5,
              "F#": 6, "GB": 6, "G": 7, "G#": 8, "AB": 8, "A": 9, "A#": 10, "BB": 10, "B": 11, "CB": 11}
COMMON = {"major": 0, "minor": 9}  # the common key every piece is transposed to: C major or A minor


def steps_per_bar(meter: str) -> int:
    num, den = (int(v) for v in meter.split("/"))
    return num * 4 * STEPS_PER_QUARTER // den


@dataclass
class Score:
    """pitch int16 [4, T] (-1: rest), onset bool [4, T]; bars: the steps where bars start (ascending,
    the first 0; a short first bar is an upbeat); key: tonic pitch class (0 = C) and mode."""

    pitch: np.ndarray
    onset: np.ndarray
    bars: list[int]
    meter: str = "4/4"
    tonic: int = 0
    mode: str = "major"
    name: str = ""
    facts: dict[str, Any] = field(default_factory=dict)  # e.g. how many tokens a decoder had to skip

    @property
    def steps(self) -> int:
        return int(self.pitch.shape[1])

    @property
    def key(self) -> str:
        return key_name(self.tonic, self.mode)

    def bar_slices(self) -> list[tuple[int, int]]:
        ends = self.bars[1:] + [self.steps]
        return [(a, b) for a, b in zip(self.bars, ends, strict=True) if b > a]

    def transposed(self, semitones: int) -> Score:
        pitch = np.where(self.pitch >= 0, self.pitch + semitones, -1).astype(np.int16)
        return replace(self, pitch=pitch, tonic=(self.tonic + semitones) % 12, facts=dict(self.facts))

    def cut(self, first_bar: int, last_bar: int) -> Score:
        """Bars [first_bar, last_bar) as a score of their own (notes held into the cut start there)."""
        slices = self.bar_slices()[first_bar:last_bar]
        if not slices:
            return replace(self, pitch=self.pitch[:, :0], onset=self.onset[:, :0], bars=[])
        a, b = slices[0][0], slices[-1][1]
        onset = self.onset[:, a:b].copy()
        onset[:, 0] = self.pitch[:, a] >= 0
        return replace(self, pitch=self.pitch[:, a:b].copy(), onset=onset, bars=[s - a for s, _ in slices],
                       facts=dict(self.facts))

    def notes(self) -> list[tuple[int, int, int, int]]:
        """(voice, pitch, start step, length in steps) of every note."""
        out = []
        for v in range(4):
            p, o = self.pitch[v], self.onset[v]
            starts = np.flatnonzero(o & (p >= 0))
            for s in starts:
                e = s + 1
                while e < len(p) and p[e] == p[s] and not o[e]:
                    e += 1
                out.append((v, int(p[s]), int(s), int(e - s)))
        return out


# ---------------------------------------------------------------- keys


def parse_key(text: str) -> tuple[int, str]:
    """'D', 'F# minor', 'bb minor', 'Eb major', 'a' (lower case alone: minor) -> (tonic, mode)."""
    words = str(text).strip().replace("-", " ").split()
    if not words or len(words) > 2:
        raise ConfigError(f"key {text!r} is not a key", "write it like 'D', 'F# minor' or 'Bb major'")
    mode = "minor" if words[0][:1].islower() and len(words) == 1 else "major"
    if len(words) == 2:
        if words[1].lower() not in MODES:
            raise ConfigError(f"key {text!r}: '{words[1]}' is not major or minor", "write e.g. 'F# minor'")
        mode = words[1].lower()
    name = words[0][:1].upper() + words[0][1:].upper().replace("♯", "#").replace("♭", "B")
    if name not in _SPELLINGS:
        raise ConfigError(f"key {text!r}: '{words[0]}' is not a note name", "use C, C#, Db, D, ... B")
    return _SPELLINGS[name], mode


def key_name(tonic: int, mode: str) -> str:
    return f"{PITCH_NAMES[tonic % 12]} {mode}"


def common_shift(tonic: int, mode: str) -> int:
    """Semitones (-6..5) that move a key to the common key (C major, A minor) by the shortest way."""
    d = (COMMON[mode] - tonic) % 12
    return d - 12 if d > 5 else d


# Krumhansl-Kessler key profiles (Krumhansl 1990), as in the Krumhansl-Schmuckler key-finding algorithm
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def pitch_class_weights(pitch: np.ndarray) -> np.ndarray:
    """Sounding time of each pitch class (12,) over a [voices, steps] pitch grid."""
    p = pitch[pitch >= 0]
    return np.bincount(p % 12, minlength=12).astype(np.float64)


def find_key(weights: np.ndarray) -> tuple[int, str, float]:
    """Krumhansl-Schmuckler: the key whose rotated profile correlates best with the pitch-class
    durations; returns (tonic, mode, correlation). Checked against music21's analyze('key') in tests."""
    w = np.asarray(weights, dtype=np.float64)
    if w.sum() <= 0 or np.allclose(w, w[0]):
        return 0, "major", 0.0
    best = (0, "major", -2.0)
    for mode, prof in (("major", _MAJOR), ("minor", _MINOR)):
        for t in range(12):
            r = float(np.corrcoef(w, np.roll(prof, t))[0, 1])
            if r > best[2]:
                best = (t, mode, r)
    return best


# ---------------------------------------------------------------- tokens


def encode(score: Score, first_bar: int = 0, last_bar: int | None = None, *, end: bool = True) -> list[int]:
    """Token ids of bars [first_bar, last_bar): the header, then each bar; `</s>` when `end` and the
    piece's last bar is included. Pitches outside LOW..HIGH are moved by octaves into it."""
    slices = score.bar_slices()
    last = len(slices) if last_bar is None else min(last_bar, len(slices))
    ids = [BOS_ID, INDEX[score.mode], INDEX[score.meter if score.meter in INDEX else "4/4"],
           INDEX[BEGIN if first_bar == 0 else CONT]]
    for a, b in slices[first_bar:last]:
        ids.append(INDEX[BAR])
        for s in range(a, b):
            for v in range(4):
                p = int(score.pitch[v, s])
                if p < 0:
                    ids.append(INDEX[REST])
                elif score.onset[v, s] or s == slices[first_bar][0]:
                    while p < LOW:
                        p += 12
                    while p > HIGH:
                        p -= 12
                    ids.append(INDEX[f"p{p}"])
                else:
                    ids.append(INDEX[HOLD])
    if end and last == len(slices):
        ids.append(BOS_ID)
    return ids


def decode(ids: list[int], *, tonic: int | None = None, name: str = "") -> Score:
    """Token ids back to a score, leniently: tokens out of place are skipped and counted
    (facts['skipped']), a bar cut short is filled with holds, a hold after silence stays silent.
    The key is the header's mode in the common key, moved to `tonic` when given."""
    mode, meter = "major", "4/4"
    steps: list[list[tuple[int, bool]]] = []
    bars: list[int] = []
    cur: list[tuple[int, bool]] = []
    skipped = 0
    last = [-1, -1, -1, -1]
    seen_body = False
    for i in ids:
        t = TOKENS[i] if 0 <= i < len(TOKENS) else "<unk>"
        if t == "<s>":
            if seen_body:  # the end of the piece
                break
        elif t in MODES and not seen_body:
            mode = t
        elif t in METERS and not seen_body:
            meter = t
        elif t in (BEGIN, CONT) and not seen_body:
            pass
        elif t == BAR:
            seen_body = True
            if cur:  # a bar line in the middle of a step: the step's missing voices hold
                skipped += 4 - len(cur)
                cur += [(last[v], False) for v in range(len(cur), 4)]
                steps.append(cur)
                cur = []
            bars.append(len(steps))
        elif t == HOLD or t == REST or t.startswith("p") and t[1:].isdigit():
            seen_body = True
            if not bars:
                bars.append(0)
            v = len(cur)
            if t == HOLD:
                cur.append((last[v], False))
            elif t == REST:
                cur.append((-1, False))
                last[v] = -1
            else:
                p = int(t[1:])
                cur.append((p, True))
                last[v] = p
            if len(cur) == 4:
                steps.append(cur)
                cur = []
        else:
            skipped += 1
    if cur:
        skipped += len(cur)
    n = len(steps)
    pitch = np.full((4, n), -1, dtype=np.int16)
    onset = np.zeros((4, n), dtype=bool)
    for s, step in enumerate(steps):
        for v, (p, o) in enumerate(step):
            pitch[v, s] = p
            onset[v, s] = o and p >= 0
    for v in range(4):  # a held token after silence, or the first step, starts its note
        prev = np.concatenate([[-1], pitch[v, :-1]])
        onset[v] |= (pitch[v] >= 0) & (prev != pitch[v])
    bars = sorted(set(b for b in bars if b < n)) or ([0] if n else [])
    if bars and bars[0] != 0:
        bars = [0] + bars
    score = Score(pitch, onset, bars, meter, COMMON[mode], mode, name, {"skipped": skipped})
    if tonic is not None:
        score = score.transposed(-common_shift(tonic, mode))
    return score


def bar_tokens(meter: str) -> int:
    """Tokens of one full bar: its bar line and four voices a step."""
    return 1 + 4 * steps_per_bar(meter)


# ---------------------------------------------------------------- copies


def bar_hashes(score: Score) -> list[int]:
    """One 8-byte hash a bar: its four voices' pitches and note starts (equal bars, equal hashes)."""
    return [int.from_bytes(hashlib.blake2b(score.pitch[:, a:b].tobytes() + score.onset[:, a:b].tobytes(),
                                           digest_size=8).digest(), "little") for a, b in score.bar_slices()]


class CopyFinder:
    """The longest run of consecutive bars of a piece found, in the same order, in one training piece."""

    def __init__(self, pieces: list[list[int]]):
        self.where: dict[int, list[tuple[int, int]]] = {}
        for p, hashes in enumerate(pieces):
            for k, h in enumerate(hashes):
                self.where.setdefault(h, []).append((p, k))

    @classmethod
    def of(cls, train: list[Score]) -> CopyFinder:
        return cls([bar_hashes(s) for s in train])

    def pack(self) -> dict[str, Any]:
        """The training bars as JSON-able facts (kept with a run, so sampling can drop copies)."""
        by_piece: dict[int, list[tuple[int, int]]] = {}
        for h, places in self.where.items():
            for p, k in places:
                by_piece.setdefault(p, []).append((k, h))
        pieces = [[h for _, h in sorted(by_piece.get(p, []))] for p in range(max(by_piece, default=-1) + 1)]
        flat = np.array([h for hs in pieces for h in hs], dtype="<u8")
        return {"hashes": base64.b64encode(flat.tobytes()).decode("ascii"), "lengths": [len(hs) for hs in pieces]}

    @classmethod
    def unpack(cls, blob: dict[str, Any]) -> CopyFinder:
        """The inverse of pack; damaged facts are a ValueError."""
        try:
            flat = np.frombuffer(base64.b64decode(blob["hashes"], validate=True), dtype="<u8").tolist()
        except (ValueError, TypeError) as e:  # binascii.Error is a ValueError
            raise ValueError(f"its training bars do not decode ({e})") from None
        if sum(blob["lengths"]) != len(flat):
            raise ValueError("its training bars and their counts disagree")
        pieces, at = [], 0
        for n in blob["lengths"]:
            pieces.append(flat[at:at + n])
            at += n
        return cls(pieces)

    def longest(self, score: Score) -> int:
        best, runs = 0, {}
        for h in bar_hashes(score):
            runs = {(p, k): runs.get((p, k - 1), 0) + 1 for p, k in self.where.get(h, [])}
            best = max([best, *runs.values()])
        return best


# ---------------------------------------------------------------- MIDI

TEMPO = 84.0       # quarter notes a minute when a score is played
PROGRAM = 19       # General MIDI church organ: four sustained voices, as the chorales were accompanied


def to_midi(score: Score, tempo: float = TEMPO, program: int = PROGRAM) -> Any:
    """A pretty_midi.PrettyMIDI with one instrument per voice (named), the key and the meter."""
    try:
        import pretty_midi
    except ImportError:
        raise ConfigError("writing MIDI needs the PyPI package pretty_midi", "pip install 'aigc[music]'") from None

    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    sec = 60.0 / tempo / STEPS_PER_QUARTER
    num, den = (int(v) for v in score.meter.split("/"))
    pm.time_signature_changes.append(pretty_midi.TimeSignature(num, den, 0.0))
    pm.key_signature_changes.append(pretty_midi.KeySignature(score.tonic + (12 if score.mode == "minor" else 0), 0.0))
    for voice in VOICES:
        pm.instruments.append(pretty_midi.Instrument(program=program, name=voice.capitalize()))
    for v, p, s, n in score.notes():
        pm.instruments[v].notes.append(pretty_midi.Note(velocity=80, pitch=int(p), start=s * sec, end=(s + n) * sec))
    return pm


def midi_bytes(score: Score, tempo: float = TEMPO) -> bytes:
    buf = io.BytesIO()
    to_midi(score, tempo).write(buf)
    return buf.getvalue()


def scores_from_pretty(pm: Any, name: str) -> Score:
    """A PrettyMIDI with four melodic instruments -> a score (soprano the highest on average);
    onsets and ends rounded to the nearest sixteenth note (ticks / (resolution / 4), so tempo changes
    and any meter count alike). Raises ValueError with the reason."""
    insts = [i for i in pm.instruments if not i.is_drum and i.notes]
    if len(insts) != 4:
        raise ValueError(f"has {len(insts)} melodic parts with notes; four voices (SATB) are needed")
    sixteenth = pm.resolution / 4  # MIDI ticks are counted in quarter notes, whatever the meter

    def step(t: float) -> int:
        return int(round(pm.time_to_tick(t) / sixteenth))

    end = max(step(n.end) for i in insts for n in i.notes)
    insts.sort(key=lambda i: -np.mean([n.pitch for n in i.notes]))
    pitch = np.full((4, end), -1, dtype=np.int16)
    onset = np.zeros((4, end), dtype=bool)
    for v, inst in enumerate(insts):
        for n in sorted(inst.notes, key=lambda n: (n.start, -n.pitch)):
            a, b = step(n.start), step(n.end)
            if b <= a:
                continue  # shorter than a sixteenth: dropped
            pitch[v, a:b] = n.pitch
            onset[v, a] = True
    ts = pm.time_signature_changes
    meter = f"{ts[0].numerator}/{ts[0].denominator}" if ts else "4/4"
    if meter not in METERS:
        raise ValueError(f"is in {meter}; the meters known are {', '.join(METERS)}")
    downbeats = [step(t) for t in pm.get_downbeats()]
    bars = sorted({b for b in downbeats if b < end} | {0})
    if end <= 0 or not (pitch >= 0).any():
        raise ValueError("has no note a sixteenth long or longer")
    tonic, mode, _ = find_key(pitch_class_weights(pitch))
    return Score(pitch, onset, bars, meter, tonic, mode, name)


# ---------------------------------------------------------------- pictures and sound

VOICE_COLOURS = ((214, 39, 40), (31, 119, 180), (44, 160, 44), (148, 103, 189))


def pianoroll_image(score: Score, px: int = 3, title: str | None = None):
    """A PIL piano roll: time left to right (px pixels a sixteenth), pitch upwards (px a semitone),
    each voice its colour (soprano red, alto blue, tenor green, bass purple), bar lines grey."""
    from PIL import Image, ImageDraw

    sounding = score.pitch[score.pitch >= 0]
    lo = int(sounding.min()) - 2 if sounding.size else 48
    hi = int(sounding.max()) + 2 if sounding.size else 84
    top = 12 if title else 0
    w, h = max(1, score.steps) * px + 1, (hi - lo + 1) * px + top
    img = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for c in range(lo, hi + 1):  # C lines faintly
        if c % 12 == 0:
            y = top + (hi - c) * px + px // 2
            draw.line([(0, y), (w, y)], fill=(235, 235, 235))
    for b in score.bars:
        draw.line([(b * px, top), (b * px, h)], fill=(190, 190, 190))
    for v, p, s, n in score.notes():
        y = top + (hi - p) * px
        draw.rectangle([s * px, y, (s + n) * px - 1, y + px - 1], fill=VOICE_COLOURS[v])
        draw.line([(s * px, y), (s * px, y + px - 1)], fill=(0, 0, 0))  # onsets show repeated notes
    if title:
        draw.text((2, 0), title, fill=(0, 0, 0))
    return img


SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")


def soundfont() -> str | None:
    """Debian's General MIDI SoundFont (fluid-soundfont-gm) when it and fluidsynth are installed."""
    if shutil.which("fluidsynth") is None:
        return None
    return next((p for p in SOUNDFONTS if Path(p).is_file()), None)


def render(score: Score, rate: int = 22_050, tempo: float = TEMPO) -> tuple[np.ndarray, str]:
    """The score as float32 mono samples in [-1, 1] and what made them ('fluidsynth' with the GM
    SoundFont, else 'additive': our own organ-like synthesizer)."""
    sf = soundfont()
    if sf is not None:
        wave = _fluidsynth(score, sf, rate, tempo)
        if wave is not None:
            return wave, "fluidsynth"
    return additive(score, rate, tempo), "additive"


def _fluidsynth(score: Score, sf: str, rate: int, tempo: float) -> np.ndarray | None:
    import soundfile

    with tempfile.TemporaryDirectory(prefix="aigc-fs-") as tmp:
        mid, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        mid.write_bytes(midi_bytes(score, tempo))
        try:
            subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(rate), "-F", str(wav), sf, str(mid)],
                           check=True, capture_output=True, timeout=120)
            x, got = soundfile.read(str(wav), dtype="float32", always_2d=True)
        except (OSError, subprocess.SubprocessError, RuntimeError):
            return None
    if got != rate or not len(x):
        return None
    x = x.mean(1)
    peak = float(np.abs(x).max())
    return (x / peak * 0.9).astype(np.float32) if peak > 0 else x.astype(np.float32)


def additive(score: Score, rate: int = 22_050, tempo: float = TEMPO) -> np.ndarray:
    """A plain additive synthesizer: each note five harmonics (1/k amplitudes), a 10 ms attack,
    a 60 ms release, summed and normalised; a second of silence at the end."""
    sec = 60.0 / tempo / STEPS_PER_QUARTER
    out = np.zeros(int((score.steps * sec + 1.0) * rate) + 1, dtype=np.float64)
    attack, release = int(0.01 * rate), int(0.06 * rate)
    for _v, p, s, n in score.notes():
        a, length = int(s * sec * rate), int(n * sec * rate)
        t = np.arange(length + release) / rate
        f = 440.0 * 2 ** ((p - 69) / 12)
        tone = sum(np.sin(2 * math.pi * f * k * t) / k for k in range(1, 6) if f * k < rate / 2)
        env = np.ones_like(t)
        env[:attack] = np.linspace(0, 1, attack, endpoint=False)[: len(env)]
        env[length:] = np.linspace(1, 0, len(env) - length)
        seg = out[a:a + len(t)]
        seg += (tone * env)[: len(seg)]
    peak = np.abs(out).max()
    return (out / peak * 0.9).astype(np.float32) if peak > 0 else out.astype(np.float32)
