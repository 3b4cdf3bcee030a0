"""The in-memory dataset every source produces, the source table and the on-disk cache."""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ..errors import ConfigError, DataError, unknown
from ..files import atomic_write, atomic_write_text
from ..plugins import DATA_SOURCES
from ..tensorfile import read_tensors


@dataclass
class Dataset:
    """Tensors with a shared first dimension, per split, plus JSON-able facts about them.

    Images: `x` uint8 [N, C, H, W] and optionally `y` int64 [N].
    Text: `x` int64 token ids [N, T] (padded), see aigc.data.text.
    `val` is an optional held-out split for choosing checkpoints (text sources have one).
    """

    name: str
    modality: str
    train: dict[str, torch.Tensor]
    test: dict[str, torch.Tensor] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    val: dict[str, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.train["x"])

    def split(self, name: str) -> dict[str, torch.Tensor]:
        if name == "train":
            return self.train
        if name == "test":
            if self.test is None:
                raise DataError(f"dataset {self.name} has no test split", "use the train split")
            return self.test
        if name == "val":
            if self.val is None:
                raise DataError(f"dataset {self.name} has no val split", "use the test split")
            return self.val
        raise DataError(f"unknown split '{name}'", "use train, val or test")


def cache_dir() -> Path:
    """Where decoded datasets and derived files are cached: $AIGC_CACHE or ~/.cache/aigc."""
    root = os.environ.get("AIGC_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aigc"
    return Path(root)


def fingerprint(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (paths, sizes, mtimes, options)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def tensors_digest(*parts: dict[str, torch.Tensor] | None, keys: tuple[str, ...] = ("x", "y")) -> str:
    """A sha256 of the bytes of tensors `keys` of each split given (None skipped): any change shows."""
    h = hashlib.sha256()
    for part in parts:
        for key in keys:
            if part is not None and key in part:
                h.update(part[key].contiguous().numpy().tobytes())
    return h.hexdigest()


def file_stamp(path: Path) -> list[Any]:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def save_splits(splits: dict[str, dict[str, torch.Tensor]], path: Path) -> None:
    """Write {split: {name: tensor}} as one safetensors file ("split/name" keys), atomically."""
    flat = {f"{split}/{k}": v.contiguous() for split, part in splits.items() for k, v in part.items()}
    atomic_write(path, lambda p: save_file(flat, str(p)))


def load_splits(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The inverse of save_splits; a file whose header lies is refused before anything is allocated."""
    splits: dict[str, dict[str, torch.Tensor]] = {}
    for key, v in read_tensors(path).items():
        split, _, name = key.partition("/")
        splits.setdefault(split, {})[name] = v
    return splits


def cached(key: str, build: Callable[[], Dataset]) -> Dataset:
    """Return the dataset cached under `key`, building and storing it on a miss.

    The cache is a convenience: a cache that cannot be read or written is rebuilt or skipped.
    """
    folder = cache_dir() / "datasets"
    tensors_path, meta_path = folder / f"{key}.safetensors", folder / f"{key}.json"
    if tensors_path.is_file() and meta_path.is_file():
        try:
            head = json.loads(meta_path.read_text())
            splits = load_splits(tensors_path)
            return Dataset(head["name"], head["modality"], splits["train"], splits.get("test"), head["meta"],
                           splits.get("val"))
        except Exception:  # a damaged cache entry is rebuilt, never trusted
            pass
    ds = build()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        save_splits({"train": ds.train, "test": ds.test or {}, "val": ds.val or {}}, tensors_path)
        atomic_write_text(meta_path, json.dumps({"name": ds.name, "modality": ds.modality, "meta": ds.meta}))
    except OSError:
        pass
    return ds


def split_source(source: str) -> tuple[str, str | None]:
    """'folder:/x/y' -> ('folder', '/x/y'); 'digits' -> ('digits', None)."""
    prefix, sep, arg = source.partition(":")
    return (prefix, arg) if sep else (source, None)


def load_dataset(cfg: Any) -> Dataset:
    """Resolve `cfg.source` (a DataConfig) through the source table and load it."""
    prefix, arg = split_source(cfg.source)
    loader = DATA_SOURCES.get(prefix)
    if arg is not None and not arg:
        raise DataError(f"data source '{cfg.source}' names no path", f"write it as {prefix}:PATH")
    ds = loader(cfg, arg)
    if cfg.limit is not None:
        ds.train = {k: v[: cfg.limit] for k, v in ds.train.items()}
    if len(ds.train["x"]) == 0:
        raise DataError(f"data source '{cfg.source}' has no training items", "point it at non-empty data")
    if getattr(cfg, "descriptions", None):
        names = list(ds.meta.get("class_names") or [])
        described = {str(k): v for k, v in cfg.descriptions.items()}
        for name in described:
            if name not in names:
                if not names:
                    raise ConfigError(f"data.descriptions names class '{name}' but '{cfg.source}' has no classes",
                                      "describe classes only for labelled data, or remove data.descriptions")
                raise unknown("class in data.descriptions", str(name), names)
        ds.meta["class_descriptions"] = described
    return ds


def random_split(n: int, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A deterministic train/test split of range(n) for sources that have none."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = int(round(n * test_fraction)) if n > 1 else 0
    return perm[n_test:].sort().values, perm[:n_test].sort().values
