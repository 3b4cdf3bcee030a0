"""Feature networks for image metrics: the shipped Fashion-MNIST CNN, or one trained on the user's data.

Inception-v3 cannot be downloaded here and says little about 28x28 clothes anyway, so FID and friends
are computed on the penultimate layer (128 numbers) of a small domain CNN:

- Fashion-MNIST uses the network shipped in `aigc/assets/fashion-cnn.safetensors`, trained by
  `python -m aigc.metrics.features --train` (its test accuracy is in the JSON sidecar);
- any other image dataset gets a network trained on its own training split (a classifier where
  labels exist, otherwise an autoencoder whose code is the feature), cached by the data's fingerprint.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ..data.base import Dataset, cache_dir, fingerprint
from ..files import atomic_write, atomic_write_text

ARCH = "aigc-cnn-v1"   # bump when FeatureNet changes: cached networks are keyed by it
INPUT_SIZE = 28        # every image is resized to this square side before the network
FEATURE_DIM = 128
TRAINING = "min-steps-500"  # part of the cache key: networks trained under older rules are retrained
MIN_STEPS = 500        # a self-trained network trains at least this many steps, however small the data
MAX_STEPS = 4000       # ... and at most this many (10 epochs of Fashion-MNIST would be 4,700)
ASSETS = Path(__file__).resolve().parent.parent / "assets"
SHIPPED = "fashion-cnn"


class FeatureNet(nn.Module):
    """Three conv blocks (16-32-64 channels) -> 128 features -> class logits (or a decoder)."""

    def __init__(self, channels: int = 1, num_classes: int = 10, decoder: bool = False):
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                    nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                    nn.MaxPool2d(2)]

        self.channels, self.num_classes = channels, num_classes
        self.trunk = nn.Sequential(*block(channels, 16), *block(16, 32), *block(32, 64), nn.Flatten(),
                                   nn.Linear(64 * 3 * 3, FEATURE_DIM), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURE_DIM, num_classes)) if num_classes else None
        self.decoder = nn.Sequential(
            nn.Linear(FEATURE_DIM, 64 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, channels, 4, 2, 1),
        ) if decoder else None

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 [0, 255] or float [0, 1] images of any size -> normalised float at INPUT_SIZE."""
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True,
                              align_corners=False)
        return (x - 0.5) / 0.5

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Prepared images -> (features [N, 128], logits [N, K] or None)."""
        f = self.trunk(x)
        return f, (self.head(f) if self.head is not None else None)


@dataclass
class Features:
    """A loaded feature network plus the facts every metric result records about it."""

    net: FeatureNet
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.info.get("name", ARCH))

    @property
    def is_classifier(self) -> bool:
        return self.net.head is not None

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch: int = 1000) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images (uint8 or float in [0, 1]) -> (float64 features, float64 logits or None)."""
        self.net.eval()
        feats, logits = [], []
        for chunk in images.split(batch):
            f, lg = self.net(self.net.prepare(chunk))
            feats.append(f.double())
            if lg is not None:
                logits.append(lg.double())
        if not feats:
            return torch.empty(0, FEATURE_DIM, dtype=torch.float64), None
        return torch.cat(feats), (torch.cat(logits) if logits else None)


# ---------------------------------------------------------------- training

