"""Image sources: idx files (Fashion-MNIST, MNIST), scikit-learn digits, folders and npz arrays."""
from __future__ import annotations

import gzip
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from ..files import PSEUDO_FS
from ..limits import MAX_CLASSES, MAX_FOLDER_ENTRIES, MAX_IMAGE_PIXELS, MAX_SIDE
from ..pixels import from_signed, label_key, to_signed  # noqa: F401
from ..plugins import DATA_SOURCES
from .base import Dataset, cached, file_stamp, fingerprint, random_split

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
MAX_BAD_SHARE = 0.10  # a folder with more unreadable files than this refuses to train


# ---------------------------------------------------------------- shaping

def shape_images(x: torch.Tensor, size: int | None, channels: int | None, crop: str = "center",
                 seed: int = 0) -> torch.Tensor:
    """uint8 [N,C,H,W] -> the declared channels and square size (crop, then area/bilinear resize)."""
    if channels is not None and x.shape[1] != channels:
        if channels == 3:
            x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x[:, :3]
        else:  # ITU-R 601 luma, as PIL's convert("L")
            w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x = (x[:, :3].float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    if size is None:
        return x.contiguous()
    h, w = x.shape[-2:]
    if crop != "none" and h != w:
        side = min(h, w)
        if crop == "random":
            g = torch.Generator().manual_seed(seed)
            top = int(torch.randint(0, h - side + 1, (1,), generator=g))
            left = int(torch.randint(0, w - side + 1, (1,), generator=g))
        else:
            top, left = (h - side) // 2, (w - side) // 2
        x = x[..., top:top + side, left:left + side]
    if x.shape[-2:] != (size, size):
        out = []
        for chunk in x.split(4096):
            f = chunk.float()
            f = F.interpolate(f, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            out.append(f.round().clamp(0, 255).to(torch.uint8))
        x = torch.cat(out)
    return x.contiguous()


def finish_dataset(name: str, cfg: Any, train: dict, test: dict | None, meta: dict) -> Dataset:
    """Shape the splits as the DataConfig asks and wrap them as a Dataset (every image source ends here)."""
    train["x"] = shape_images(train["x"], cfg.image_size, cfg.channels, cfg.crop, cfg.split_seed)
    if test is not None:
        test["x"] = shape_images(test["x"], cfg.image_size, cfg.channels, cfg.crop, cfg.split_seed + 1)
    c, h, w = train["x"].shape[1:]
    names = meta.get("class_names")
    meta.update(shape=[int(c), int(h), int(w)], n_train=len(train["x"]),
                n_test=0 if test is None else len(test["x"]),
                num_classes=len(names) if names else 0)
    return Dataset(name, "image", train, test, meta)


def _options(cfg: Any) -> list[Any]:
    return [cfg.image_size, cfg.channels, cfg.crop, cfg.split_seed, cfg.test_fraction]


# ---------------------------------------------------------------- idx (MNIST family)

def read_idx(path: Path, expect_dims: int) -> np.ndarray:
    """Read an idx file (optionally gzipped) of unsigned bytes, checking magic and length."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"cannot read {path}: {e}", "re-download or reinstall the file") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an idx file of unsigned bytes (bad magic number)",
                        "point the data source at the original idx files")
    ndim = raw[3]
    if ndim != expect_dims:
        raise DataError(f"{path} has {ndim} dimensions, expected {expect_dims}",
                        "images and labels files may be swapped")
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated (header incomplete)", "re-download the file")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    count = int(np.prod(dims))
    body = raw[4 + 4 * ndim:]
    if len(body) != count:
        raise DataError(f"{path} holds {len(body)} bytes of data, its header says {count}",
                        "the file is truncated or damaged: re-download it")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _find_idx_dir(cfg: Any, name: str) -> Path:
    """Explicit root, $AIGC_DATA, the system's dataset folder, then the user cache."""
    from .base import cache_dir

    if cfg.root:  # an explicit folder is the only place looked at
        if _idx_file(Path(cfg.root), "train-images-idx3-ubyte"):
            return Path(cfg.root)
        raise DataError(f"no {name} idx files (train-images-idx3-ubyte[.gz]) in {cfg.root}",
                        "point data.root at the folder holding the four idx files")
    candidates = []
    if os.environ.get("AIGC_DATA"):
        env = Path(os.environ["AIGC_DATA"])
        candidates += [env / name, env]
    candidates += [Path("/usr/share/datasets") / name, cache_dir() / "downloads" / name]
    for folder in candidates:
        if _idx_file(folder, "train-images-idx3-ubyte"):
            return folder
    folder = cache_dir() / "downloads" / name
    if _download(name, folder):
        return folder
    hint = ("install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
            "or set AIGC_DATA to a folder with the idx files") if name == "fashion-mnist" else \
        f"set data.root or AIGC_DATA to a folder holding the {name} idx files"
    raise DataError(f"{name} not found (looked in {', '.join(str(c) for c in candidates)})", hint)


def _download(name: str, folder: Path) -> bool:
    """Fetch the idx files with torchvision when the network allows; False otherwise."""
    if os.environ.get("AIGC_OFFLINE") or name not in ("fashion-mnist", "mnist"):
        return False
    try:
        from torchvision import datasets

        cls = datasets.FashionMNIST if name == "fashion-mnist" else datasets.MNIST
        cls(str(folder.parent / "_torchvision"), train=True, download=True)
        cls(str(folder.parent / "_torchvision"), train=False, download=True)
        raw = folder.parent / "_torchvision" / cls.__name__ / "raw"
        folder.mkdir(parents=True, exist_ok=True)
        for f in raw.glob("*-ubyte"):
            os.replace(f, folder / f.name)
        return _idx_file(folder, "train-images-idx3-ubyte") is not None
    except Exception:
        return False


def _idx_file(folder: Path, stem: str) -> Path | None:
    for suffix in ("", ".gz"):
        p = folder / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None


def load_idx_dataset(cfg: Any, name: str, class_names: list[str] | None) -> Dataset:
    folder = _find_idx_dir(cfg, name)
    stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte"]
    files = {s: _idx_file(folder, s) for s in stems}
    missing = [s for s, p in files.items() if p is None]
    if missing:
        raise DataError(f"{folder} lacks {', '.join(missing)}", "all four idx files are needed")
    key = f"{name}-" + fingerprint([file_stamp(p) for p in files.values()], _options(cfg))

    def build() -> Dataset:
        def split(img_stem: str, lab_stem: str) -> dict[str, torch.Tensor]:
            x, y = read_idx(files[img_stem], 3), read_idx(files[lab_stem], 1)
            if len(x) != len(y):
                raise DataError(f"{files[img_stem]} has {len(x)} images but {files[lab_stem]} has {len(y)} labels",
                                "use matching images and labels files")
            return {"x": torch.from_numpy(x.copy()).unsqueeze(1), "y": torch.from_numpy(y.astype(np.int64))}

        train, test = split(stems[0], stems[1]), split(stems[2], stems[3])
        names = class_names or [str(i) for i in range(int(train["y"].max()) + 1)]
        meta = {"source": name, "root": str(folder), "class_names": names}
        return finish_dataset(name, cfg, train, test, meta)

    return cached(key, build)


@DATA_SOURCES.register("fashion-mnist", modality="image")
def fashion_mnist(cfg: Any, arg: str | None) -> Dataset:
    return load_idx_dataset(cfg, "fashion-mnist", FASHION_CLASSES)


@DATA_SOURCES.register("mnist", modality="image")
def mnist(cfg: Any, arg: str | None) -> Dataset:
    return load_idx_dataset(cfg, "mnist", [str(i) for i in range(10)])


# ---------------------------------------------------------------- scikit-learn digits

@DATA_SOURCES.register("digits", modality="image")
def digits(cfg: Any, arg: str | None) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy((d.images * (255.0 / 16.0)).round().astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(d.target.astype(np.int64))
    tr, te = random_split(len(x), cfg.test_fraction, cfg.split_seed)
    meta = {"source": "digits", "class_names": [str(i) for i in range(10)]}
    return finish_dataset("digits", cfg, {"x": x[tr], "y": y[tr]}, {"x": x[te], "y": y[te]}, meta)


# ---------------------------------------------------------------- npz arrays

@DATA_SOURCES.register("npz", modality="image")
def npz(cfg: Any, arg: str | None) -> Dataset:
    path = Path(arg or "")
    if not path.is_file():
        raise DataError(f"npz file {path} does not exist", "check the path after 'npz:'")
    try:
        arrays = np.load(path, allow_pickle=False)
        if not isinstance(arrays, np.lib.npyio.NpzFile):
            raise ValueError("it holds one array (.npy), not named arrays")
        with arrays:
            data = {k: arrays[k] for k in arrays.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise DataError(f"cannot read {path} as npz without pickle: {e}",
                        "save plain arrays with numpy.savez(path, x=..., y=...)") from None

    def images(key: str) -> torch.Tensor:
        x = data[key]
        if x.dtype != np.uint8:
            raise DataError(f"{path}: array '{key}' is {x.dtype}, expected uint8", "convert with x.astype('uint8')")
        if x.ndim == 3:
            x = x[:, None]
        elif x.ndim == 4 and x.shape[-1] in (1, 3, 4):
            x = x[..., :3].transpose(0, 3, 1, 2) if x.shape[-1] != 1 else x.transpose(0, 3, 1, 2)
        else:
            raise DataError(f"{path}: array '{key}' has shape {x.shape}", "use [N,H,W] or [N,H,W,C] with C in 1, 3, 4")
        if min(x.shape[2:]) == 0 or max(x.shape[2:]) > MAX_SIDE:
            raise DataError(f"{path}: array '{key}' holds {x.shape[3]}x{x.shape[2]} images",
                            f"image sides must lie in 1..{MAX_SIDE}")
        # numpy calls [N,1,H,W] from a transposed [N,H,W,1] contiguous with strides torch reads as
        # channels-last, which picks other conv kernels (float results differ in the 7th digit):
        # the view gives the standard strides, without a copy
        t = torch.from_numpy(np.ascontiguousarray(x))
        return t.view(t.shape)

    def labels(key: str, n: int) -> torch.Tensor:
        y = data[key]
        if y.ndim != 1 or len(y) != n or not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
            raise DataError(f"{path}: '{key}' must be {n} non-negative integer labels, got shape {y.shape} {y.dtype}",
                            "store one integer class per image")
        if len(y) and int(y.max()) >= MAX_CLASSES:  # compared before any cast: a uint64 must not wrap to -1
            raise DataError(f"{path}: '{key}' holds the label {int(y.max()):,}",
                            f"labels are class indices 0..{MAX_CLASSES - 1:,}")
        return torch.from_numpy(y.astype(np.int64))

    if "x" not in data:
        raise DataError(f"{path} has no array 'x' (it has: {', '.join(data) or 'nothing'})", "save images as x=...")
    train = {"x": images("x")}
    if "y" in data:
        train["y"] = labels("y", len(train["x"]))
    test = None
    if "x_test" in data:
        test = {"x": images("x_test")}
        if test["x"].shape[1:] != train["x"].shape[1:] and cfg.image_size is None:
            raise DataError(f"{path}: x_test holds {list(test['x'].shape[1:])} images but x holds "
                            f"{list(train['x'].shape[1:])}", "store both splits at one size, or set data.image_size")
        if "y_test" in data:
            test["y"] = labels("y_test", len(test["x"]))
    elif cfg.test_fraction > 0:
        tr, te = random_split(len(train["x"]), cfg.test_fraction, cfg.split_seed)
        train, test = {k: v[tr] for k, v in train.items()}, {k: v[te] for k, v in train.items()}
    meta: dict[str, Any] = {"source": f"npz:{path}"}
    if "y" in train:
        top = max(int(train["y"].max()), int(test["y"].max()) if test and "y" in test and len(test["y"]) else 0)
        if "class_names" in data and data["class_names"].dtype.kind == "U":
            meta["class_names"] = [str(s) for s in data["class_names"][:MAX_CLASSES]]
            if len(meta["class_names"]) <= top:
                raise DataError(f"{path}: label {top} has no entry in class_names ({len(meta['class_names'])} names)",
                                "give one name per class")
        else:
            meta["class_names"] = [str(i) for i in range(top + 1)]
    return finish_dataset(path.stem, cfg, train, test, meta)


# ---------------------------------------------------------------- folders of images

class ImageTooLarge(ValueError):
    """An image file with more pixels than MAX_IMAGE_PIXELS (skipped and listed like a damaged one)."""


def decode_image(path: Path, channels: int | None) -> np.ndarray:
    """One image file -> uint8 [H, W, C]; RGBA and palette images are composited on white."""
    from PIL import Image

    with Image.open(path) as im:
        if im.width * im.height > MAX_IMAGE_PIXELS:  # checked from the header, before decoding
            raise ImageTooLarge(f"{im.width}x{im.height} pixels, more than {MAX_IMAGE_PIXELS:,}")
        im.load()
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            a = np.asarray(im, dtype=np.float64)
            top = 65535.0 if a.max() > 255 else 255.0
            return (a / top * 255.0).round().clip(0, 255).astype(np.uint8)[..., None]
        if im.mode in ("P", "PA", "LA", "RGBA") or "transparency" in im.info:
            rgba = im.convert("RGBA")
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im2 = Image.alpha_composite(bg, rgba).convert("RGB")
        else:
            im2 = im.convert("L" if im.mode in ("1", "L", "F") else "RGB")
        if channels == 1:
            im2 = im2.convert("L")
        a = np.array(im2, dtype=np.uint8)
        return a[..., None] if a.ndim == 2 else a


def walk_files(root: Path) -> list[Path]:
    """Every file under root, sorted, following symbolic links (as torchvision's ImageFolder does)
    but each real folder once (no loops), never into /proc, /sys or /dev, and at most
    MAX_FOLDER_ENTRIES entries: past any of these bounds, one DataError says which."""
    real_root = os.path.realpath(root)
    if real_root.startswith(PSEUDO_FS):
        raise DataError(f"{root} is on a kernel file system ({real_root})", "point folder: at a folder of image files")
    files: list[Path] = []
    seen: set[tuple[int, int]] = set()
    visited = 0
    stack = [Path(root)]
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
            if (st.st_dev, st.st_ino) in seen or os.path.realpath(folder).startswith(PSEUDO_FS):
                continue  # a symlink loop, or a link into a kernel file system
            seen.add((st.st_dev, st.st_ino))
            entries = list(os.scandir(folder))
        except OSError:
            continue  # unreadable folders are skipped like unreadable files
        visited += len(entries)
        if visited > MAX_FOLDER_ENTRIES:
            raise DataError(f"{root} holds more than {MAX_FOLDER_ENTRIES:,} files and folders (walk stopped)",
                            "point folder: at the folder of your images, not a whole disk")
        for e in entries:
            if e.name.startswith("."):
                continue
            try:
                if e.is_dir():
                    stack.append(Path(e.path))
                elif e.is_file():
                    files.append(Path(e.path))
            except OSError:
                continue
    return sorted(files)


def list_images(root: Path) -> tuple[list[Path], list[str]]:
    """Image files under root (sorted) and, if they sit in sub-folders, the class names.

    Sub-folders that hold images are the classes. Images beside class folders are a mistake
    said in one line (they would be dropped); a sub-folder without images is ignored.
    """
    images = [f for f in walk_files(root) if f.suffix.lower() in IMAGE_EXTS]
    top = [f for f in images if f.parent == Path(root)]
    classes = sorted({f.relative_to(root).parts[0] for f in images if f.parent != Path(root)})
    if classes and top:
        raise DataError(f"{root} holds {len(top)} images beside the class folders {', '.join(classes[:3])}"
                        + ("..." if len(classes) > 3 else ""),
                        "move them into a class folder, or the sub-folders out, so every image has a place")
    return ([f for f in images if f.parent != Path(root)], classes) if classes else (top, [])


def decode_folder(root: Path, cfg: Any, classes: list[str] | None = None,
                  channels: int | None = None) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """Decode every image under root -> tensors, class names, and the unreadable files skipped.

    `classes` (the training split's) fixes the label ids, so a test folder with fewer classes
    keeps the training numbering; `channels` forces the training split's channel count.
    """
    files, found = list_images(root)
    if classes is not None and found:
        extra = [c for c in found if c not in classes]
        if extra:
            raise DataError(f"class folder '{extra[0]}' in {root} has no counterpart in the training split",
                            f"use training classes only: {', '.join(classes)}")
    else:
        classes = found
    if not files:
        raise DataError(f"no images in {root}", f"put {', '.join(sorted(IMAGE_EXTS))} files there")
    arrays, labels, bad = [], [], []
    for f in files:
        try:
            arrays.append(decode_image(f, cfg.channels))
            labels.append(classes.index(f.relative_to(root).parts[0]) if classes else -1)
        except Exception as e:  # PIL raises many types for damaged files
            bad.append(f"{f}: {type(e).__name__}")
    if len(bad) > MAX_BAD_SHARE * len(files) or not arrays:
        raise DataError(f"{len(bad)} of {len(files)} images in {root} are unreadable (first: {bad[0]})",
                        f"remove or repair them; up to {MAX_BAD_SHARE:.0%} are skipped automatically")
    shapes = {a.shape[:2] for a in arrays}
    if cfg.image_size is None and (len(shapes) > 1 or next(iter(shapes))[0] != next(iter(shapes))[1]):
        seen = ", ".join(f"{w}x{h}" for h, w in sorted(shapes)[:3])
        raise DataError(f"images in {root} are not all the same square size (seen {seen})",
                        "set data.image_size, e.g. --set data.image_size=64")
    want_c = cfg.channels or channels or (1 if all(a.shape[2] == 1 for a in arrays) else 3)
    out = []
    for a in arrays:
        t = torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).unsqueeze(0)
        t = shape_images(t, cfg.image_size, want_c, cfg.crop, cfg.split_seed)
        out.append(t)
    tensors = {"x": torch.cat(out)}
    if classes:
        tensors["y"] = torch.tensor(labels, dtype=torch.int64)
    return tensors, classes, bad


@DATA_SOURCES.register("folder", modality="image")
def folder(cfg: Any, arg: str | None) -> Dataset:
    root = Path(arg or "")
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist", "check the path after 'folder:'")
    split_dirs = (root / "train").is_dir() and (root / "test").is_dir()
    stamps = [file_stamp(f) for f in walk_files(root)]
    key = "folder-" + fingerprint(stamps, _options(cfg))

    def build() -> Dataset:
        if split_dirs:
            train, classes, bad = decode_folder(root / "train", cfg)
            test, _, bad_test = decode_folder(root / "test", cfg, classes, train["x"].shape[1])
            bad += bad_test
        else:
            train, classes, bad = decode_folder(root, cfg)
            test = None
            if cfg.test_fraction > 0 and len(train["x"]) >= 10:
                tr, te = random_split(len(train["x"]), cfg.test_fraction, cfg.split_seed)
                train, test = {k: v[tr] for k, v in train.items()}, {k: v[te] for k, v in train.items()}
        meta = {"source": f"folder:{root}", "skipped": bad}
        if classes:
            meta["class_names"] = classes
        return finish_dataset(root.name, cfg, train, test, meta)

    return cached(key, build)
