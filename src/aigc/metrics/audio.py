"""Measuring sound: a spoken-digit CNN as the feature network, and FID, KID, IS, precision/recall/
density/coverage, per-label accuracy, copies of training clips and the real floor on its features.

No audio network can be downloaded here (and VGGish knows nothing of 8 kHz digits), so, as for
images, the features are the penultimate layer (128 numbers) of a small domain CNN on log
spectrograms: the one shipped in `aigc/assets/fsdd-audio-cnn.safetensors` for the Free Spoken Digit
Dataset at 8 kHz, 1 s (its sidecar holds its test accuracy and the command that trained it), and for
any other audio data one trained on its own training split, cached by the data's fingerprint.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ..audio import STFT, to_float
from ..data.base import Dataset, cache_dir, fingerprint
from ..errors import ConfigError
from ..files import atomic_write, atomic_write_text
from .features import ASSETS
from .request import asked_labels, samples_kept

ARCH = "aigc-audio-cnn-v1"
SHIPPED = "fsdd-audio-cnn"
FEATURE_DIM = 128
EVAL_N = 1000


class AudioNet(nn.Module):
    """Log spectrogram (n_fft 256, hop 64; frequency halved by pooling) -> 4 conv blocks (16-32-64-128)
    -> mean and max over time and frequency -> 128 features -> class logits."""

    def __init__(self, num_classes: int, rate: int):
        super().__init__()
        n_fft = 256 if rate <= 16_000 else 1024
        self.stft = STFT(n_fft, n_fft // 4)
        self.num_classes, self.rate = num_classes, rate

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

        self.trunk = nn.Sequential(*block(1, 16), *block(16, 32), *block(32, 64), *block(64, 128))
        self.embed = nn.Sequential(nn.Linear(256, FEATURE_DIM), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(FEATURE_DIM, num_classes))

    def prepare(self, wave: torch.Tensor) -> torch.Tensor:
        """Float waves [n, L] (or int16 clips [n, 1, L]) -> spectrograms [n, 1, bins / 2, frames]."""
        w = to_float(wave) if wave.dtype == torch.int16 else wave.float()
        spec = self.stft.encode(w.reshape(len(w), -1))
        return F.avg_pool2d(spec, (2, 1))

    def forward(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(spec)
        f = self.embed(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1))
        return f, self.head(f)


@dataclass
class AudioFeatures:
    net: AudioNet
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.info.get("name", ARCH))

    @torch.no_grad()
    def __call__(self, waves: torch.Tensor, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """Waves -> (float64 features [n, 128], float64 logits [n, K])."""
        self.net.eval()
        feats, logits = [], []
        for chunk in waves.split(batch):
            f, lg = self.net(self.net.prepare(chunk))
            feats.append(f.double())
            logits.append(lg.double())
        return torch.cat(feats), torch.cat(logits)


def _augment(spec: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A random shift in time (up to 16 frames, 0.13 s at 8 kHz) and a level change of up to 6 dB."""
    shift = int(torch.randint(-16, 17, (1,), generator=g))
    spec = torch.roll(spec, shift, dims=-1)
    level = (torch.rand(len(spec), 1, 1, 1, generator=g) - 0.5) * (12 / 40)  # +-6 dB on the [-1, 1] scale of 80 dB
    return (spec + level).clamp(-1, 1)


