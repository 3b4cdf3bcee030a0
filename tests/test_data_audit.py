"""The image audit finds what was planted in generated folders, and little that was not."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from aigc.config import DataConfig
from aigc.data.audit import audit_images, collect_images, item_names
from aigc.data.audit_report import run_audit

FASHION = Path("/usr/share/datasets/fashion-mnist")
SIDE = 48


def real_looking(kind: str, n: int, seed: int) -> tuple[list[np.ndarray], list[int]]:
    """n distinct greyscale pictures upscaled to SIDE x SIDE, with their classes."""
    rng = np.random.default_rng(seed)
    if kind == "fashion":
        if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
            pytest.skip("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)")
        from aigc.data.images import read_idx

        x = read_idx(FASHION / "t10k-images-idx3-ubyte.gz", 3)
        y = read_idx(FASHION / "t10k-labels-idx1-ubyte.gz", 1)
    else:
        from sklearn.datasets import load_digits

        d = load_digits()
        x, y = (d.images * (255.0 / 16.0)).round().astype(np.uint8), d.target
    idx = rng.choice(len(x), n, replace=False)
    imgs = [np.asarray(Image.fromarray(x[i]).resize((SIDE, SIDE), Image.Resampling.BICUBIC)) for i in idx]
    return imgs, [int(y[i]) for i in idx]


def save(img: np.ndarray | Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(path, **kw)
    return path


def near_copy(img: np.ndarray, how: str) -> Image.Image:
    im = Image.fromarray(img)
    if how == "resized":
        return im.resize((SIDE * 3 // 2, SIDE * 3 // 2), Image.Resampling.BILINEAR)
    if how == "jpeg":
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=70)
        return Image.open(io.BytesIO(buf.getvalue()))
    if how == "brighter":
        return ImageEnhance.Brightness(im).enhance(1.25)
    return Image.fromarray(np.clip(img.astype(int) + 30, 0, 255).astype(np.uint8))  # shifted


def planted_folder(root: Path, kind: str) -> dict:
    """A train/test folder of distinct images plus planted copies, leaks and broken files."""
    imgs, labels = real_looking(kind, 300, seed=0)
    where = {}
    for i, (img, lab) in enumerate(zip(imgs, labels, strict=True)):
        split = "test" if i >= 250 else "train"
        where[i] = save(img, root / split / f"c{lab}" / f"img{i:03d}.png")
    exact, near, leaks = [], [], []
    for k, i in enumerate(range(0, 10)):            # exact copies, one re-encoded as BMP
        dst = where[i].with_name(f"copy{i:03d}" + (".bmp" if k % 2 else ".png"))
        save(imgs[i], dst)
        exact.append((where[i], dst))
    hows = ["resized", "jpeg", "brighter", "shifted"]
    for k, i in enumerate(range(20, 60)):            # near copies, ten of each kind
        how = hows[k % 4]
        dst = where[i].with_name(f"near{i:03d}.{'jpg' if how == 'jpeg' else 'png'}")
        save(near_copy(imgs[i], how), dst)
        near.append((where[i], dst))
    for i in range(100, 110):                         # training images leaking into test, half exact
        dst = root / "test" / where[i].parent.name / f"leak{i:03d}.png"
        save(imgs[i] if i % 2 else near_copy(imgs[i], "jpeg").convert("L"), dst)
        leaks.append((where[i], dst))
    bad = [root / "train" / "c0" / "broken.png", root / "train" / "c1" / "truncated.png"]
    bad[0].write_bytes(b"not an image at all")
    bad[1].write_bytes(where[5].read_bytes()[:60])
    return {"exact": exact, "near": near, "leaks": leaks, "bad": bad}


def grouped(report_groups: list[list[str]], a: Path, b: Path) -> bool:
    return any(str(a) in g and str(b) in g for g in report_groups)


def full_groups(data, sheets: dict, kind: str) -> list[list[str]]:
    names = item_names(data)
    return [[names[i] for i in g] for g in sheets[kind]]


@pytest.mark.parametrize("kind", ["digits", "fashion"])
def test_audit_finds_planted_duplicates_leaks_and_broken_files(tmp_path, kind):
    plant = planted_folder(tmp_path / "data", kind)
    data = collect_images(DataConfig(source=f"folder:{tmp_path / 'data'}"))
    report, sheets = audit_images(data)

    exact = full_groups(data, sheets, "exact_duplicates")
    assert all(grouped(exact, a, b) for a, b in plant["exact"])          # every exact copy

    near = full_groups(data, sheets, "near_duplicates")
    found = sum(grouped(near, a, b) for a, b in plant["near"])
    assert found >= 0.95 * len(plant["near"]), f"{found} of {len(plant['near'])} near copies found"

    listed = "\n".join(report["unreadable"])
    assert all(str(p) in listed for p in plant["bad"])

    cross = report["cross_split"]
    assert cross["test_items_exact_in_train"] >= 5 and cross["test_items_near_in_train"] >= 4
    leaked = set(cross["examples"])
    assert sum(str(dst) in leaked for _, dst in plant["leaks"]) >= 9
    assert any("test images duplicate training images" in a for a in report["advice"])


@pytest.mark.parametrize("kind", ["digits", "fashion"])
def test_clean_folder_has_at_most_one_percent_false_positives(tmp_path, kind):
    imgs, labels = real_looking(kind, 600, seed=1)
    for i, (img, lab) in enumerate(zip(imgs, labels, strict=True)):
        save(img, tmp_path / f"c{lab}" / f"{i:03d}.png")
    report, sheets = audit_images(collect_images(DataConfig(source=f"folder:{tmp_path}")))
    flagged = report["near_duplicates"]["items"] + report["exact_duplicates"]["items"]
    assert flagged <= 0.01 * len(imgs), f"{flagged} of {len(imgs)} clean images flagged"


def test_audit_counts_classes_sizes_modes_and_writes_the_report(tmp_path):
    imgs, labels = real_looking("digits", 40, seed=2)
    for i, (img, lab) in enumerate(zip(imgs, labels, strict=True)):
        im = Image.fromarray(img).convert("RGB") if i % 4 == 0 else Image.fromarray(img)
        save(im.resize((32, 40)) if i % 5 == 0 else im, tmp_path / "in" / f"digit{lab}" / f"{i}.png")
    shutil.copy(tmp_path / "in" / f"digit{labels[1]}" / "1.png", tmp_path / "in" / f"digit{labels[1]}" / "dup.png")
    report = run_audit(DataConfig(source=f"folder:{tmp_path / 'in'}"), tmp_path / "out")

    train = report["splits"]["train"]
    assert train["n"] == 41 and sum(train["classes"].values()) == 41
    assert set(train["modes"]) == {"L", "RGB"} and "32x40" in train["sizes"]
    assert 0.0 < train["pixel_mean"][0] < 1.0 and 0.0 < train["pixel_std"][0] < 1.0
    assert report["exact_duplicates"]["groups"] == 1
    for name in ("report.md", "report.json", "exact_duplicates.png"):
        assert (tmp_path / "out" / name).is_file()
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## What to do" in md and "set data.image_size" in md and "mix modes" in md


def test_audit_of_a_named_source_flags_a_leak_planted_in_tensors(tmp_path):
    """Named and array sources go through load_dataset, as `train` does."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images * (255.0 / 16.0)).round().astype(np.uint8)
    x_test = np.concatenate([x[1500:], x[:7]])  # seven training images also in test
    np.savez(tmp_path / "d.npz", x=x[:1500], y=d.target[:1500], x_test=x_test,
             y_test=np.concatenate([d.target[1500:], d.target[:7]]))
    report = run_audit(DataConfig(source=f"npz:{tmp_path / 'd.npz'}"), tmp_path / "out")
    assert report["cross_split"]["test_items_exact_in_train"] == 7
    assert (tmp_path / "out" / "cross_split.png").is_file()
