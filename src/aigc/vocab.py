"""Character vocabulary and line hashes shared by the text data and the text families; ANSI escape
sequences and control characters in text (found, stripped, or escaped for showing)."""
from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import numpy as np
import torch

PAD, BOS, UNK = 0, 1, 2
EOS = BOS  # one token starts and ends a line
SPECIALS = ["<pad>", "<s>", "<unk>"]


class Vocab:
    """Characters <-> ids; ids 0..2 are the special tokens, characters start at 3."""

    def __init__(self, chars: list[str]):
        self.chars = list(chars)
        self.index = {c: i + len(SPECIALS) for i, c in enumerate(self.chars)}
        self._points = np.array([ord(c) for c in self.chars], dtype=np.int64)
        if len(self._points) and np.any(np.diff(self._points) <= 0):
            order = np.argsort(self._points)
            self._points, self._ids = self._points[order], order + len(SPECIALS)
        else:
            self._ids = np.arange(len(self.chars)) + len(SPECIALS)

    @classmethod
    def build(cls, texts: list[str]) -> Vocab:
        chars: set[str] = set()
        for t in texts:
            chars.update(t)
        return cls(sorted(chars))

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Vocab:
        return cls(list(meta["vocab"]))

    def __len__(self) -> int:
        return len(SPECIALS) + len(self.chars)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(c, UNK) for c in text]

    def encode_array(self, text: str) -> np.ndarray:
        """Fast encoding of a long string (code points looked up by binary search)."""
        points = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.int64)
        if not len(self._points):
            return np.full(len(points), UNK, dtype=np.int64)
        pos = np.clip(np.searchsorted(self._points, points), 0, len(self._points) - 1)
        return np.where(self._points[pos] == points, self._ids[pos], UNK).astype(np.int64)

    def decode(self, ids: Any) -> str:
        """Ids -> text; `<pad>` and `<s>` vanish, `<unk>` shows as U+FFFD."""
        n = len(SPECIALS)
        out = []
        for i in ids:
            i = int(i)
            if i >= n:
                out.append(self.chars[i - n])
            elif i == UNK:
                out.append("\ufffd")
        return "".join(out)


def decode_rows(ids: torch.Tensor, vocab: Vocab, kind: str, skip: int = 0) -> list[str]:
    """Rows of ids (after `skip` leading ids) back to strings, cut at the end token for `lines` data."""
    out = []
    for row in ids[:, skip:].tolist():
        if kind == "lines" and EOS in row:
            row = row[:row.index(EOS)]
        out.append(vocab.decode(row))
    return out


def line_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def pack_hashes(lines: list[str]) -> str:
    arr = np.unique(np.array([line_hash(s) for s in lines], dtype=np.uint64))
    return base64.b64encode(arr.astype("<u8").tobytes()).decode("ascii")


def unpack_hashes(blob: str) -> set[int]:
    return {int(h) for h in np.frombuffer(base64.b64decode(blob), dtype="<u8")}


# ANSI escape sequences: CSI (ESC [ ... final byte, e.g. the colour code ESC[32m), OSC (ESC ] ... BEL or
# ESC \, e.g. window titles and hyperlinks) and the two-character escapes (ESC 7, ESC c, ...).
ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b\n]*(?:\x07|\x1b\\)|[0-Z\\^-~])")
# What a terminal acts on rather than shows: C0 controls (newline and tab aside), DEL, C1 controls,
# and the bidirectional embeddings, overrides and isolates that reorder the text around them.
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strip_ansi(text: str) -> str:
    """The text without its ANSI escape sequences (terminal colour codes and the like)."""
    return ANSI.sub("", text)


def escape_controls(text: str) -> str:
    """Text safe to show on a terminal or in markdown: printable characters, newlines and tabs as
    they are; every control character as a visible escape (ESC -> \\x1b, CR -> \\r, U+202E -> \\u202e)."""
    return CONTROLS.sub(lambda m: repr(m.group())[1:-1], text)