def train_audio_net(data: Dataset, *, epochs: float = 30, batch_size: int = 64, lr: float = 3e-3, seed: int = 0,
                    echo: Callable[[str], None] = print) -> AudioFeatures:
    """A spoken-word classifier on `data.train` (it needs labels)."""
    if "y" not in data.train or not data.meta.get("num_classes"):
        raise ConfigError(f"{data.name} has no labels to train an audio feature network on",
                          "give the clips labels (class folders or data.label_pattern)")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = AudioNet(int(data.meta["num_classes"]), int(data.meta["sample_rate"]))
    spec = torch.cat([net.prepare(c) for c in data.train["x"].split(512)])
    y = data.train["y"]
    n, bs = len(spec), min(batch_size, len(spec))
    steps = max(1, int(math.ceil(epochs * n / bs)))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    every = max(1, steps // 10)
    net.train()
    tic, perm = time.perf_counter(), torch.empty(0, dtype=torch.int64)
    for step in range(1, steps + 1):
        if len(perm) < bs:
            perm = torch.randperm(n, generator=g)
        idx, perm = perm[:bs], perm[bs:]
        _, logits = net(_augment(spec[idx], g))
        loss = F.cross_entropy(logits, y[idx], label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % every == 0 or step == steps:
            echo(f"audio feature net step {step:,}/{steps:,} loss={loss.item():.4f} {time.perf_counter() - tic:.0f} s")
    net.eval()
    info: dict[str, Any] = {"name": f"{ARCH}-{data.name}", "arch": ARCH, "trained_on": data.meta.get("source"),
                            "n_train": n, "steps": steps, "batch_size": bs, "epochs": epochs,
                            "seconds": round(time.perf_counter() - tic, 1), "sample_rate": net.rate,
                            "samples": int(data.meta["samples"]), "class_names": list(data.meta["class_names"]),
                            "data_fingerprint": data_fingerprint(data)}
    feats = AudioFeatures(net, info)
    if data.test is not None and "y" in data.test:
        _, logits = feats(data.test["x"])
        info["test_accuracy"] = round(float((logits.argmax(1) == data.test["y"]).double().mean()), 4)
        info["n_test"] = len(data.test["x"])
    return feats


def save_audio_features(feats: AudioFeatures, path: Path) -> Path:
    path = Path(path).with_suffix(".safetensors")
    state = {k: v.contiguous() for k, v in feats.net.state_dict().items()}
    atomic_write(path, lambda p: save_file(state, str(p)))
    atomic_write_text(path.with_suffix(".json"), json.dumps({**feats.info, "num_classes": feats.net.num_classes},
                                                            indent=1) + "\n")
    return path


def load_audio_features(path: Path) -> AudioFeatures:
    path = Path(path).with_suffix(".safetensors")
    info = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    net = AudioNet(int(info["num_classes"]), int(info["sample_rate"]))
    net.load_state_dict(load_file(str(path)))
    net.eval()
    return AudioFeatures(net, info)


def data_fingerprint(data: Dataset) -> str:
    """A hash of the training clips and labels (and the network's design)."""
    h = hashlib.sha256()
    for key in ("x", "y"):
        if key in data.train:
            h.update(data.train[key].contiguous().numpy().tobytes())
    return fingerprint(ARCH, h.hexdigest(), list(data.meta.get("class_names") or []), data.meta.get("sample_rate"))


def audio_feature_net_for(data: Dataset, *, echo: Callable[[str], None] = print) -> AudioFeatures:
    """The shipped network when `data` is the data it was trained on; else one trained on `data`, cached."""
    key = data_fingerprint(data)
    shipped = ASSETS / f"{SHIPPED}.safetensors"
    if shipped.is_file():
        feats = load_audio_features(shipped)
        if feats.info.get("data_fingerprint") == key:
            return feats
    path = cache_dir() / "feature-nets" / f"audio-{key}.safetensors"
    if path.is_file() and path.with_suffix(".json").is_file():
        try:
            return load_audio_features(path)
        except (OSError, ValueError, KeyError, RuntimeError):
            pass  # a damaged cache entry is retrained, never trusted
    echo(f"no shipped audio feature network fits {data.name}: training one on its {len(data)} training clips "
         f"(once; cached at {path})")
    feats = train_audio_net(data, echo=echo)
    feats.info["name"] = f"{ARCH}-{data.name}-{key[:8]}"
    acc = feats.info.get("test_accuracy")
    echo(f"audio feature network {feats.info['name']}: " + (f"held-out accuracy {acc:.2%}" if acc is not None
                                                            else "no labelled test split to measure it on"))
    try:
        save_audio_features(feats, path)
    except OSError:
        pass
    return feats


# ---------------------------------------------------------------- evaluation


def _scores(real: torch.Tensor, fake: torch.Tensor, logits: torch.Tensor) -> dict[str, float]:
    from . import image as M

    kid, kid_std = M.kid(fake, real, subset_size=min(1000, len(real), len(fake)))
    is_mean, is_std = M.inception_score(logits, splits=min(10, max(1, len(logits) // 100)))
    return {"fid": M.fid(fake, real), "kid": kid, "kid_std": kid_std, "is": is_mean, "is_std": is_std,
            **M.prdc(real, fake)}


def evaluate_audio_run(loaded: Any, data: Dataset, request: Any) -> dict[str, Any]:
    """FID, KID, IS, PRDC, label accuracy and copies of a run's samples against the test split, with the floor."""
    n = request.n_or(EVAL_N)
    k = len(loaded.class_names) if getattr(loaded.model, "num_classes", 0) else 0
    request.echo(f"sampling {n} clips ...")
    clips = loaded.sample(n, seed=request.seed, **({"labels": list(range(k))} if k else {}))
    return evaluate_clips(clips.wave, torch.arange(n) % k if k else None, data, request)


def evaluate_clips(wave: torch.Tensor, asked: torch.Tensor | None, data: Dataset, request: Any,
                   **facts: Any) -> dict[str, Any]:
    """Float clips [n, L] at the data's rate and length (and the label index each was asked for, if
    any) measured against the test split: FID, KID, IS, PRDC, label accuracy, copies, the floor."""
    from .memorization import memorization

    feats = audio_feature_net_for(data, echo=request.echo)
    test = data.split(request.split)
    real_f, _ = feats(test["x"])
    train = feats(data.train["x"])  # every training clip's (features, logits): the copies and the floor
    fake_f, logits = feats(wave)
    n = len(wave)
    out: dict[str, Any] = {"n": n, **facts, "n_real": len(real_f),
                           "against": f"{request.split} split ({len(real_f)} clips)",
                           "features": {"name": feats.name, "test_accuracy": feats.info.get("test_accuracy")},
                           **_scores(real_f, fake_f, logits)}
    if asked is not None:
        names = data.meta["class_names"]
        hit = logits.argmax(1) == asked
        out["label_accuracy"] = float(hit.double().mean())
        out["per_label_accuracy"] = {names[c]: round(float(hit[asked == c].double().mean()), 4)
                                     for c in range(len(names)) if (asked == c).any()}
    mem = memorization(fake_f, train[0], real_f)
    out["copies"] = mem.copies
    if request.floor:
        floor = evaluate_audio_real(data, request, feats=feats, real_features=real_f, train=train)
        out["floor"] = {key: floor[key] for key in ("fid", "kid", "is", "precision", "recall", "coverage")}
    return out


def read_audio_samples(path: Path, data: Dataset, n: int | None, echo: Callable[[str], None] = print
                       ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Clips made elsewhere -> (float waves [n, L] at the data's rate and length, asked label indices or
    None). An npz as `aigc sample --format npz` writes it (`x` int16 [n, L], `sample_rate`, optional
    `labels`), or a folder of audio files (labels from names NNN-LABEL.wav, as `aigc sample` writes
    them, when every LABEL is one of the data's classes). Files are resampled and cut or padded as
    the data was, but not peak-normalised: a run's own npz gives the run's figures again."""
    import re

    import numpy as np

    from ..audio import SAMPLE_RATES, fit_length, read_audio, resample
    from ..data.audio import list_clips
    from ..errors import DataError

    rate, samples = int(data.meta["sample_rate"]), int(data.meta["samples"])
    names = list(data.meta.get("class_names") or [])
    if path.is_file() and path.suffix.lower() == ".npz":
        fix = "write it with `aigc sample RUN --format npz`: x int16 [n, L], sample_rate, labels [n]"
        try:
            with np.load(path, allow_pickle=False) as z:
                x, their_rate = z["x"], int(z["sample_rate"]) if "sample_rate" in z else rate
                labels = z["labels"] if "labels" in z else None
        except Exception as e:  # a corrupt archive, a missing `x`, or object arrays (never unpickled)
            raise DataError(f"{path} is not an npz of clips ({type(e).__name__}: {str(e)[:100]})", fix) from None
        if x.ndim != 2 or x.dtype not in (np.int16, np.float32, np.float64) or not len(x):
            raise DataError(f"{path}: x is {x.dtype} {list(x.shape)}", "store clips as int16 or float [n, samples]")
        if x.dtype != np.int16 and not np.isfinite(x).all():
            raise DataError(f"{path}: x holds NaN or infinite values", "store finite samples in [-1, 1]")
        if not SAMPLE_RATES[0] <= their_rate <= SAMPLE_RATES[1]:
            raise DataError(f"{path}: sample_rate is {their_rate}", f"store the clips' rate, "
                            f"{SAMPLE_RATES[0]:,} to {SAMPLE_RATES[1]:,} Hz")
        if labels is not None and (labels.ndim != 1 or len(labels) != len(x)):
            raise DataError(f"{path}: labels has shape {list(labels.shape)} for {len(x)} clips", fix)
        labels = None if labels is None else [str(v) for v in labels]
        waves = [fit_length(resample(to_float(torch.from_numpy(c)).numpy() if c.dtype == np.int16
                                     else c.astype(np.float32), their_rate, rate), samples) for c in x]
    elif path.is_dir():
        files = list_clips(path)
        waves = [fit_length(read_audio(f, rate)[0], samples) for f in files]
        named = [re.fullmatch(r"\d+-(.+)", f.stem) for f in files]  # NNN-LABEL, as aigc sample names them
        labels = [m.group(1) for m in named] if all(named) else None
    else:
        raise DataError(f"{path} is neither an .npz of clips nor a folder of audio files",
                        "give `aigc sample RUN --out DIR` (WAVs) or `--format npz` output")
    keep = samples_kept(path, len(waves), n)
    wave = torch.from_numpy(np.stack(waves[:keep]).astype(np.float32))
    return wave, asked_labels(labels, names, keep, echo)


def evaluate_audio_samples(path: Path, data: Dataset, request: Any) -> dict[str, Any]:
    wave, asked = read_audio_samples(path, data, request.n, request.echo)
    request.echo(f"read {len(wave)} clips from {path}")
    return evaluate_clips(wave, asked, data, request, kind="samples", samples=str(path))


def floor_indices(data: Dataset, request: Any) -> torch.Tensor:
    """The training clips the floor measures: n of them (at most all), drawn with the request's seed."""
    n = min(len(data.train["x"]), request.n_or(EVAL_N))
    return torch.randperm(len(data.train["x"]), generator=torch.Generator().manual_seed(request.seed))[:n]


def evaluate_audio_real(data: Dataset, request: Any, feats: AudioFeatures | None = None,
                        real_features: torch.Tensor | None = None,
                        train: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, Any]:
    """The real floor: training clips measured against the test split as if they were samples
    (`real_features`: the test split's features, `train`: every training clip's (features, logits),
    when the caller has them already)."""
    feats = feats or audio_feature_net_for(data, echo=request.echo)
    real_f = real_features if real_features is not None else feats(data.split(request.split)["x"])[0]
    idx = floor_indices(data, request)
    fake_f, logits = (train[0][idx], train[1][idx]) if train is not None else feats(data.train["x"][idx])
    return {"kind": "floor", "n": len(idx), "against": f"{request.split} split ({len(real_f)} clips)",
            "features": {"name": feats.name, "test_accuracy": feats.info.get("test_accuracy")},
            **_scores(real_f, fake_f, logits)}


def main(argv: list[str] | None = None) -> int:
    """`python -m aigc.metrics.audio --train wav:DIR ...`: (re)build the shipped FSDD network."""
    from ..config import DataConfig
    from ..data import load_dataset

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("source", help="the FSDD recordings as a source, e.g. wav:free-spoken-digit-dataset/recordings")
    p.add_argument("--epochs", type=float, default=30)
    p.add_argument("--out", default=str(ASSETS / SHIPPED), help="output path (without suffix)")
    args = p.parse_args(argv)
    data = load_dataset(DataConfig(source=args.source, label_pattern="{label}_{speaker}_{index}",
                                   split_pattern="index=0-4", sample_rate=8000, seconds=1.0))
    feats = train_audio_net(data, epochs=args.epochs)
    feats.info.update(name=f"{ARCH}-fsdd", trained_by=f"python -m aigc.metrics.audio {args.source} "
                      f"--epochs {args.epochs:g}", torch=torch.__version__)
    path = save_audio_features(feats, Path(args.out))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB), test accuracy {feats.info.get('test_accuracy')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
