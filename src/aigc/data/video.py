"""Video sources: clips as uint8 [N, T, C, H, W] (T frames of C x H x W), labels `y` [N] where known.

- `moving:SOURCE`: items of an image source (`moving:fashion-mnist`, `moving:digits`,
  `moving:folder:PATH`) bouncing inside an empty frame, generated from a seed (Srivastava et al. 2015's
  Moving MNIST is `moving:mnist` with image_size 64, frames 20, items 2, item_size 28). Each item gets a
  random start, direction and speed (`data.speed` pixels a frame), moves in a straight line and bounces
  off the walls; items are drawn over each other by maximum, as in Moving MNIST. Training clips take
  their items from the source's training split, test clips from its test split. With one item a clip's
  label `y` is the item's class; with several, `classes` [N, items] holds each item's and there is no `y`.
- `clips:PATH`: a folder of a user's animated GIFs (labels from sub-folders, a test split from
  `train/` and `test/` sub-folders or `data.test_fraction` by file), each frame centre-cropped and
  resized to `data.image_size`, each file cut into consecutive windows of `data.frames` frames.

Both are generated or decoded once and cached like the images.
"""
from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ..plugins import DATA_SOURCES
from .base import (
    Dataset,
    cached,
    file_stamp,
    fingerprint,
    random_split,
    split_source,
    tensors_digest,
)

DEFAULT_SIDE, DEFAULT_FRAMES, DEFAULT_ITEMS, DEFAULT_SPEED, DEFAULT_FPS = 32, 16, 1, (1.0, 3.0), 8
DEFAULT_CLIPS = 10_000      # training clips generated (test clips: a fifth as many)
MAX_FRAMES, MAX_ITEMS, MAX_CLIPS = 128, 4, 200_000
MAX_CLIP_VALUES = 1 << 31   # bytes of generated clips held at once (2 GiB)
VIDEO_EXTS = {".gif"}
OTHER_VIDEO = {".mp4", ".webm", ".mov", ".avi", ".mkv"}
MAX_BAD_SHARE = 0.10


@dataclasses.dataclass(frozen=True)
class Layout:
    side: int
    frames: int
    items: int
    item_size: int
    speed: tuple[float, float]
    clips: int
    fps: int