def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 2 pixels and horizontal flips, on the whole batch at once."""
    n = x.shape[0]
    flip = torch.rand(n, generator=g) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=g))
    return torch.roll(F.pad(x, (2, 2, 2, 2), value=-1.0), shifts=(dy, dx), dims=(-2, -1))[..., 2:-2, 2:-2]


def train_feature_net(data: Dataset, *, epochs: float = 10, batch_size: int = 128, lr: float = 3e-3,
                      max_steps: int | None = None, min_steps: int = 1, seed: int = 0,
                      echo: Callable[[str], None] = print) -> Features:
    """Train a FeatureNet on `data.train`: a classifier when it has labels, else an autoencoder."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, y = data.train["x"], data.train.get("y")
    k = int(data.meta.get("num_classes") or 0) if y is not None else 0
    net = FeatureNet(int(x.shape[1]), k, decoder=not k)
    n = len(x)
    bs = min(batch_size, n)
    steps = max(1, int(math.ceil(epochs * n / bs)))
    if max_steps is not None:  # the caller's bounds (feature_net_for: MIN_STEPS to MAX_STEPS)
        steps = min(max(steps, min_steps), max_steps)
    every = max(1, steps // 10)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    net.train()
    tic, step, perm = time.perf_counter(), 0, torch.empty(0, dtype=torch.int64)
    while step < steps:
        if len(perm) < bs:
            perm = torch.randperm(n, generator=g)
        idx, perm = perm[:bs], perm[bs:]
        inp = net.prepare(x[idx])
        f, logits = net(_augment(inp, g) if k else inp)
        if k:
            loss = F.cross_entropy(logits, y[idx], label_smoothing=0.05)
        else:
            loss = F.mse_loss(net.decoder(f), inp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        if step % every == 0 or step == steps:
            spent = time.perf_counter() - tic
            echo(f"feature net step {step:,}/{steps:,} loss={loss.item():.4f} {spent:.0f} s"
                 + (f", about {spent / step * (steps - step):.0f} s left" if step < steps else ""))
    net.eval()
    info: dict[str, Any] = {"name": f"{ARCH}-{data.name}", "arch": ARCH, "kind": "classifier" if k else "autoencoder",
                            "trained_on": data.meta.get("source", data.name), "n_train": n, "steps": steps,
                            "batch_size": bs, "seconds": round(time.perf_counter() - tic, 1),
                            "class_names": list(data.meta.get("class_names") or []) if k else []}
    feats = Features(net, info)
    if data.test is not None and len(data.test["x"]):
        xt = data.test["x"]
        if k and "y" in data.test:
            _, logits = feats(xt)
            info["test_accuracy"] = round(float((logits.argmax(1) == data.test["y"]).double().mean()), 4)
        elif not k:
            with torch.no_grad():
                inp = net.prepare(xt[:2000])
                info["test_mse"] = round(float(F.mse_loss(net.decoder(net(inp)[0]), inp)), 5)
                mean_image = net.prepare(x).mean(0, keepdim=True)  # what a network that learned nothing gives
                info["test_mse_mean_image"] = round(float(F.mse_loss(mean_image.expand_as(inp), inp)), 5)
    return feats


# ---------------------------------------------------------------- saving, loading, caching

def save_features(feats: Features, path: Path) -> Path:
    """Weights as safetensors (float32) plus a JSON sidecar with the facts (`path`.json)."""
    path = Path(path).with_suffix(".safetensors")
    state = {k: v.contiguous() for k, v in feats.net.state_dict().items()}
    atomic_write(path, lambda p: save_file(state, str(p)))
    info = {**feats.info, "channels": feats.net.channels, "num_classes": feats.net.num_classes,
            "decoder": feats.net.decoder is not None}
    atomic_write_text(path.with_suffix(".json"), json.dumps(info, indent=1) + "\n")
    return path


def load_features(path: Path) -> Features:
    """A network written by save_features (only safetensors and JSON are read)."""
    path = Path(path).with_suffix(".safetensors")
    info = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    net = FeatureNet(int(info["channels"]), int(info["num_classes"]), bool(info.get("decoder")))
    net.load_state_dict(load_file(str(path)))
    net.eval()
    return Features(net, info)


def data_fingerprint(data: Dataset) -> str:
    """A hash of the training images themselves (and labels), so any change retrains the network."""
    h = hashlib.sha256()
    for key in ("x", "y"):
        if key in data.train:
            h.update(data.train[key].contiguous().numpy().tobytes())
    return fingerprint(ARCH, TRAINING, h.hexdigest(), list(data.meta.get("class_names") or []))


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")[:40] or "data"


def is_fashion_mnist(data: Dataset) -> bool:
    return data.meta.get("source") == "fashion-mnist" and list(data.meta.get("shape") or []) == [1, 28, 28]


def feature_net_for(data: Dataset, *, echo: Callable[[str], None] = print,
                    max_steps: int | None = None) -> Features:
    """The shipped network for Fashion-MNIST; otherwise one trained on `data` (cached by fingerprint)."""
    shipped = ASSETS / f"{SHIPPED}.safetensors"
    if is_fashion_mnist(data) and shipped.is_file():
        return load_features(shipped)
    key = data_fingerprint(data)
    # a network cut short by the caller (max_steps) is cached apart, never served as the full one
    path = cache_dir() / "feature-nets" / (f"{key}.safetensors" if max_steps is None else f"{key}-max{max_steps}.safetensors")
    if path.is_file() and path.with_suffix(".json").is_file():
        try:
            feats = load_features(path)
            echo(f"using the feature network trained earlier on {data.name}'s training split ({path})")
            return feats
        except (OSError, ValueError, KeyError, RuntimeError):
            pass  # a damaged cache entry is retrained, never trusted
    echo(f"no shipped feature network fits {data.name}: training one on its {len(data)} training "
         f"images (once; it will be cached at {path})")
    feats = train_feature_net(data, max_steps=max_steps if max_steps is not None else MAX_STEPS,
                              min_steps=min(MIN_STEPS, max_steps or MIN_STEPS), echo=echo)
    # the name says what it was trained on: one dataset's FIDs are comparable with each other only
    feats.info.update(name=f"{ARCH}-{_slug(data.name)}-{key[:8]}", data_fingerprint=key)
    acc, mse = feats.info.get("test_accuracy"), feats.info.get("test_mse")
    echo(f"feature network {feats.info['name']}: " + (
        f"held-out accuracy {acc:.2%}" if acc is not None else
        f"held-out reconstruction MSE {mse} (the mean image gives {feats.info.get('test_mse_mean_image')})"
        if mse is not None else "no held-out split to measure it on"))
    try:
        save_features(feats, path)
        echo(f"feature network cached at {path}")
    except OSError:
        pass
    return feats


def main(argv: list[str] | None = None) -> int:
    """`python -m aigc.metrics.features --train`: (re)build the shipped Fashion-MNIST network."""
    from ..config import DataConfig
    from ..data import load_dataset

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--train", action="store_true", help="train on Fashion-MNIST and write the asset")
    p.add_argument("--epochs", type=float, default=10)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=str(ASSETS / SHIPPED), help="output path (without suffix)")
    args = p.parse_args(argv)
    if not args.train:
        p.print_help()
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset(DataConfig(source="fashion-mnist"))
    feats = train_feature_net(data, epochs=args.epochs)
    feats.info.update(name=f"{ARCH}-fashion-mnist", trained_by="python -m aigc.metrics.features --train "
                      f"--epochs {args.epochs:g}", torch=torch.__version__)
    path = save_features(feats, Path(args.out))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB), test accuracy {feats.info.get('test_accuracy')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
