"""Writes the corpus of bad inputs the reliability tests feed to `aigc` (run: python tests/bad_inputs.py DIR).

Generated rather than committed, so every file is reproducible and reviewable here.
"""
from __future__ import annotations

import gzip
import io
import struct
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def _idx(array: np.ndarray) -> bytes:
    return struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + \
        array.astype(np.uint8).tobytes()


def _png(value: int, size=(8, 8), mode="L") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, value).save(buf, format="PNG")
    return buf.getvalue()


def _idx_set(folder: Path, n_train=40, n_labels=40) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    (folder / "train-images-idx3-ubyte").write_bytes(_idx(rng.integers(0, 256, (n_train, 28, 28))))
    (folder / "train-labels-idx1-ubyte").write_bytes(_idx(rng.integers(0, 10, n_labels)))
    (folder / "t10k-images-idx3-ubyte").write_bytes(_idx(rng.integers(0, 256, (10, 28, 28))))
    (folder / "t10k-labels-idx1-ubyte").write_bytes(_idx(rng.integers(0, 10, 10)))
    return folder


def make_corpus(root: Path) -> Path:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    # folders whose images are all unreadable
    corrupt = root / "corrupt-images"
    corrupt.mkdir()
    (corrupt / "a.png").write_bytes(_png(10)[:30])                      # cut inside the header
    (corrupt / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)  # JPEG magic, no image
    (corrupt / "c.png").write_bytes(b"GIF89a but named png")
    zero = root / "zero-byte-images"
    zero.mkdir()
    for i in range(3):
        (zero / f"{i}.png").write_bytes(b"")
    (root / "empty-folder").mkdir()
    mixed = root / "mixed-sizes"
    mixed.mkdir()
    (mixed / "a.png").write_bytes(_png(0, (8, 8)))
    (mixed / "b.png").write_bytes(_png(0, (12, 9)))
    # a usable folder with odd modes and a couple of bad files (trained on, bad ones listed)
    odd = root / "odd-modes"
    odd.mkdir()
    for i in range(18):
        (odd / f"gray{i}.png").write_bytes(_png(i * 10))
    Image.new("RGBA", (8, 8), (255, 0, 0, 128)).save(odd / "rgba.png")
    Image.new("P", (8, 8), 3).save(odd / "palette.png")
    Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)).save(odd / "deep16.png")
    (odd / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    # idx files: truncated, wrong magic, labels of a different count
    trunc = _idx_set(root / "idx-truncated")
    f = trunc / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-7])
    magic = _idx_set(root / "idx-bad-magic")
    (magic / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 64)
    _idx_set(root / "idx-count-mismatch", n_train=40, n_labels=39)
    gz = _idx_set(root / "idx-bad-gzip")
    (gz / "train-images-idx3-ubyte").unlink()
    (gz / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"x" * 100)[:20])
    flipped = _idx_set(root / "idx-corrupt-gzip")
    (flipped / "train-images-idx3-ubyte").unlink()
    blob = bytearray(gzip.compress(_idx(np.arange(40 * 784).reshape(40, 28, 28) % 256)))
    blob[10] ^= 0xFF  # a damaged deflate stream: zlib.error, not EOFError
    (flipped / "train-images-idx3-ubyte.gz").write_bytes(bytes(blob))
    # text
    (root / "empty.txt").write_bytes(b"")
    (root / "newlines.txt").write_bytes(b"\n\n\r\n\n")
    (root / "latin1.txt").write_bytes("caf\xe9 na\xefve\n".encode("latin-1"))
    np.save(root / "one-array.npy", np.zeros((4, 8, 8), dtype=np.uint8))
    # configs
    (root / "unknown-key.yaml").write_text("name: x\ntrain:\n  stepz: 5\n")
    (root / "wrong-type.yaml").write_text("name: x\ntrain:\n  batch_size: lots\n")
    (root / "negative-steps.yaml").write_text("name: x\ntrain:\n  steps: -10\n")
    (root / "unknown-model.yaml").write_text("name: x\nmodel:\n  name: stylegan9\n")
    (root / "unknown-dataset.yaml").write_text("name: x\ndata:\n  source: imagenet\n")
    (root / "not-yaml.yaml").write_text("name: [unclosed\n")
    (root / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    # model files
    (root / "model.pt").write_bytes(b"\x80\x04\x95" + b"\x00" * 20)
    return root


if __name__ == "__main__":
    print(make_corpus(Path(sys.argv[1] if len(sys.argv) > 1 else "bad-inputs")))
