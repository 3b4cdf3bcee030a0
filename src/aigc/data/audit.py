"""Image dataset audit: counts, balance, sizes, pixel statistics, unreadable files, exact and
near-duplicates (within and across splits) and outliers, with what each finding means."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..pixels import conv_plan, conv_sides_near
from . import dedup
from .base import load_dataset, random_split, split_source
from .images import decode_image, list_images, shape_images

AUDIT_SIDE = 64        # folders of mixed sizes are compared at this side unless data.image_size is set
OUTLIER_Z = 5.0        # robust z-score of the distance to the class centre that counts as an outlier
TINY = 1000            # fewer training images than this is a tiny dataset for a GAN or VAE
SHOW = 12              # groups (rows) per contact sheet


@dataclass
class ImageSplit:
    """The items of one split as the audit sees them."""

    x: torch.Tensor                      # uint8 [N, C, S, S]
    y: torch.Tensor                      # int64 [N], -1 where unlabelled
    names: list[str]                     # file paths or 'train[12]'
    keys: list[str]                      # content hashes of the decoded pixels
    sizes: Counter = field(default_factory=Counter)   # 'WxH' -> count (as stored)
    modes: Counter = field(default_factory=Counter)   # PIL mode -> count


@dataclass
class ImageData:
    source: str
    splits: dict[str, ImageSplit]
    class_names: list[str]
    unreadable: list[str]
    train_side: int | None = None    # the side `train` shapes images to (None: mixed sizes, which it refuses)
    split_off: int = 0               # images of `train` that training holds out as its test split


# ---------------------------------------------------------------- collecting

def collect_images(cfg: Any) -> ImageData:
    """The dataset named by cfg.source, as stored: folders are scanned file by file, so sizes,
    modes and unreadable files are seen; every other source is loaded as `train` loads it."""
    prefix, arg = split_source(cfg.source)
    if prefix == "folder" and arg:
        return scan_folder(Path(arg), cfg)
    ds = load_dataset(cfg)
    splits = {}
    for name, part in (("train", ds.train), ("test", ds.test)):
        if part is None or len(part["x"]) == 0:
            continue
        x = part["x"]
        n, c, h, w = x.shape
        y = part.get("y", torch.full((n,), -1, dtype=torch.int64))
        splits[name] = ImageSplit(x, y, [f"{name}[{i}]" for i in range(n)], dedup.content_hashes(x),
                                  Counter({f"{w}x{h}": n}), Counter({"L" if c == 1 else "RGB": n}))
    h, w = ds.train["x"].shape[2:]
    return ImageData(cfg.source, splits, list(ds.meta.get("class_names") or []),
                     list(ds.meta.get("skipped") or []), int(h) if h == w else None)


def scan_folder(root: Path, cfg: Any) -> ImageData:
    """Decode every file under root (or root/train and root/test), never giving up on bad ones."""
    from ..errors import DataError

    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist", "check the path after 'folder:'")
    split_dirs = {"train": root / "train", "test": root / "test"}
    if not all(d.is_dir() for d in split_dirs.values()):
        split_dirs = {"train": root}
    found = {name: list_images(d) for name, d in split_dirs.items()}
    classes = sorted({c for _, cs in found.values() for c in cs})
    decoded: dict[str, list[tuple[str, np.ndarray, int]]] = {}
    sizes: dict[str, Counter] = {}
    modes: dict[str, Counter] = {}
    bad: list[str] = []
    for name, (files, _) in found.items():
        decoded[name], sizes[name], modes[name] = [], Counter(), Counter()
        for f in files:
            try:
                from PIL import Image

                with Image.open(f) as im:
                    size, mode = f"{im.width}x{im.height}", im.mode
                arr = decode_image(f, None)
            except Exception as e:  # PIL raises many types for damaged files
                bad.append(f"{f}: {type(e).__name__}")
                continue
            rel = f.relative_to(split_dirs[name]).parts
            label = classes.index(rel[0]) if len(rel) > 1 and rel[0] in classes else -1
            decoded[name].append((str(f), arr, label))
            sizes[name][size] += 1
            modes[name][mode] += 1
    items = [a for v in decoded.values() for _, a, _ in v]
    if not items:
        raise DataError(f"no readable images in {root}", "point the audit at a folder of image files")
    side = cfg.image_size or min(AUDIT_SIDE, max(max(a.shape[:2]) for a in items))
    chans = cfg.channels or (1 if all(a.shape[2] == 1 for a in items) else 3)
    splits = {}
    for name, entries in decoded.items():
        if not entries:
            continue
        xs = [shape_images(torch.from_numpy(np.array(a)).permute(2, 0, 1)[None],
                           side, chans, cfg.crop, cfg.split_seed) for _, a, _ in entries]
        keys = [dedup.content_hash(a) for _, a, _ in entries]
        splits[name] = ImageSplit(torch.cat(xs), torch.tensor([lab for _, _, lab in entries]),
                                  [p for p, _, _ in entries], keys, sizes[name], modes[name])
    stored = {sz for c in sizes.values() for sz in c}
    w, _, h = next(iter(stored)).partition("x")
    train_side = cfg.image_size or (int(w) if len(stored) == 1 and w == h else None)
    n = len(decoded.get("train") or [])
    split_off = 0  # a folder without train/ and test/ is split as `train` splits it (see images.folder)
    if "test" not in split_dirs and cfg.test_fraction > 0 and n >= 10:
        split_off = len(random_split(n, cfg.test_fraction, cfg.split_seed)[1])
    return ImageData(f"folder:{root}", splits, classes, bad, train_side, split_off)


# ---------------------------------------------------------------- findings

def audit_images(data: ImageData, near: float = dedup.NEAR) -> tuple[dict[str, Any], dict[str, list[list[int]]]]:
    """Every finding as JSON-able facts, and the groups of item ids each contact sheet shows."""
    names = list(data.splits)
    item = item_names(data)
    x = torch.cat([s.x for s in data.splits.values()])
    y = torch.cat([s.y for s in data.splits.values()]).numpy()
    split_of = np.concatenate([np.full(len(s.x), i) for i, s in enumerate(data.splits.values())])
    keys = [k for s in data.splits.values() for k in s.keys]
    is_test = split_of == names.index("test") if "test" in names else np.zeros(len(x), bool)
    report: dict[str, Any] = {"kind": "image", "source": data.source, "near_threshold": near,
                              "splits": {n: _split_facts(s, data.class_names) for n, s in data.splits.items()},
                              "unreadable": data.unreadable}

    exact = dedup.groups_from_keys(keys)
    feats = dedup.near_features(x)
    pairs, _ = dedup.near_pairs(feats, near)
    same = np.array([keys[i] == keys[j] for i, j in pairs], bool).reshape(-1)
    near_only = pairs[~same] if len(pairs) else pairs
    near_groups = dedup.representatives(len(x), near_only, is_test)
    report["exact_duplicates"] = _dup_facts(exact, split_of, names, item)
    report["near_duplicates"] = _dup_facts(near_groups, split_of, names, item)
    exact_pairs = np.array([(g[0], j) for g in exact for j in g[1:]], np.int64).reshape(-1, 2)
    all_pairs = np.concatenate([exact_pairs, near_only])
    report["cross_split"] = _leak_facts(exact_pairs, near_only, is_test, item)
    drop = dedup.keep_first(len(x), all_pairs, is_test)
    report["dedup_would_drop"] = {n: int(drop[split_of == i].sum()) for i, n in enumerate(names)}
    report["outliers"] = _outliers(feats, y, item)
    report["training"] = _training_facts(data)
    report["advice"] = advice(report)
    cross = all_pairs[is_test[all_pairs[:, 0]] != is_test[all_pairs[:, 1]]] if len(all_pairs) else all_pairs
    sheets = {"exact_duplicates": exact, "near_duplicates": near_groups,
              "cross_split": [sorted(p, key=lambda i: is_test[i]) for p in cross.tolist()],
              "outliers": _rows([i for i, _ in report["outliers"].pop("_ids")], 8)}
    return report, sheets


def _training_facts(data: ImageData) -> dict[str, Any]:
    """What `train` and the metrics will get from this data: image counts and the side, and
    whether the convolutional families can build that side (pixels.conv_plan, their rule)."""
    n_train = len(data.splits["train"].x) if "train" in data.splits else 0
    n_test = len(data.splits["test"].x) if "test" in data.splits else 0
    side = data.train_side
    return {"train_images": n_train - data.split_off, "held_out_images": n_test + data.split_off,
            "held_out_from_train": data.split_off, "side": side,
            "conv_buildable": None if side is None else conv_plan(side) is not None,
            "conv_sides_near": [] if side is None or conv_plan(side) else conv_sides_near(side)}


def _rows(ids: list[int], width: int) -> list[list[int]]:
    return [ids[k:k + width] for k in range(0, len(ids), width)]


def item_names(data: ImageData) -> list[str]:
    return [n for s in data.splits.values() for n in s.names]


def _split_facts(s: ImageSplit, class_names: list[str]) -> dict[str, Any]:
    f = s.x.float().div_(255.0)
    facts: dict[str, Any] = {
        "n": len(s.x), "sizes": dict(s.sizes.most_common()), "modes": dict(s.modes.most_common()),
        "shape_audited": list(s.x.shape[1:]),
        "pixel_mean": [round(v, 4) for v in f.mean((0, 2, 3)).tolist()],
        "pixel_std": [round(v, 4) for v in f.std((0, 2, 3)).tolist()],
    }
    labels = s.y[s.y >= 0]
    if len(labels):
        counts = torch.bincount(labels, minlength=len(class_names)).tolist()
        facts["classes"] = {(class_names[i] if i < len(class_names) else str(i)): c for i, c in enumerate(counts)}
        nonzero = [c for c in counts if c]
        facts["balance"] = round(max(counts) / max(min(counts), 1), 3) if nonzero else None
        facts["unlabelled"] = int((s.y < 0).sum())
    return facts


def _dup_facts(groups: list[list[int]], split_of: np.ndarray, names: list[str],
               item: list[str]) -> dict[str, Any]:
    per_split = {n: 0 for n in names}
    for g in groups:
        for i, n in enumerate(names):
            members = sum(1 for j in g if split_of[j] == i)
            per_split[n] += max(members - 1, 0)    # extra copies inside the split
    return {"groups": len(groups), "items": sum(len(g) for g in groups),
            "extra_copies_within_split": per_split, "examples": [[item[i] for i in g[:8]] for g in groups[:50]]}


def _leak_facts(exact_pairs: np.ndarray, near_pairs: np.ndarray, is_test: np.ndarray,
                item: list[str]) -> dict[str, Any]:
    def leaked(pairs: np.ndarray) -> set[int]:
        if len(pairs) == 0:
            return set()
        a, b = is_test[pairs[:, 0]], is_test[pairs[:, 1]]
        cross = pairs[a != b]
        return {int(j if is_test[j] else i) for i, j in cross}

    ex = leaked(exact_pairs)
    nr = leaked(near_pairs) - ex
    return {"test_items_exact_in_train": len(ex), "test_items_near_in_train": len(nr),
            "test_items": int(is_test.sum()), "examples": [item[i] for i in sorted(ex | nr)[:50]]}


def _outliers(feats: torch.Tensor, y: np.ndarray, item: list[str]) -> dict[str, Any]:
    """Items far from their class centre, by a robust z-score (median and MAD of the distances)."""
    z = np.zeros(len(feats))
    for c in np.unique(y):
        idx = np.nonzero(y == c)[0]
        if len(idx) < 8:
            continue
        f = feats[idx]
        d = (f - f.mean(0)).norm(dim=1).numpy()
        med = np.median(d)
        mad = np.median(np.abs(d - med)) * 1.4826 + 1e-9
        z[idx] = (d - med) / mad
    order = np.argsort(-z)
    flagged = order[z[order] >= OUTLIER_Z]
    top = [(int(i), round(float(z[i]), 2)) for i in order[:48] if z[i] >= OUTLIER_Z]
    return {"z_threshold": OUTLIER_Z, "count": int(len(flagged)),
            "top": [[item[i], v] for i, v in top], "_ids": top}


# ---------------------------------------------------------------- what to do

def advice(r: dict[str, Any]) -> list[str]:
    """Concrete consequences of the findings, most serious first."""
    out = []
    t = r.get("training") or {}
    if t.get("conv_buildable") is False:
        s, near = t["side"], t["conv_sides_near"]
        out.append(f"The convolutional families (dcgan, vae-conv, and cvae or beta-vae with model.arch=conv) "
                   f"cannot build {s}x{s} images and will refuse this data: train with --set "
                   f"data.image_size={near[-1]} (the sides nearest {s} they build: {' and '.join(map(str, near))}), "
                   "or use gan-mlp or vae-mlp, which take any size.")
    if t and t["train_images"] < TINY:
        held = t["held_out_images"]
        split = (f" ({t['held_out_from_train']} of the {t['train_images'] + t['held_out_from_train']} are held "
                 "out by data.test_fraction)") if t["held_out_from_train"] else ""
        metrics = (f"the metrics' held-out set has only {held} images, so FID, KID and precision/recall "
                   "(which want thousands) will be noisy and the memorization check weak" if held
                   else "there is no held-out set, so the metrics that compare with real images cannot run")
        out.append(f"Tiny dataset: {t['train_images']} training images{split}, fewer than {TINY:,}: a GAN or "
                   f"VAE will memorize them or collapse to a few rather than learn their variety, and "
                   f"{metrics}. Collect more images, and read the scores as rough.")
    cs = r["cross_split"]
    leaks = cs["test_items_exact_in_train"] + cs["test_items_near_in_train"]
    if leaks:
        out.append(f"{leaks} of {cs['test_items']} test images duplicate training images "
                   f"({cs['test_items_exact_in_train']} exact, {cs['test_items_near_in_train']} near): "
                   "test scores will read high and memorization checks will flag copies that are "
                   "really leaks; `aigc data prepare SOURCE --dedup` drops them from test.")
    if r["unreadable"]:
        out.append(f"{len(r['unreadable'])} files cannot be decoded (listed in report.json): training "
                   "skips them while they are under 10% of a folder; repair or remove them.")
    for kind, label in (("exact_duplicates", "exact"), ("near_duplicates", "near-")):
        extra = r[kind]["extra_copies_within_split"]
        total = sum(extra.values())
        if total:
            where = ", ".join(f"{v} in {k}" for k, v in extra.items() if v)
            out.append(f"{total} {label}duplicate copies within splits ({where}): those images weigh "
                       "more in training and a model may reproduce them; `--dedup` keeps one of each.")
    for name, s in r["splits"].items():
        if s.get("balance") and s["balance"] >= 2.0:
            cls = s["classes"]
            lo, hi = min(cls, key=cls.get), max(cls, key=cls.get)
            out.append(f"{name}: class '{lo}' has {cls[lo]} images against {cls[hi]} for '{hi}' "
                       f"({s['balance']}x): a conditional model will draw '{lo}' worse; collect more or "
                       "oversample it.")
        if len(s["sizes"]) > 1:
            out.append(f"{name}: images come in {len(s['sizes'])} sizes: set data.image_size explicitly "
                       "so every image is cropped and resized the same way.")
        if len(s["modes"]) > 1:
            out.append(f"{name}: images mix modes ({', '.join(s['modes'])}): set data.channels (1 or 3).")
    if r["outliers"]["count"]:
        out.append(f"{r['outliers']['count']} images lie far from their class (robust z >= "
                   f"{OUTLIER_Z:g}): look at outliers.png for wrong labels, blank or damaged images.")
    if not out:
        out.append("No problems found: no unreadable files, duplicates, leaks or outliers.")
    return out
