"""Text sources (`names`, `lines:PATH`, `text:PATH`): a character vocabulary and padded id tensors.

Every sample becomes one int64 row `[<s>, c1, ..., cn, <s>, <pad>, ...]` (lines) or `[<s>, c1, ..., cT]`
(windows of a continuous text), so a batch is an index slice and the next-token target is the row
shifted by one. `<s>` both starts and ends a line, as in makemore; `<pad>` targets are ignored;
characters never seen in training map to `<unk>`.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..limits import MAX_LINE_CHARS, MAX_TEXT_BYTES, MAX_VOCAB
from ..plugins import DATA_SOURCES
from ..vocab import (  # noqa: F401
    BOS,
    EOS,
    PAD,
    SPECIALS,
    UNK,
    Vocab,
    decode_rows,
    line_hash,
    pack_hashes,
    unpack_hashes,
)
from .base import Dataset, split_source

MAX_HASHED = 2_000_000  # lines kept (as 8-byte hashes) for dropping verbatim copies at sampling time


def _digest(items: list[str]) -> str:
    h = hashlib.sha256()
    for s in items:
        h.update(s.encode("utf-8") + b"\n")
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- reading and splitting


def read_utf8(path: str | Path, what: str) -> str:
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{what} file {p} does not exist", "check the path after the colon")
    if p.is_dir():
        raise DataError(f"{what} source {p} is a folder", "point it at one UTF-8 text file")
    if not p.is_file():  # a device (/dev/zero, /dev/urandom) or a pipe never ends
        raise DataError(f"{what} source {p} is not a regular file", "point it at one UTF-8 text file")
    if p.stat().st_size > MAX_TEXT_BYTES:
        raise DataError(f"{what} file {p} is {p.stat().st_size:,} bytes",
                        f"text sources are at most {MAX_TEXT_BYTES:,} bytes: use a part of it")
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{p} is not UTF-8 text (byte {e.start})", "re-save the file as UTF-8") from None


def split_lines(lines: list[str], fraction: float, seed: int) -> dict[str, list[str]]:
    """Deterministic shuffle-split: test and val each take round(n * fraction) lines (file order kept)."""
    n = len(lines)
    k = int(round(n * fraction)) if n > 2 else 0
    k = min(k, (n - 1) // 2)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    parts = {"test": perm[:k], "val": perm[k:2 * k], "train": perm[2 * k:]}
    return {name: [lines[i] for i in idx.sort().values.tolist()] for name, idx in parts.items()}


def split_stream(text: str, fraction: float) -> dict[str, str]:
    """A continuous text: train is the head, then val, then test (the tail), each `fraction` long."""
    k = int(len(text) * fraction)
    n = len(text) - 2 * k
    return {"train": text[:n], "val": text[n:n + k], "test": text[n + k:]}


def windows(text: str, size: int) -> list[str]:
    """Non-overlapping windows of `size` characters (the last one may be shorter)."""
    return [text[i:i + size] for i in range(0, len(text), size)]


def _names_lines() -> list[str]:
    try:
        import names
    except ImportError:
        raise DataError("the built-in `names` data needs the PyPI package `names`", "pip install names") from None
    folder = Path(names.__file__).parent
    seen: dict[str, None] = {}
    for fname in ("dist.male.first", "dist.female.first", "dist.all.last"):
        path = folder / fname
        if not path.is_file():
            raise DataError(f"the `names` package lacks {fname}", "reinstall it: pip install --force-reinstall names")
        for row in path.read_text(encoding="utf-8").splitlines():
            word = row.split(" ", 1)[0].strip().lower()
            if word:
                seen.setdefault(word, None)
    return list(seen)


def _file_lines(path: str) -> list[str]:
    text = read_utf8(path, "lines")
    lines = [s.strip() for s in text.split("\n") if s.strip()]
    longest = max(range(len(lines)), key=lambda i: len(lines[i]), default=None)
    if longest is not None and len(lines[longest]) > MAX_LINE_CHARS:
        raise DataError(f"{path}: a line ({longest + 1}. non-empty) has {len(lines[longest]):,} characters",
                        f"lines: samples are at most {MAX_LINE_CHARS:,} characters; use text:{path} for running text")
    return lines


def _limit(train: list[str], cfg: Any) -> list[str]:
    return train[: cfg.limit] if cfg.limit is not None else train


def load_text_samples(cfg: Any) -> dict[str, list[str]]:
    """Raw text samples per split ("train", "val", "test") for `names`, `lines:PATH` and `text:PATH`.

    Lines sources give one string a line; `text:` gives the windows of `cfg.block_size` characters
    that the model trains on. These are exactly the samples behind the tensors of load_dataset(cfg).
    """
    prefix, arg = split_source(cfg.source)
    if prefix == "names":
        splits = split_lines(_names_lines(), cfg.test_fraction, cfg.split_seed)
    elif prefix == "lines" and arg:
        splits = split_lines(_file_lines(arg), cfg.test_fraction, cfg.split_seed)
    elif prefix == "text" and arg:
        stream = split_stream(read_utf8(arg, "text"), cfg.test_fraction)
        splits = {k: windows(v, cfg.block_size) for k, v in stream.items()}
    else:
        raise DataError(f"'{cfg.source}' is not a text source", "use names, lines:PATH or text:PATH")
    splits["train"] = _limit(splits["train"], cfg)
    return splits


# ---------------------------------------------------------------- tensors


def encode_rows(samples: list[str], vocab: Vocab, width: int, *, end: bool) -> tuple[torch.Tensor, int]:
    """[<s>] + ids (+ [<s>] when `end`), cut to `width` and padded; returns rows and how many were cut."""
    lengths = np.array([len(s) for s in samples], dtype=np.int64)
    ids = vocab.encode_array("".join(samples))            # one pass over all characters
    rows = np.minimum(lengths + 1 + int(end), width)        # tokens kept per row
    x = np.full((len(samples), width), PAD, dtype=np.int64)
    x[:, 0] = BOS
    col = np.arange(width)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(samples) else lengths
    inside = (col[None, :] >= 1) & (col[None, :] <= lengths[:, None]) & (col[None, :] < rows[:, None])
    r, c = np.nonzero(inside)
    x[r, c] = ids[starts[r] + c - 1]
    if end:
        ends = lengths + 1
        keep = ends < width
        x[np.nonzero(keep)[0], ends[keep]] = EOS
    return torch.from_numpy(x), int((lengths + 1 + int(end) > width).sum())


def line_truncation(splits: dict[str, list[str]], block_size: int) -> dict[str, Any]:
    """Which line samples a row of `block_size` cuts, split by split, as text_dataset cuts them.

    A row holds <s>, the characters and the end token, at most block_size + 1 tokens and no wider
    than the longest training sample needs: a sample of block_size characters or more loses its
    end (and its tail), and so does a held-out sample longer than every training sample.
    """
    longest = max((len(s) for s in splits.get("train") or []), default=0)
    width = min(longest + 2, block_size + 1)
    return {"block_size": block_size, "width": width, "longest_train": longest,
            "samples": {k: len(v) for k, v in splits.items()},
            "cut": {k: sum(1 for s in v if len(s) + 2 > width) for k, v in splits.items()},
            "fix": min(longest + 1, MAX_LINE_CHARS) if block_size <= longest else None}


def truncation_warning(t: dict[str, Any]) -> str | None:
    """One sentence on the samples line_truncation found cut (None when none are)."""
    cut, total = sum(t["cut"].values()), sum(t["samples"].values())
    if not cut:
        return None
    where = ", ".join(f"{k} {v:,}" for k, v in t["cut"].items() if v)
    if t["fix"] is None:  # only held-out samples longer than every training sample
        return (f"{cut:,} of {total:,} samples ({where}) are longer than the longest training sample "
                f"({t['longest_train']:,} characters) and are cut to it: their test loss leaves out the rest.")
    return (f"{cut:,} of {total:,} samples ({where}) do not fit data.block_size={t['block_size']} with their "
            f"end token and are cut to their first {t['width'] - 1:,} characters: the model never sees "
            f"their ends nor learns where they stop. The longest training sample has "
            f"{t['longest_train']:,} characters: set data.block_size={t['fix']} to keep every training sample whole.")


def text_dataset(name: str, splits: dict[str, list[str]], *, kind: str, block_size: int,
                 meta: dict[str, Any] | None = None) -> Dataset:
    """Build the padded-id Dataset from split samples (kind "lines": end token; "text": windows)."""
    train = splits.get("train") or []
    if not train:
        raise DataError(f"text source {name} has no training samples", "point it at a non-empty UTF-8 file")
    vocab = Vocab.build(train)
    if len(vocab.chars) > MAX_VOCAB:
        raise DataError(f"text source {name} has {len(vocab.chars):,} distinct characters",
                        f"at most {MAX_VOCAB:,}: is it text, or binary data read as UTF-8?")
    notes: list[str | None] = []
    if kind == "lines":
        cuts = line_truncation(splits, block_size)
        longest, width = cuts["longest_train"], cuts["width"]
        notes.append(truncation_warning(cuts))
    else:
        longest, width = block_size, block_size + 1
    tensors, counts, cut = {}, {}, 0
    for split in ("train", "val", "test"):
        items = splits.get(split) or []
        counts[split] = len(items)
        if items:
            x, c = encode_rows(items, vocab, width, end=kind == "lines")
            tensors[split], cut = {"x": x}, cut + c
    info = {
        "source": name, "kind": kind, "vocab": vocab.chars, "specials": SPECIALS,
        "block_size": width - 1, "max_chars": longest,
        "n_train": counts["train"], "n_val": counts["val"], "n_test": counts["test"], "truncated": cut,
        "split": {"sha256": {k: _digest(v) for k, v in splits.items()}},
        **(meta or {}),
    }
    if any(notes):  # said at train start and in report.md, not only kept here
        info["warnings"] = [w for w in notes if w]
    if kind == "lines" and len(train) <= MAX_HASHED:
        info["train_hashes"] = pack_hashes(train)
    return Dataset(name, "text", tensors["train"], tensors.get("test"), info, tensors.get("val"))


SHUFFLED = "shuffle (torch.randperm seeded split_seed); test, then val, each round(n * test_fraction)"
CONTIGUOUS = "contiguous: train is the head, then val, then test (the tail), each test_fraction long"


def _load(cfg: Any, name: str, kind: str, rule: str) -> Dataset:
    ds = text_dataset(name, load_text_samples(cfg), kind=kind, block_size=cfg.block_size)
    ds.meta["split"].update(rule=rule, seed=cfg.split_seed, fraction=cfg.test_fraction)
    return ds


@DATA_SOURCES.register("names", modality="text")
def names_source(cfg: Any, arg: str | None) -> Dataset:
    """US census first and last names from the `names` package, lower-cased, each once."""
    if arg:
        raise DataError(f"data source 'names:{arg}' takes no path", "write `names`, or lines:PATH for your own file")
    return _load(cfg, "names", "lines", SHUFFLED)


@DATA_SOURCES.register("lines", modality="text")
def lines_source(cfg: Any, arg: str | None) -> Dataset:
    """Each non-empty line of a UTF-8 file is one sample, ended by the end token."""
    return _load(cfg, f"lines:{arg}", "lines", SHUFFLED)


@DATA_SOURCES.register("text", modality="text")
def text_source(cfg: Any, arg: str | None) -> Dataset:
    """One continuous UTF-8 text cut into windows of data.block_size characters."""
    return _load(cfg, f"text:{arg}", "text", CONTIGUOUS)
