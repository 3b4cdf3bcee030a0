"""Music metrics: held-out likelihood per token and per sixteenth step, and music statistics of
samples beside the same statistics of real test pieces (their spread is the yardstick).

Likelihood: each held-out piece is cut into consecutive windows of whole bars (every token predicted
once, with the context of its window), and the model's negative log-likelihood is summed over the
tokens after each window's header. Reported per token, per voice token (the 4 a step), and per
sixteenth step (all tokens of a step, its share of bar lines and the end token included).

Statistics (each per piece, samples and real test pieces cut to the same number of bars):
- pitch-class distance: total variation between the piece's pitch-class durations and the mean of
  the training pieces' (all in C major / A minor);
- out of range: share of notes outside their voice's training range (its 1st..99th percentile);
- parallels: share of moves where two voices that both move form consecutive perfect fifths or
  octaves (unisons) by interval class;
- note density: note starts a voice a sixteenth;
- key consistency: share of bars whose own key (Krumhansl-Schmuckler on the bar and its neighbours)
  is the piece's key;
- copying: the longest run of consecutive bars found, in the same order, in one training piece.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.music import bars_that_fit
from ..errors import ConfigError
from ..score import (
    BAR,
    BOS_ID,
    HEADER,
    INDEX,
    PAD_ID,
    VOICE_IDS,
    CopyFinder,
    Score,
    encode,
    find_key,
    pitch_class_weights,
)

MUSIC_EVAL_N = 64     # pieces sampled for the statistics
EVAL_BARS = 8         # bars of each sampled piece (and of each real piece it is compared with)
STATS = ("pitch_class_distance", "out_of_range", "parallels", "note_density", "key_consistency")
LOWER_BETTER = {"pitch_class_distance", "out_of_range", "parallels"}


# ---------------------------------------------------------------- likelihood


def chunks(score: Score, width: int) -> list[list[int]]:
    """Consecutive windows of whole bars, each at most `width` tokens, covering the piece once."""
    slices = score.bar_slices()
    out, first = [], 0
    while first < len(slices):
        last = bars_that_fit(slices, first, width)
        if last == first:  # one bar wider than a window: never for the chorales at 512 tokens
            raise ConfigError(f"{score.name}: bar {first + 1} is wider than a window of {width} tokens",
                              "train with a larger data.block_size")
        out.append(encode(score, first, last))
        first = last
    return out


@torch.no_grad()
def likelihood(model: Any, pieces: list[Score], width: int, batch: int = 16) -> dict[str, Any]:
    """NLL (nats) per token, per voice token and per sixteenth step over held-out pieces."""
    rows = [r for s in pieces for r in chunks(s, width)]
    total = {"all": 0.0, "voice": 0.0, "bar": 0.0, "end": 0.0}
    count = {"all": 0, "voice": 0, "bar": 0, "end": 0}
    voice_ids = torch.tensor(VOICE_IDS)
    was = model.training
    model.eval()
    for i in range(0, len(rows), batch):
        part = rows[i:i + batch]
        x = torch.full((len(part), max(len(r) for r in part)), PAD_ID, dtype=torch.int64)
        for j, r in enumerate(part):
            x[j, :len(r)] = torch.tensor(r)
        logits, _ = model(x[:, :-1])
        tgt = x[:, 1:]
        nll = F.cross_entropy(logits.float().flatten(0, 1), tgt.flatten(), ignore_index=PAD_ID,
                              reduction="none").view(tgt.shape).double()
        body = torch.zeros_like(tgt, dtype=torch.bool)
        body[:, HEADER - 1:] = True  # targets from the first bar line on (the header is given, not composed)
        body &= tgt != PAD_ID
        kinds = {"voice": body & torch.isin(tgt, voice_ids), "bar": body & (tgt == INDEX[BAR]),
                 "end": body & (tgt == BOS_ID)}
        total["all"] += float(nll[body].sum())
        count["all"] += int(body.sum())
        for k, m in kinds.items():
            total[k] += float(nll[m].sum())
            count[k] += int(m.sum())
    model.train(was)
    steps = count["voice"] / 4
    return {
        "nats_per_token": total["all"] / max(1, count["all"]),
        "nats_per_voice_token": total["voice"] / max(1, count["voice"]),
        "nats_per_step": total["all"] / max(1, steps),
        "bits_per_step": total["all"] / max(1, steps) / math.log(2),
        "tokens": count["all"], "steps": int(steps), "pieces": len(pieces), "windows": len(rows),
    }


# ---------------------------------------------------------------- statistics


def openings(pieces: list[Score], bars: int = EVAL_BARS) -> list[Score]:
    """The first `bars` bars of each piece that has as many: the real side of the statistics."""
    return [s.cut(0, bars) for s in pieces if len(s.bar_slices()) >= bars]


def voice_ranges(pieces: list[Score]) -> list[tuple[int, int]]:
    """Each voice's 1st..99th percentile pitch over the note starts of `pieces`."""
    out = []
    for v in range(4):
        ps = np.concatenate([s.pitch[v][s.onset[v] & (s.pitch[v] >= 0)] for s in pieces]) if pieces else np.array([60])
        out.append((int(np.percentile(ps, 1)), int(np.percentile(ps, 99))) if ps.size else (0, 127))
    return out


