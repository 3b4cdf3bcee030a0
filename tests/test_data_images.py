"""Image sources: each one on small generated files, plus the real Fashion-MNIST when installed."""
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aigc.config import DataConfig
from aigc.data import load_dataset
from aigc.data.images import label_key, read_idx, shape_images
from aigc.errors import DataError

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def make_idx_folder(folder: Path, n_train=50, n_test=20, gz=True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sfx = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_train, 28, 28)), gz)
    write_idx(folder / f"train-labels-idx1-ubyte{sfx}", rng.integers(0, 10, n_train), gz)
    write_idx(folder / f"t10k-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_test, 28, 28)), gz)
    write_idx(folder / f"t10k-labels-idx1-ubyte{sfx}", rng.integers(0, 10, n_test), gz)
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_idx_dataset_from_a_given_root(tmp_path, gz):
    root = make_idx_folder(tmp_path / "fm", gz=gz)
    ds = load_dataset(DataConfig(source="fashion-mnist", root=str(root)))
    assert ds.train["x"].shape == (50, 1, 28, 28) and ds.train["x"].dtype == torch.uint8
    assert ds.test["x"].shape == (20, 1, 28, 28) and ds.train["y"].dtype == torch.int64
    assert ds.meta["class_names"][9] == "Ankle boot" and ds.meta["num_classes"] == 10
    raw = read_idx(root / f"train-images-idx3-ubyte{'.gz' if gz else ''}", 3)
    assert torch.equal(ds.train["x"][:, 0], torch.from_numpy(raw.copy()))


def test_mnist_from_aigc_data(tmp_path, monkeypatch):
    make_idx_folder(tmp_path / "mnist")
    monkeypatch.setenv("AIGC_DATA", str(tmp_path))
    ds = load_dataset(DataConfig(source="mnist"))
    assert len(ds) == 50 and ds.meta["class_names"][0] == "0"


def test_missing_named_dataset_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match="idx files"):
        load_dataset(DataConfig(source="mnist", root=str(tmp_path)))


def test_damaged_idx_files_are_named(tmp_path):
    root = make_idx_folder(tmp_path / "fm", gz=False)
    f = root / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        load_dataset(DataConfig(source="fashion-mnist", root=str(root)))
    f.write_bytes(b"\x00\x00\x09\x03" + b"\x00" * 20)
    with pytest.raises(DataError, match="magic"):
        load_dataset(DataConfig(source="fashion-mnist", root=str(root)))


def test_label_count_mismatch(tmp_path):
    root = make_idx_folder(tmp_path / "fm")
    write_idx(root / "train-labels-idx1-ubyte.gz", np.zeros(49))
    with pytest.raises(DataError, match="49 labels"):
        load_dataset(DataConfig(source="fashion-mnist", root=str(root)))


