"""`aigc data prepare`: an image source shaped once, by the same code `train` runs on the fly,
optionally de-duplicated, saved as a compact dataset with a manifest; read back as `prepared:DIR`.
For text, `--strip-ansi` writes a copy of a lines:/text: file without ANSI escape sequences."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError, UserError
from ..files import atomic_write_text, make_dirs
from ..limits import MAX_SIDE, check_meta
from ..plugins import DATA_SOURCES
from . import dedup as dd
from .base import Dataset, load_dataset, load_splits, save_splits, split_source
from .images import finish_dataset

FORMAT = "aigc-prepared"
VERSION = 1
DATA_FILE, MANIFEST = "data.safetensors", "manifest.json"


def prepare(cfg: Any, out: Path, dedup: bool = False, near: float = dd.NEAR) -> dict[str, Any]:
    """Load cfg.source as `train` would (decode, crop, resize, channels, split), optionally drop
    duplicates, and write out/data.safetensors plus out/manifest.json; return the manifest."""
    ds = load_dataset(cfg)
    if ds.modality != "image":
        raise DataError(f"`data prepare` handles image sources; '{cfg.source}' is {ds.modality}",
                        "train on text sources directly; --strip-ansi writes a copy without terminal colour codes")
    splits = {"train": dict(ds.train)}
    if ds.test is not None and len(ds.test["x"]):
        splits["test"] = dict(ds.test)
    c, h, w = ds.train["x"].shape[1:]
    steps = [f"decoded {cfg.source}" + (f" (first {cfg.limit} training items)" if cfg.limit else ""),
             f"shaped to {c}x{h}x{w} (data.image_size={cfg.image_size}, data.channels={cfg.channels}, "
             f"data.crop={cfg.crop})"]
    if ds.meta.get("skipped"):
        steps.append(f"skipped {len(ds.meta['skipped'])} unreadable files")
    steps.append(f"split {len(ds.train['x'])} train / {len(splits.get('test', {'x': []})['x'])} test "
                 "(the source's own split, else data.test_fraction with data.split_seed)")
    dropped = None
    if dedup:
        dropped = drop_duplicates(splits, near)
        steps.append(f"dropped exact and near-duplicates (cosine >= {near}), keeping the first training "
                     f"copy, and test items duplicating training items: {dropped}")
    x = splits["train"]["x"].float().div_(255.0)
    manifest = {
        "format": FORMAT, "version": VERSION, "source": cfg.source,
        "options": {k: v for k, v in asdict(cfg).items() if k not in ("source", "block_size")},
        "shape": [int(c), int(h), int(w)],
        "counts": {k: len(v["x"]) for k, v in splits.items()},
        "class_names": ds.meta.get("class_names") or [],
        # per channel, of the [0, 1] pixels of the training split: what `Normalize(mean, std)` takes
        "normalisation": {"mean": x.mean((0, 2, 3)).tolist(), "std": x.std((0, 2, 3)).tolist()},
        "dedup": None if dropped is None else {"near_threshold": near, "dropped": dropped},
        "steps": steps,
        "meta": {k: v for k, v in ds.meta.items() if k not in ("shape", "n_train", "n_test")},
    }
    make_dirs(out)
    save_splits(splits, out / DATA_FILE)
    # the manifest is written last: without it, nothing is there
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1, default=str))
    return manifest


def strip_ansi_copy(source: str, out: Path) -> dict[str, Any]:
    """A copy of the file behind a `lines:` or `text:` source without its ANSI escape sequences
    (terminal colour codes), written to `out`; the facts: sequences removed, lines touched, the new source."""
    from ..vocab import ANSI
    from .text import read_utf8

    prefix, arg = split_source(source)
    if prefix not in ("lines", "text") or not arg:
        raise DataError(f"--strip-ansi cleans the file of a lines:FILE or text:FILE source, not '{source}'",
                        "name the file, e.g. aigc data prepare lines:poems.txt --strip-ansi --out poems.clean.txt")
    src, out = Path(arg).expanduser(), Path(out)
    if out.exists() and out.resolve() == src.resolve():
        raise DataError(f"--out {out} is the source file itself", "write the cleaned copy to another file")
    text = read_utf8(src, prefix)
    lines = text.split("\n")
    touched = sum(1 for line in lines if "\x1b" in line and ANSI.search(line))
    clean, removed = ANSI.subn("", text)
    atomic_write_text(out, clean)
    return {"source": source, "out": str(out), "sequences": removed, "lines": touched,
            "clean_source": f"{prefix}:{out}"}


def drop_duplicates(splits: dict[str, dict[str, torch.Tensor]], near: float = dd.NEAR) -> dict[str, int]:
    """Drop, in place, all but one member of each exact/near-duplicate group (see dedup.keep_first)."""
    names = list(splits)
    x = torch.cat([splits[n]["x"] for n in names])
    split_of = np.concatenate([np.full(len(splits[n]["x"]), i) for i, n in enumerate(names)])
    is_test = split_of == names.index("test") if "test" in names else np.zeros(len(x), bool)
    keys = dd.content_hashes(x)
    exact = dd.groups_from_keys(keys)
    exact_pairs = np.array([(g[0], j) for g in exact for j in g[1:]], np.int64).reshape(-1, 2)
    near_pairs, _ = dd.near_pairs(dd.near_features(x), near)
    drop = dd.keep_first(len(x), np.concatenate([exact_pairs, near_pairs]), is_test)
    counts = {}
    for i, n in enumerate(names):
        keep = torch.from_numpy(~drop[split_of == i])
        counts[n] = int((~keep).sum())
        splits[n] = {k: v[keep] for k, v in splits[n].items()}
    return counts


@DATA_SOURCES.register("prepared", modality="image")
def prepared(cfg: Any, arg: str | None) -> Dataset:
    """A folder written by `aigc data prepare`; data.image_size/channels, if set, still apply."""
    root = Path(arg or "")
    if not (root / MANIFEST).is_file() or not (root / DATA_FILE).is_file():
        raise DataError(f"{root} is not a prepared dataset (no {MANIFEST} and {DATA_FILE})",
                        "make one with `aigc data prepare SOURCE --out DIR`")
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        splits = load_splits(root / DATA_FILE)
    except UserError as e:  # a safetensors file that is damaged or lies about its contents
        raise DataError(e.message, "prepare the dataset again with `aigc data prepare`") from None
    except Exception as e:  # damaged JSON
        raise DataError(f"cannot read the prepared dataset in {root}: {type(e).__name__}",
                        "prepare it again") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise DataError(f"{root}/{MANIFEST} is not an {FORMAT} v{VERSION} manifest", "prepare it again")
    train = splits.get("train")
    if train is None or "x" not in train or train["x"].dtype != torch.uint8 or train["x"].ndim != 4:
        raise DataError(f"{root}/{DATA_FILE} holds no uint8 [N,C,H,W] train/x", "prepare it again")
    if train["x"].shape[1] not in (1, 3) or min(train["x"].shape[2:]) == 0 or max(train["x"].shape[2:]) > MAX_SIDE:
        raise DataError(f"{root}/{DATA_FILE} holds images of shape {list(train['x'].shape[1:])}",
                        f"1 or 3 channels and sides of 1..{MAX_SIDE}: prepare it again")
    meta = dict(manifest.get("meta") or {})
    meta.update(source=f"prepared:{root}", prepared=manifest.get("steps", []))
    if manifest.get("class_names"):
        meta["class_names"] = manifest["class_names"]
    check_meta(meta, f"{root}/{MANIFEST}", DataError)
    test = splits.get("test")
    k = len(meta.get("class_names") or [])
    for name, part in (("train", train), ("test", test or {})):
        if part and part["x"].shape[1:] != train["x"].shape[1:]:
            raise DataError(f"{root}/{DATA_FILE}: {name}/x holds {list(part['x'].shape[1:])} images, train/x "
                            f"{list(train['x'].shape[1:])}", "prepare it again")
        y = part.get("y")
        if y is not None and (y.dtype != torch.int64 or y.shape != part["x"].shape[:1]
                              or (len(y) and (int(y.min()) < 0 or int(y.max()) >= max(k, 1)))):
            raise DataError(f"{root}/{DATA_FILE}: {name}/y does not hold one label in 0..{max(k, 1) - 1} per image",
                            "prepare it again")
    return finish_dataset(root.name, cfg, train, test, meta)