def mean_histogram(pieces: list[Score]) -> np.ndarray:
    hs = [pitch_class_weights(s.pitch) for s in pieces]
    hs = [h / h.sum() for h in hs if h.sum() > 0]
    return np.mean(hs, 0) if hs else np.full(12, 1 / 12)


def parallels(score: Score) -> float:
    """Share of two-voice moves (both voices change pitch between consecutive note starts) that go
    from a perfect fifth to a perfect fifth or from an octave/unison to an octave/unison."""
    events = np.flatnonzero(score.onset.any(0))
    moves = bad = 0
    prev = None
    for s in events:
        cur = score.pitch[:, s]
        if prev is not None:
            for i in range(4):
                for j in range(i + 1, 4):
                    a0, b0, a1, b1 = prev[i], prev[j], cur[i], cur[j]
                    if min(a0, b0, a1, b1) < 0 or a0 == a1 or b0 == b1:
                        continue
                    moves += 1
                    i0, i1 = abs(int(a0) - int(b0)) % 12, abs(int(a1) - int(b1)) % 12
                    bad += i0 == i1 and i0 in (0, 7)
        prev = cur
    return bad / moves if moves else 0.0


def key_consistency(score: Score) -> float:
    """Share of bars whose local key (the bar with its two neighbours) is the piece's key."""
    tonic, mode, _ = find_key(pitch_class_weights(score.pitch))
    sl = score.bar_slices()
    if not sl:
        return 0.0
    same = 0
    for k in range(len(sl)):
        a, b = sl[max(0, k - 1)][0], sl[min(len(sl) - 1, k + 1)][1]
        t, m, _ = find_key(pitch_class_weights(score.pitch[:, a:b]))
        same += (t, m) == (tonic, mode)
    return same / len(sl)


def piece_stats(score: Score, reference: np.ndarray, ranges: list[tuple[int, int]]) -> dict[str, float]:
    h = pitch_class_weights(score.pitch)
    h = h / h.sum() if h.sum() > 0 else np.full(12, 1 / 12)
    starts = [(v, p) for v, p, _, _ in score.notes()]
    outside = sum(1 for v, p in starts if not ranges[v][0] <= p <= ranges[v][1])
    return {
        "pitch_class_distance": float(0.5 * np.abs(h - reference).sum()),
        "out_of_range": outside / len(starts) if starts else 1.0,
        "parallels": parallels(score),
        "note_density": float(score.onset.sum() / max(1, 4 * score.steps)),
        "key_consistency": key_consistency(score),
    }


