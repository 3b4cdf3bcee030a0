"""`prepare` shapes data with train's own code path, can drop duplicates, and reads back as prepared:DIR."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from aigc.config import DataConfig
from aigc.data import load_dataset
from aigc.data.prepare import prepare
from aigc.errors import DataError


def test_prepared_digits_equal_what_train_loads_on_the_fly(tmp_path):
    cfg = DataConfig(source="digits", image_size=16, channels=3)
    manifest = prepare(cfg, tmp_path / "p")
    on_the_fly = load_dataset(cfg)
    back = load_dataset(DataConfig(source=f"prepared:{tmp_path / 'p'}"))
    for split in ("train", "test"):
        assert torch.equal(back.split(split)["x"], on_the_fly.split(split)["x"])
        assert torch.equal(back.split(split)["y"], on_the_fly.split(split)["y"])
    assert back.train["x"].shape[1:] == (3, 16, 16) and back.meta["class_names"] == [str(i) for i in range(10)]
    assert manifest["counts"] == {"train": 1617, "test": 180} and manifest["dedup"] is None
    mean = on_the_fly.train["x"].float().div(255).mean((0, 2, 3))
    assert np.allclose(manifest["normalisation"]["mean"], mean.tolist(), atol=1e-5)
    assert json.loads((tmp_path / "p" / "manifest.json").read_text())["shape"] == [3, 16, 16]


def test_dedup_drops_copies_and_test_leaks(tmp_path):
    from sklearn.datasets import load_digits

    x = (load_digits().images * (255.0 / 16.0)).round().astype(np.uint8)
    brighter = np.clip(x[:5].astype(int) + 30, 0, 255).astype(np.uint8)
    train = np.concatenate([x[:1500], x[:3], brighter])            # 3 exact and 5 near copies
    test = np.concatenate([x[1500:], x[10:14]])                    # 4 training images leak into test
    np.savez(tmp_path / "d.npz", x=train, x_test=test)
    manifest = prepare(DataConfig(source=f"npz:{tmp_path / 'd.npz'}"), tmp_path / "p", dedup=True)
    assert manifest["dedup"]["dropped"]["train"] >= 8 and manifest["dedup"]["dropped"]["test"] >= 4
    back = load_dataset(DataConfig(source=f"prepared:{tmp_path / 'p'}"))
    assert len(back.train["x"]) == 1500 - (manifest["dedup"]["dropped"]["train"] - 8)
    rows = {r.tobytes() for r in back.train["x"].numpy()}
    assert not any(r.tobytes() in rows for r in back.test["x"].numpy())


def test_prepared_folder_without_a_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="not a prepared dataset"):
        load_dataset(DataConfig(source=f"prepared:{tmp_path}"))
    prepare(DataConfig(source="digits"), tmp_path / "p")
    (tmp_path / "p" / "manifest.json").write_text("{broken")
    with pytest.raises(DataError, match="cannot read the prepared dataset"):
        load_dataset(DataConfig(source=f"prepared:{tmp_path / 'p'}"))


def test_prepared_tensors_with_a_lying_header_are_refused_before_allocation(tmp_path):
    import json
    import struct

    prepare(DataConfig(source="digits"), tmp_path / "p")
    f = tmp_path / "p" / "data.safetensors"
    raw = f.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header["train/x"]["shape"] = [10**9, 1, 1000, 1000]  # 1e15 bytes claimed, in a file of a few hundred kB
    text = json.dumps(header).encode()
    f.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    with pytest.raises(DataError, match="train/x.*claims more data than the file holds"):
        load_dataset(DataConfig(source=f"prepared:{tmp_path / 'p'}"))


def test_train_accepts_a_prepared_dataset(tmp_path):
    from aigc.config import load_config
    from aigc.train import train

    prepare(DataConfig(source="digits"), tmp_path / "p")
    cfg = load_config("digits-gan", [f"data.source=prepared:{tmp_path / 'p'}", "train.steps=3",
                                     "train.progress=false", "train.sample_every=0"])
    result = train(cfg, tmp_path / "run", echo=lambda m: None)
    assert (result.run_dir / "config.yaml").is_file()
