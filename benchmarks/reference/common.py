"""What both references share: torchvision's FashionMNIST read from the system's idx files."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from torch.utils.data import DataLoader
from torchvision import datasets, transforms

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def torchvision_root(cache: Path, source: Path = SYSTEM_DIR) -> Path:
    """A folder torchvision's FashionMNIST accepts (it wants the raw idx files un-gzipped)."""
    raw = cache / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if (raw / name).is_file():
            continue
        gz, plain = source / f"{name}.gz", source / name
        if plain.is_file():
            shutil.copyfile(plain, raw / name)
        else:
            with gzip.open(gz, "rb") as f, open(raw / f"{name}.tmp", "wb") as out:
                shutil.copyfileobj(f, out)
            (raw / f"{name}.tmp").rename(raw / name)
    return cache


def tutorial_loader(root: Path, batch_size: int) -> DataLoader:
    """The loader every tutorial writes: ToTensor + Normalize to [-1, 1], shuffled, per item.

    num_workers=0: on a 2-core machine worker processes only compete with the training step.
    """
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    ds = datasets.FashionMNIST(str(root), train=True, download=False, transform=transform)
    return DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=0)


class Endless:
    """Steps through a DataLoader forever, starting a new epoch when one ends."""

    def __init__(self, loader: DataLoader):
        self.loader, self.it = loader, iter(loader)

    def next(self):
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)