def stats_table(pieces: list[Score], train: list[Score]) -> dict[str, Any]:
    """Per-piece statistics of `pieces` (lists) against the training pieces' reference."""
    reference, ranges = mean_histogram(train), voice_ranges(train)
    rows = [piece_stats(s, reference, ranges) for s in pieces]
    finder = CopyFinder.of(train)
    return {"per_piece": {k: [r[k] for r in rows] for k in STATS},
            "copy_bars": [finder.longest(s) for s in pieces]}


def summarize(real: dict[str, Any], made: dict[str, Any]) -> dict[str, Any]:
    """Samples' mean of each statistic beside the real pieces' mean and 10th..90th percentile spread."""
    out: dict[str, Any] = {}
    inside = 0
    for k in STATS:
        r = np.asarray(real["per_piece"][k], dtype=np.float64)
        m = np.asarray(made["per_piece"][k], dtype=np.float64)
        lo, hi = (float(np.percentile(r, 10)), float(np.percentile(r, 90))) if r.size else (math.nan, math.nan)
        mean = float(m.mean()) if m.size else math.nan
        ok = bool(lo <= mean <= hi)
        inside += ok
        out[k] = {"samples": mean, "real": float(r.mean()) if r.size else math.nan, "real_p10": lo, "real_p90": hi,
                  "within_spread": ok}
    copies = np.asarray(made["copy_bars"])
    out["within_spread"] = f"{inside} of {len(STATS)}"
    out["copying"] = {"longest_bars": int(copies.max()) if copies.size else 0,
                      "mean_longest_bars": float(copies.mean()) if copies.size else 0.0,
                      "over_2_bars": int((copies > 2).sum()),
                      "real_longest_bars": int(max(real["copy_bars"], default=0)),
                      "real_over_2_bars": int(sum(1 for c in real["copy_bars"] if c > 2))}
    return out


# ---------------------------------------------------------------- runs and the floor


def _pieces(loaded_or_cfg: Any) -> dict[str, list[Score]]:
    from ..data.music import music_splits

    _, splits, _ = music_splits(loaded_or_cfg)
    return splits


ENCODING = ("tokens: 4 a sixteenth (S, A, T, B: a pitch that starts, _ held, r silent), | before each bar, "
            "</s> at the end; the 4-token header is given, not scored")


def _sections(nll: dict[str, Any] | None, summary: dict[str, Any], n: int, against: str) -> list[dict[str, Any]]:
    out = []
    if nll is not None:
        out.append({"name": "likelihood", "n": nll["pieces"], "against": "held-out pieces, every token once",
                    "features": "the model's own probabilities", "note": ENCODING,
                    "values": {k: nll[k] for k in ("nats_per_token", "nats_per_voice_token", "nats_per_step",
                                                   "bits_per_step")}})
    spread = "; ".join(f"{k} {summary[k]['real_p10']:.3g}-{summary[k]['real_p90']:.3g}" for k in STATS)
    out.append({"name": "music", "n": n, "against": against, "features": "aigc.metrics.music statistics",
                "note": f"means over pieces; the real pieces' 10%-90% spread: {spread}; within it: "
                        f"{summary['within_spread']}",
                "values": {k: summary[k]["samples"] for k in STATS}})
    c = summary["copying"]
    out.append({"name": "copying", "n": n, "against": "the training pieces, bar by bar",
                "features": "exact bars (pitches and starts, common key)",
                "note": "longest run of consecutive bars found in order in one training piece",
                "values": {"longest_bars": c["longest_bars"], "mean_longest_bars": c["mean_longest_bars"],
                           "pieces_over_2_bars": c["over_2_bars"]}})
    return out


