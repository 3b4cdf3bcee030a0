"""Character vocabulary and line hashes shared by the text data and the text families."""
from __future__ import annotations

import base64
import hashlib
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