@pytest.mark.skipif(not FMNIST.is_file(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    ds = load_dataset(DataConfig(source="fashion-mnist"))
    assert ds.train["x"].shape == (60000, 1, 28, 28) and ds.test["x"].shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.train["y"]).tolist() == [6000] * 10


def test_digits_resized_to_a_declared_size():
    ds = load_dataset(DataConfig(source="digits", image_size=16))
    assert ds.train["x"].shape[1:] == (1, 16, 16)
    assert len(ds) + len(ds.test["x"]) == 1797
    assert ds.train["x"].max() > 200  # 0..16 was scaled to 0..255


def test_folder_with_class_subfolders_and_odd_modes(tmp_path):
    root = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        (root / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    Image.new("RGBA", (12, 12), (255, 0, 0, 0)).save(root / "cats" / "rgba.png")         # transparent -> white
    Image.new("P", (12, 12)).save(root / "dogs" / "palette.png")
    Image.fromarray(np.full((12, 12), 65535, dtype=np.uint16)).save(root / "dogs" / "deep.png")
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(root / "dogs" / "big.jpg")
    ds = load_dataset(DataConfig(source=f"folder:{root}", image_size=8, test_fraction=0.0))
    assert ds.train["x"].shape == (16, 3, 8, 8)
    assert ds.meta["class_names"] == ["cats", "dogs"]
    assert ds.train["y"].tolist().count(0) == 7
    rgba = ds.train["x"][6]
    assert rgba.min() == 255  # fully transparent pixels composite to white


def test_folder_skips_a_few_bad_files_and_refuses_many(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(20):
        Image.new("L", (8, 8), i * 10).save(root / f"{i}.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (root / "empty.jpg").write_bytes(b"")
    ds = load_dataset(DataConfig(source=f"folder:{root}", test_fraction=0.0))
    assert len(ds) == 20 and len(ds.meta["skipped"]) == 2
    assert any("broken.png" in s for s in ds.meta["skipped"])
    for i in range(5):
        (root / f"bad{i}.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="unreadable"):
        load_dataset(DataConfig(source=f"folder:{root}", test_fraction=0.0))


def test_folder_of_mixed_sizes_needs_a_size(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    Image.new("L", (8, 8)).save(root / "a.png")
    Image.new("L", (10, 8)).save(root / "b.png")
    with pytest.raises(DataError, match="data.image_size"):
        load_dataset(DataConfig(source=f"folder:{root}"))
    assert load_dataset(DataConfig(source=f"folder:{root}", image_size=8)).train["x"].shape[-1] == 8


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(DataError, match="no images"):
        load_dataset(DataConfig(source=f"folder:{tmp_path}"))
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(DataConfig(source=f"folder:{tmp_path / 'nope'}"))


def test_npz_arrays(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "d.npz"
    np.savez(p, x=rng.integers(0, 256, (30, 10, 10, 3), dtype=np.uint8), y=np.arange(30) % 3,
             class_names=np.array(["a", "b", "c"]))
    ds = load_dataset(DataConfig(source=f"npz:{p}", test_fraction=0.2))
    assert ds.train["x"].shape == (24, 3, 10, 10) and len(ds.test["x"]) == 6
    assert ds.meta["class_names"] == ["a", "b", "c"]
    gray = tmp_path / "g.npz"
    np.savez(gray, x=np.zeros((5, 6, 6), dtype=np.uint8))
    assert load_dataset(DataConfig(source=f"npz:{gray}", test_fraction=0)).train["x"].shape == (5, 1, 6, 6)


def test_npz_mistakes(tmp_path):
    p = tmp_path / "f.npz"
    np.savez(p, x=np.zeros((5, 6, 6), dtype=np.float32))
    with pytest.raises(DataError, match="uint8"):
        load_dataset(DataConfig(source=f"npz:{p}"))
    np.savez(p, images=np.zeros((5, 6, 6), dtype=np.uint8))
    with pytest.raises(DataError, match="no array 'x'"):
        load_dataset(DataConfig(source=f"npz:{p}"))
    np.savez(p, x=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(DataError, match="without pickle"):
        load_dataset(DataConfig(source=f"npz:{p}"))


def test_decoded_data_is_cached_by_fingerprint(tmp_path):
    root = make_idx_folder(tmp_path / "fm")
    cfg = DataConfig(source="fashion-mnist", root=str(root))
    first = load_dataset(cfg)
    second = load_dataset(cfg)
    assert torch.equal(first.train["x"], second.train["x"])
    write_idx(root / "train-images-idx3-ubyte.gz", np.zeros((50, 28, 28)))  # new content, new key
    assert load_dataset(cfg).train["x"].sum() == 0


def test_shape_images_channels_and_crop():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.uint8).view(2, 3, 4, 6)
    assert shape_images(x, 4, 3, "center").shape == (2, 3, 4, 4)
    assert shape_images(x, None, 1).shape == (2, 1, 4, 6)
    assert torch.equal(shape_images(x, 4, None, "center"), x[..., 1:5])


def test_label_keys():
    assert label_key("Ankle boot") == label_key("ankle-boot") == "ankle-boot"
    assert label_key("T-shirt/top") == "t-shirt-top"


def test_folder_test_split_keeps_the_training_class_ids(tmp_path):
    for split, classes in (("train", ["a", "b", "c"]), ("test", ["b", "c"])):
        for i, cls in enumerate(classes):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.new("L", (8, 8), 10 * i).save(tmp_path / split / cls / "x.png")
    ds = load_dataset(DataConfig(source=f"folder:{tmp_path}"))
    assert ds.meta["class_names"] == ["a", "b", "c"]
    assert ds.test["y"].tolist() == [1, 2]  # b and c keep their training ids
    (tmp_path / "test" / "z").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "test" / "z" / "x.png")
    with pytest.raises(DataError, match="'z'.*no counterpart"):
        load_dataset(DataConfig(source=f"folder:{tmp_path}"))