def evaluate_music_run(loaded: Any, data: Any, request: Any) -> dict[str, Any]:
    """Test likelihood, and `n` sampled pieces of EVAL_BARS bars against the test pieces' first bars;
    the floor: the val pieces measured the same way."""
    import time

    splits = _pieces(loaded.config.data)
    split = request.split if request.split in ("test", "val") else "test"
    held = splits[split]
    real_cut = openings(held)
    if not real_cut:
        raise ConfigError(f"the {split} split holds {len(held)} pieces, none of {EVAL_BARS} bars or more: nothing "
                          "to measure the samples against", "give the source more pieces (the split takes "
                          "data.test_fraction of them)")
    n = request.n_or(MUSIC_EVAL_N)
    request.echo(f"likelihood of {len(held)} {split} pieces ...")
    nll = likelihood(loaded.model, held, int(data.meta["block_size"]) + 1)
    request.echo(f"sampling {n} pieces of {EVAL_BARS} bars ...")
    t0 = time.perf_counter()
    samples = loaded.sample(n, seed=request.seed, bars=EVAL_BARS)
    seconds = time.perf_counter() - t0
    real = stats_table(real_cut, splits["train"])
    summary = summarize(real, stats_table(samples, splits["train"]))
    against = f"{len(real_cut)} {split} pieces (their first {EVAL_BARS} bars)"
    result: dict[str, Any] = {
        "kind": "run", "modality": "music", "data": data.meta.get("source", data.name), "split": split,
        "run": str(loaded.run_dir), "checkpoint": loaded.checkpoint.name, "n": n, "bars": EVAL_BARS,
        "against": against, "features": {"name": "music statistics"},
        "sections": _sections(nll, summary, n, against), "statistics": summary, "likelihood": nll,
        "sampling_seconds": seconds, "references": REFERENCES,
        "tokens_out_of_place": float(np.mean([s.facts.get("skipped", 0) for s in samples])) if samples else 0.0,
    }
    if request.floor:
        other = "val" if split == "test" else "test"
        val = openings(splits[other])
        floor = summarize(real, stats_table(val, splits["train"]))
        result["floor"] = {"kind": "real", "n": len(val), "data": result["data"], "statistics": floor,
                           "sections": _sections(None, floor, len(val), against)}
    return result


def evaluate_music_real(data: Any, request: Any) -> dict[str, Any]:
    """The floor alone: val pieces measured as samples would be against the test pieces."""
    from ..config import DataConfig

    source = data.meta.get("source", data.name)
    how = data.meta.get("split") or {}
    splits = _pieces(DataConfig(source=source, block_size=int(data.meta["block_size"]),
                                split_seed=int(how.get("seed", 3407)), test_fraction=float(how.get("fraction", 0.1))))
    cut, val = openings(splits["test"]), openings(splits["val"])
    summary = summarize(stats_table(cut, splits["train"]), stats_table(val, splits["train"]))
    against = f"{len(cut)} test pieces (their first {EVAL_BARS} bars)"
    return {"kind": "real", "modality": "music", "data": source, "n": len(val), "bars": EVAL_BARS,
            "against": against, "features": {"name": "music statistics"}, "statistics": summary,
            "sections": _sections(None, summary, len(val), against)}


# Published chorale likelihoods, with what each measures (see docs/ARCHITECTURE.md, "Music"). Their
# numbers are not copied here: the papers' tables could not be read from this offline machine, and a
# figure we did not see is not quoted.
REFERENCES = [
    {"work": "Boulanger-Lewandowski, Bengio, Vincent 2012 (ICML; arXiv 1206.6392), JSB chorales",
     "where": "Table 1: log-likelihood per time step of RNN, RNN-RBM, RNN-NADE",
     "comparable": "no: an 88-key binary piano roll at quarter-note frames (no voices, no note starts) on "
                   "JSB's 229/76/77 split; our nats_per_step are per sixteenth with four named voices"},
    {"work": "Huang et al. 2019 (Music Transformer, ICLR; arXiv 1809.04281), JSB chorales",
     "where": "its JSB table: validation NLL of Coconet, a Transformer and relative attention",
     "comparable": "closest: Coconet's grid, sixteenths, voices serialized S-A-T-B per step as ours; but a pitch "
                   "per voice-step with no hold symbol (a held note repeats its pitch), no bar lines, JSB's "
                   "split: compare with our nats_per_voice_token only roughly"},
]
