"""The music token codec: how the sequence families (Transformer, LSTM, GRU, RNN) sample chorales.

Registered as CODECS["music"]; a music source writes `codec: music` in its facts, so `aigc train
chorales-transformer` builds the ordinary Transformer, whose samples this turns into scores.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ConfigError
from ..plugins import CODECS
from ..score import (
    BAR,
    BEGIN,
    BOS_ID,
    INDEX,
    METERS,
    MODES,
    PROMPT_BARS,
    TOKENS,
    VOICE_IDS,
    CopyFinder,
    Score,
    bar_tokens,
    common_shift,
    decode,
    encode,
    parse_key,
    steps_per_bar,
)
from .autoregressive import CharLM, TokenCodec, check_sampling
from .base import SampleOptions

MAX_BARS = 256
MAX_ROUNDS = 20  # sampling rounds when drawing again the pieces that copy training bars


@dataclass
class MusicSampleOptions(SampleOptions):
    temperature: float = 1.0       # sharpen (< 1) or flatten (> 1) the choices; 0 is greedy
    top_k: int | None = None       # choose only among the k likeliest tokens
    top_p: float | None = None     # choose only among the likeliest tokens holding this mass
    bars: int = 8                  # each piece's length in bars, the prompt's bars included
    prompt_bars: int = 0           # start from the first bars of a test piece (sample i: test piece i)
    key: str | None = None         # e.g. "D" or "F# minor": its mode steers the model, the piece is moved to it
    max_copy_bars: int | None = None  # draw again a piece repeating more consecutive bars of one training piece
    cache: bool = True             # reuse past keys/values or hidden states (same tokens, faster)

    def check(self) -> None:
        check_sampling(self.temperature, self.top_k, self.top_p, None)
        if not 1 <= self.bars <= MAX_BARS:
            raise ConfigError(f"bars is {self.bars}", f"ask for 1 to {MAX_BARS} bars")
        if not 0 <= self.prompt_bars < self.bars:
            raise ConfigError(f"prompt-bars is {self.prompt_bars} with bars {self.bars}",
                              "use fewer prompt bars than bars (0: no prompt)")
        if self.prompt_bars > PROMPT_BARS:
            raise ConfigError(f"prompt-bars is {self.prompt_bars}",
                              f"a run keeps the first {PROMPT_BARS} bars of each test piece: use 0 to {PROMPT_BARS}")
        if self.key is not None:
            parse_key(self.key)
        if self.max_copy_bars is not None and not 0 <= self.max_copy_bars <= MAX_BARS:
            raise ConfigError(f"max-copy-bars is {self.max_copy_bars}", "use 0 or more bars, e.g. 2")


def header_end(ids: list[int]) -> int:
    """Index of the first bar line (the header's length)."""
    return ids.index(INDEX[BAR]) if INDEX[BAR] in ids else len(ids)


def cut_at(row: list[int], start: int, token: int, k: int) -> list[int]:
    """The row before its k-th `token` after position `start` (the whole row when it has fewer)."""
    seen = 0
    for i in range(start, len(row)):
        if row[i] == token:
            seen += 1
            if seen == k:
                return row[:i]
    return row


def recent(row: list[int], most: int) -> list[int]:
    """A context like the windows the model trained on: the row's newest whole bars within `most`
    tokens (at least the last bar) under a `cont` header, notes held into them starting again."""
    score = decode(row)
    n = len(score.bar_slices())
    for k in range(n):  # the earliest bar whose tail fits
        ids = encode(score, k, end=False)
        if len(ids) <= most:
            return ids
    return encode(score, max(0, n - 1), end=False)


def first_bars(ids: list[int], bars: int) -> list[int]:
    """A prompt's header and its first `bars` bars."""
    seen = 0
    for i, t in enumerate(ids):
        if t == INDEX[BAR]:
            seen += 1
            if seen > bars:
                return ids[:i]
    return list(ids)


class Grammar:
    """Which tokens fit where each row stands: the header's mode, a meter the data had and `begin`,
    then bars of whole steps (four voice tokens each), a bar line only between steps and always when
    a bar of the meter is full (a first bar may be shorter: an upbeat). Fed the rows as they grow."""

    def __init__(self, n: int, meters: list[str]):
        self.seen = [0] * n
        self.state = [{"at": 0, "per_bar": 64, "pos": -1, "bars": 0} for _ in range(n)]
        self.masks = {}
        v = len(TOKENS)

        def mask(ids: list[int]) -> torch.Tensor:
            m = torch.zeros(v, dtype=torch.bool)
            m[ids] = True
            return m

        voice = list(VOICE_IDS)
        self.masks = {"mode": mask([INDEX[m] for m in MODES]),
                      "meter": mask([INDEX[m] for m in meters if m in INDEX] or [INDEX["4/4"]]),
                      "begin": mask([INDEX[BEGIN]]), "bar": mask([INDEX[BAR]]), "voice": mask(voice),
                      "either": mask(voice + [INDEX[BAR]])}

    def _feed(self, st: dict[str, Any], t: int) -> None:
        name = TOKENS[t]
        if st["at"] == 0:
            st["at"] = 1  # <s>
        elif st["at"] == 1:
            st["at"] = 2  # the mode
        elif st["at"] == 2:
            st["per_bar"] = 4 * steps_per_bar(name) if name in METERS else 64
            st["at"] = 3
        elif st["at"] == 3:
            st["at"] = 4  # begin or cont
        elif name == BAR:
            st["pos"], st["bars"] = 0, st["bars"] + 1
        else:
            st["pos"] += 1

    def _next(self, st: dict[str, Any]) -> torch.Tensor:
        at = st["at"]
        if at < 4:
            return self.masks[("mode", "mode", "meter", "begin")[at]]
        if st["pos"] < 0 or st["pos"] >= st["per_bar"]:
            return self.masks["bar"]
        if st["pos"] % 4 or st["pos"] == 0:
            return self.masks["voice"]
        return self.masks["either"] if st["bars"] == 1 else self.masks["voice"]  # an upbeat ends early

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        first = min(self.seen)
        rows = tokens[:, first:].tolist()  # only the tokens not fed yet
        out = []
        for r, st in enumerate(self.state):
            for t in rows[r][self.seen[r] - first:]:
                self._feed(st, t)
            self.seen[r] = tokens.shape[1]
            out.append(self._next(st))
        return torch.stack(out)


@CODECS.register("music")
class MusicCodec(TokenCodec):
    """Four voices on a sixteenth grid (aigc.score); samples are `Score`s."""

    modality = "music"
    SampleOptions = MusicSampleOptions
    preview_n = 8  # pieces drawn for each progress sample (each is rendered to a WAV)

    def __init__(self, meta: dict[str, Any]):
        super().__init__(meta)
        tokens = list(meta.get("tokens") or [])
        if tokens != TOKENS:
            raise ConfigError("this run's music vocabulary is not the one this aigc reads",
                              "sample it with the aigc version that trained it, or train again")
        self.prompts = list(meta.get("prompts") or [])
        self._copies: CopyFinder | None = None

    @property
    def size(self) -> int:
        return len(TOKENS)

    def hints(self, model: CharLM) -> dict[str, dict[str, Any]]:
        return {"key": {"default": None}}

    def prefixes(self, n: int, prompt_bars: int, mode: str | None) -> list[tuple[list[int], str]]:
        """Per sample: the tokens it starts from and where they come from."""
        if not prompt_bars:
            start = [BOS_ID] + ([INDEX[mode]] if mode else [])
            return [(start, "")] * n
        chosen = [p for p in self.prompts if mode is None or p["mode"] == mode]
        if not chosen:
            raise ConfigError(f"this run keeps no test piece{' in ' + mode if mode else ''} to take a prompt from",
                              "sample without --prompt-bars" + (", or in the other mode" if mode else ""))
        # the prompt's bars, then the bar line that opens the first new bar (an upbeat stays as short as it was)
        return [(first_bars(list(chosen[i % len(chosen)]["ids"]), prompt_bars) + [INDEX[BAR]],
                 chosen[i % len(chosen)]["name"]) for i in range(n)]

    def copies(self) -> CopyFinder:
        if self._copies is None:
            blob = self.meta.get("train_bars")
            if blob is None:
                raise ConfigError("this run keeps no training bars to compare with",
                                  "train it again with this aigc to use max-copy-bars")
            try:
                self._copies = CopyFinder.unpack(blob)
            except (ValueError, KeyError, TypeError) as e:
                raise ConfigError(f"this run's data.json is damaged: {e}", "restore it from the run") from None
        return self._copies

    def _draw(self, model: CharLM, prefix: list[int], n: int, bars: int, generator: torch.Generator | None,
              **pick: Any) -> list[list[int]]:
        """n rows continuing `prefix` until each holds `bars` bars (cut before the bar line after the last).

        A model with a bounded context (a Transformer) draws as many bars as fit; each row then goes
        on alone from a context it was trained on: the header with `cont` and its newest whole bars."""
        bar = INDEX[BAR]
        opened = prefix.count(bar)
        meters = set(self.meta.get("meters") or []) | {TOKENS[t] for t in prefix[2:3]}  # a prompt's own meter too
        longest = max((bar_tokens(m) for m in meters if m in METERS), default=bar_tokens("4/4"))
        room = None if model.max_context is None else (model.max_context - len(prefix) - 8) // longest
        first = bars - opened + 1 if room is None else max(1 if opened else 2, min(bars - opened + 1, room))
        rows = model.generate(list(prefix), n, first * longest + 8, generator=generator, banned=[BOS_ID],
                              until=(bar, first), allowed=self.grammar(n), **pick)
        out = [cut_at(row, len(prefix), bar, first) for row in rows.tolist()]
        for r, row in enumerate(out):
            while row.count(bar) < bars and model.max_context is not None:
                context = recent(row, model.max_context // 2)
                more = max(1, min(bars - row.count(bar), (model.max_context - len(context) - 8) // longest))
                got = model.generate(context + [bar], 1, more * longest + 8, generator=generator, banned=[BOS_ID],
                                     until=(bar, more), allowed=self.grammar(1), **pick)
                row = row + [bar] + cut_at(got[0].tolist(), len(context) + 1, bar, more)[len(context) + 1:]
                if got.shape[1] == len(context) + 1:
                    break  # nothing came (cannot happen with the grammar; never loop forever)
            out[r] = row
        return out

    def grammar(self, n: int) -> Grammar:
        return Grammar(n, list(self.meta.get("meters") or ["4/4"]))

    def sample(self, model: CharLM, n: int, generator: torch.Generator | None = None, *, labels: Any = None,
               temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None, bars: int = 8,
               prompt_bars: int = 0, key: str | None = None, max_copy_bars: int | None = None,
               cache: bool = True) -> list[Score]:
        """n pieces of `bars` bars each (the end token is not drawn: a piece is as long as asked).

        max_copy_bars: a piece repeating more consecutive bars of one training piece is drawn again (at
        most MAX_ROUNDS rounds, so fewer than n may come back from a model that mostly copies)."""
        if labels is not None:
            raise ConfigError("music models take no labels", "use --key or --prompt-bars to steer the music")
        MusicSampleOptions(temperature, top_k, top_p, bars, prompt_bars, key, max_copy_bars, cache).check()
        tonic, mode = parse_key(key) if key is not None else (None, None)
        finder = self.copies() if max_copy_bars is not None else None
        starts = self.prefixes(n, prompt_bars, mode)
        out: list[Score | None] = [None] * n
        pick = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "cache": cache}
        for _ in range(MAX_ROUNDS if finder is not None else 1):
            groups: dict[tuple[int, ...], list[int]] = {}
            for i, (ids, _) in enumerate(starts):
                if out[i] is None:
                    groups.setdefault(tuple(ids), []).append(i)
            for ids, idx in groups.items():  # samples with the same start are drawn together
                rows = self._draw(model, list(ids), len(idx), bars, generator, **pick)
                for j, row in zip(idx, rows, strict=True):
                    score = decode(row, name=f"{j:03d}")  # in the common key, where the training bars are
                    made = len(score.bars)
                    score = score.cut(0, bars)
                    copied = finder.longest(score.cut(prompt_bars, bars)) if finder is not None else None
                    if copied is not None and copied > max_copy_bars:
                        continue
                    if tonic is not None:
                        score = score.transposed(-common_shift(tonic, score.mode))
                    score.facts.update(prompt=starts[j][1], prompt_bars=prompt_bars, bars_made=min(made, bars),
                                       **({"copy_bars": copied} if copied is not None else {}))
                    out[j] = score
            if all(s is not None for s in out):
                break
        return [s for s in out if s is not None]


__all__ = ["MusicCodec", "MusicSampleOptions", "TOKENS"]