def video_settings(cfg: Any) -> Layout:
    """The clip layout the config asks for, with the CPU-sized defaults (32x32, 16 frames, one item
    of 16x16 at 1-3 pixels a frame); one ConfigError naming a bad value."""
    side = cfg.image_size or DEFAULT_SIDE
    frames = DEFAULT_FRAMES if cfg.frames is None else cfg.frames
    items = DEFAULT_ITEMS if cfg.items is None else cfg.items
    item = cfg.item_size if cfg.item_size is not None else (28 if side >= 56 else max(1, side // 2))
    speed = tuple(float(v) for v in (cfg.speed if cfg.speed is not None else DEFAULT_SPEED))
    clips = DEFAULT_CLIPS if cfg.clips is None else cfg.clips
    fps = DEFAULT_FPS if cfg.fps is None else cfg.fps
    if not 2 <= frames <= MAX_FRAMES:
        raise ConfigError(f"data.frames is {frames}", f"use 2 to {MAX_FRAMES}, e.g. 16")
    if not 1 <= items <= MAX_ITEMS:
        raise ConfigError(f"data.items is {items}", f"use 1 to {MAX_ITEMS}")
    if not 1 <= item <= side:
        raise ConfigError(f"data.item_size is {item} for frames of {side}x{side}", f"use 1 to {side}, e.g. {side // 2}")
    if len(speed) != 2 or not 0 <= speed[0] <= speed[1] or not all(math.isfinite(v) for v in speed):
        raise ConfigError(f"data.speed is {list(cfg.speed)}", "give [lowest, highest] pixels a frame, e.g. [1, 3]")
    if speed[1] > side:
        raise ConfigError(f"data.speed reaches {speed[1]:g} pixels a frame in a {side}-pixel frame",
                          f"use at most {side} pixels a frame (a few, e.g. {max(1, side // 16)}-{max(2, side // 8)}, look like motion)")
    if not 1 <= clips <= MAX_CLIPS:
        raise ConfigError(f"data.clips is {clips}", f"use 1 to {MAX_CLIPS:,}")
    if not 1 <= fps <= 60:
        raise ConfigError(f"data.fps is {fps}", "use 1 to 60 frames a second")
    return Layout(side, frames, items, item, speed, clips, fps)


def bounce_paths(n: int, lay: Layout, g: torch.Generator) -> torch.Tensor:
    """Top-left corners [n, items, frames, 2] (row, col) of items moving in straight lines at a random
    speed and direction, reflected at the frame's walls, rounded to whole pixels."""
    room = float(lay.side - lay.item_size)
    start = torch.rand(n, lay.items, 2, generator=g, dtype=torch.float64) * room
    angle = torch.rand(n, lay.items, generator=g, dtype=torch.float64) * (2 * math.pi)
    lo, hi = lay.speed
    speed = lo + torch.rand(n, lay.items, generator=g, dtype=torch.float64) * (hi - lo)
    vel = torch.stack([torch.sin(angle), torch.cos(angle)], -1) * speed.unsqueeze(-1)
    t = torch.arange(lay.frames, dtype=torch.float64).view(1, 1, -1, 1)
    free = start.unsqueeze(2) + vel.unsqueeze(2) * t  # where the item would be without walls
    if room == 0:
        return torch.zeros_like(free, dtype=torch.int64)
    folded = torch.remainder(free, 2 * room)  # a reflection is a fold of the line into [0, room]
    return torch.where(folded > room, 2 * room - folded, folded).round().long()


def render(items: torch.Tensor, which: torch.Tensor, paths: torch.Tensor, lay: Layout) -> torch.Tensor:
    """Clips uint8 [n, T, C, side, side]: item images `items[which[i, k]]` pasted at `paths[i, k, t]`,
    overlapping items combined by their maximum (as Moving MNIST)."""
    n, c, s = len(which), items.shape[1], lay.item_size
    out = torch.zeros(n, lay.frames, c, lay.side, lay.side, dtype=torch.uint8)
    rows = torch.arange(s)
    idx_n = torch.arange(n).view(-1, 1, 1)
    for k in range(lay.items):
        img = items[which[:, k]]  # [n, C, s, s]
        for t in range(lay.frames):
            r = paths[:, k, t, 0].view(-1, 1) + rows  # [n, s]
            cc = paths[:, k, t, 1].view(-1, 1) + rows
            frame = out[:, t].permute(0, 2, 3, 1)  # [n, side, side, C] view
            region = frame[idx_n, r.view(n, s, 1), cc.view(n, 1, s)]  # [n, s, s, C]
            frame[idx_n, r.view(n, s, 1), cc.view(n, 1, s)] = torch.maximum(region, img.permute(0, 2, 3, 1))
    return out


def moving_clips(items: torch.Tensor, labels: torch.Tensor | None, n: int, lay: Layout, seed: int
                 ) -> dict[str, torch.Tensor]:
    """n clips from item images uint8 [M, C, s, s] (labels [M] or None), deterministic for `seed`."""
    g = torch.Generator().manual_seed(seed)
    which = torch.randint(0, len(items), (n, lay.items), generator=g)
    paths = bounce_paths(n, lay, g)
    out: dict[str, torch.Tensor] = {"x": torch.cat([render(items, which[i:i + 2000], paths[i:i + 2000], lay)
                                                    for i in range(0, n, 2000)])}
    if labels is not None:
        if lay.items == 1:
            out["y"] = labels[which[:, 0]]
        else:
            out["classes"] = labels[which]
    return out


@DATA_SOURCES.register("moving", modality="video")
def moving(cfg: Any, arg: str | None) -> Dataset:
    from .base import load_dataset

    if not arg:
        raise ConfigError("data.source 'moving' names no image source", "write it as moving:fashion-mnist")
    if split_source(arg)[0] in ("moving", "clips"):
        raise ConfigError(f"data.source 'moving:{arg}' moves clips, not images", "name an image source, e.g. moving:digits")
    lay = video_settings(cfg)
    # the items: the image source shaped to the item's size (a typo in it is that source's own one line)
    icfg = dataclasses.replace(cfg, source=arg, image_size=lay.item_size, limit=None)
    images = load_dataset(icfg)
    if images.modality != "image":
        raise ConfigError(f"moving:{arg} needs an image source, not {images.modality}", "e.g. moving:fashion-mnist")
    clip_bytes = lay.clips * 6 // 5 * lay.frames * lay.side * lay.side * images.train["x"].shape[1]
    if clip_bytes > MAX_CLIP_VALUES:
        raise ConfigError(f"{lay.clips:,} clips of {lay.frames} x {lay.side}x{lay.side} would take "
                          f"{clip_bytes / 2**30:.1f} GiB", "lower data.clips, data.frames or data.image_size")
    names = list(images.meta.get("class_names") or [])
    if images.test is None and not cfg.test_fraction:
        raise ConfigError(f"{arg} has no test split and data.test_fraction is 0",
                          "set data.test_fraction (e.g. 0.2): test clips take items the training clips never show")
    key = "moving-" + fingerprint(images.name, images.meta.get("source"), tensors_digest(images.train, images.test), names,
                                  dataclasses.asdict(lay), cfg.split_seed, cfg.test_fraction, cfg.channels, cfg.crop)

    def build() -> Dataset:
        tr, te = images.train, images.test
        if te is None:  # a source without a test split: hold out items (never the same item in both)
            keep, held = random_split(len(tr["x"]), cfg.test_fraction, cfg.split_seed)
            tr, te = {k: v[keep] for k, v in tr.items()}, {k: v[held] for k, v in tr.items()}
        if not len(te["x"]):
            raise DataError(f"{arg} has too few items for a test split", "use a larger image source")
        train = moving_clips(tr["x"], tr.get("y") if names else None, lay.clips, lay, cfg.split_seed)
        test = moving_clips(te["x"], te.get("y") if names else None, max(1, lay.clips // 5), lay, cfg.split_seed + 1)
        meta = {"source": f"moving:{arg}", "shape": [lay.frames, *train["x"].shape[2:]], "fps": lay.fps,
                "items": lay.items, "item_size": lay.item_size, "speed": list(lay.speed), "synthetic": True,
                "note": f"generated: {lay.items} item(s) of {arg} bouncing in a {lay.side}x{lay.side} frame",
                "n_train": len(train["x"]), "n_test": len(test["x"])}
        if names:
            meta["item_classes"] = names
            if lay.items == 1:
                meta.update(class_names=names, num_classes=len(names))
        return Dataset(f"moving-{images.name}", "video", train, test, meta)

    return cached(key, build)


# ---------------------------------------------------------------- a folder of the user's clips

def read_gif(path: Path, side: int, channels: int) -> tuple[np.ndarray, float]:
    """Every frame of an animated GIF as uint8 [T, C, side, side] (centre-cropped square, resized),
    and its frame rate; a file Pillow cannot read is a DataError naming it."""
    from PIL import Image, ImageSequence

    try:
        with Image.open(path) as im:
            durations, frames = [], []
            for frame in ImageSequence.Iterator(im):
                durations.append(frame.info.get("duration", 100) or 100)
                f = frame.convert("L" if channels == 1 else "RGB")
                w, h = f.size
                s = min(w, h)
                f = f.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
                # a whole-number shrink (as of the scaled-up GIFs `aigc sample` writes) averages blocks exactly
                how = Image.Resampling.BOX if s % side == 0 else Image.Resampling.BILINEAR
                f = f.resize((side, side), how, reducing_gap=None)
                arr = np.asarray(f, dtype=np.uint8)
                frames.append(arr[None] if channels == 1 else arr.transpose(2, 0, 1))
                if len(frames) > 10_000:
                    raise DataError(f"{path} holds more than 10,000 frames", "cut it into shorter clips")
    except DataError:
        raise
    except Exception as e:  # Pillow raises many kinds on a damaged file
        raise DataError(f"{path} is not a readable GIF ({type(e).__name__})", "remove or re-export it") from None
    return np.stack(frames), 1000.0 / float(np.median(durations))


@DATA_SOURCES.register("clips", modality="video")
def clips(cfg: Any, arg: str | None) -> Dataset:
    root = Path(arg or "")
    if not root.is_dir():
        raise DataError(f"clip folder {root} does not exist", "check the path after 'clips:'")
    lay = video_settings(cfg)
    channels = cfg.channels or 3
    split_dirs = (root / "train").is_dir() and (root / "test").is_dir()
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTS
                   and not any(part.startswith(".") for part in p.relative_to(root).parts)
                   and (not split_dirs or p.relative_to(root).parts[0] in ("train", "test")))
    if not files:
        other = sorted(p.name for p in root.rglob("*") if p.suffix.lower() in OTHER_VIDEO)
        raise DataError(f"no GIF clips in {root}" + (f" (found {other[0]}: MP4/WebM are not read)" if other else ""),
                        "put animated .gif files there (ffmpeg -i clip.mp4 clip.gif converts a video)")
    key = "clips-" + fingerprint([file_stamp(f) for f in files], dataclasses.asdict(lay), cfg.fps, channels,
                                 cfg.test_fraction, cfg.split_seed)

    def build() -> Dataset:
        base = {f: root / f.relative_to(root).parts[0] if split_dirs else root for f in files}
        folders = {f: f.relative_to(base[f]).parts[:-1] for f in files}
        labelled = all(folders.values())
        if not labelled and any(folders.values()):
            raise DataError(f"some clips in {root} sit in class folders and some do not",
                            "move every clip into a class folder, or none")
        names = sorted({folders[f][0] for f in files}) if labelled else []
        windows: list[np.ndarray] = []
        owner, bad, short, rates = [], [], [], []
        for i, f in enumerate(files):
            try:
                frames, rate = read_gif(f, lay.side, channels)
            except DataError as e:
                bad.append(f"{f}: {e.message}")
                continue
            if len(frames) < lay.frames:
                short.append(f"{f}: {len(frames)} frames")
                continue
            rates.append(rate)
            for s in range(0, len(frames) - lay.frames + 1, lay.frames):
                windows.append(frames[s:s + lay.frames])
                owner.append(i)
            if len(windows) * windows[0].nbytes > MAX_CLIP_VALUES:
                raise DataError(f"the clips in {root} make more than {MAX_CLIP_VALUES / 2**30:.0f} GiB of frames "
                                f"at {lay.side}x{lay.side}", "use fewer or shorter clips, or a smaller data.image_size")
        if len(bad) > MAX_BAD_SHARE * len(files):
            raise DataError(f"{len(bad)} of {len(files)} clips in {root} are unreadable (first: {bad[0]})",
                            f"remove or repair them; up to {MAX_BAD_SHARE:.0%} are skipped automatically")
        if not windows:
            raise DataError(f"no clip in {root} has {lay.frames} frames" + (f" (e.g. {short[0]})" if short else ""),
                            "lower data.frames or give longer clips")
        x = torch.from_numpy(np.stack(windows))
        own = torch.tensor(owner)
        if split_dirs:
            is_test_file = torch.tensor([base[f].name == "test" for f in files])
        else:  # split by file, so no clip's windows sit on both sides
            _, te = random_split(len(files), cfg.test_fraction, cfg.split_seed)
            is_test_file = torch.zeros(len(files), dtype=torch.bool)
            is_test_file[te] = True
        is_test = is_test_file[own]
        tensors = {"x": x}
        if names:
            tensors["y"] = torch.tensor([names.index(folders[files[i]][0]) for i in owner])
        train = {k: v[~is_test] for k, v in tensors.items()}
        test = {k: v[is_test] for k, v in tensors.items()} if bool(is_test.any()) else None
        if not len(train["x"]):
            raise DataError(f"every clip in {root} fell in the test split", "add clips or lower data.test_fraction")
        meta: dict[str, Any] = {"source": f"clips:{root}", "shape": [lay.frames, channels, lay.side, lay.side],
                                "fps": int(round(float(np.median(rates)))) if cfg.fps is None else lay.fps,
                                "skipped": bad + [f"{s} (fewer than data.frames)" for s in short],
                                "files": len(files), "synthetic": False,
                                "windows_per_file": {str(k): v for k, v in sorted(Counter(Counter(owner).values()).items())},
                                "n_train": len(train["x"]), "n_test": 0 if test is None else len(test["x"])}
        if names:
            meta.update(class_names=names, num_classes=len(names))
        return Dataset(root.name, "video", train, test, meta)

    return cached(key, build)
