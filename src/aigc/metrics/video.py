"""Measuring clips: frame quality, clip quality, motion, freezing and identity drift, with the real floor.

No I3D weights can be had offline, so FVD's network is out. In its place:

- **frame FID**: the Frechet distance of single frames on the image modality's feature network
  (aigc.metrics.features: a small CNN trained on the data's real frames, labelled with the clip's
  class where it has one), every frame of every clip against every frame of the test clips;
- **clip FD**: the Frechet distance on the 128 features of a small 3-D convolutional network trained
  on the real training clips to tell the item's class (where labelled) and whether a clip's frames are
  in order or shuffled (always), so its features see both the look and the movement;
- **motion**: each frame's centre of brightness (intensity above BACKGROUND), the distance it moves
  from frame to frame, and the Wasserstein-1 distance (scipy) between the samples' and the real clips'
  distributions of that step, relative to the real mean step;
- **frozen clips**: the share of clips whose centre moves less than FROZEN_PX pixels a frame on average;
- **identity changes**: the share of clips whose first and second halves get different majority
  classes from the frame classifier (labelled data only).

Every figure comes with the real floor: training clips measured against the test clips as if they
were samples (n of them), so a reader sees what "perfect" scores at this size and with these networks.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ..data.base import Dataset, cache_dir, fingerprint, tensors_digest
from ..errors import ConfigError, DataError
from ..files import atomic_write, atomic_write_text
from .request import asked_labels, samples_kept

ARCH = "aigc-clip-cnn-v1"
FEATURE_DIM = 128
CLIP_SIDE = 32          # clips are resized to this side before the 3-D network
EVAL_N = 500            # clips a run's evaluation draws by default
FRAME_SAMPLE = 4        # frames per training clip that train the frame feature network
BACKGROUND = 0.1        # intensity (0-1) below which a pixel counts as background for the centre
FROZEN_PX = 0.25        # a clip whose centre moves less than this many pixels a frame is frozen
CLIP_STEPS = 1500       # most training steps of the clip network (batch 32) ...
MIN_CLIP_STEPS = 200    # ... and fewest, however few the clips


# ---------------------------------------------------------------- the clip network

class ClipNet(nn.Module):
    """Three 3-D conv blocks (16-32-64) -> 128 features -> class logits and in-order/shuffled logits."""

    def __init__(self, channels: int, num_classes: int, frames: int = 16):
        super().__init__()

        def block(cin: int, cout: int, pool: tuple[int, int, int]) -> list[nn.Module]:
            return [nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(),
                    nn.MaxPool3d(pool)]

        self.channels, self.num_classes, self.frames = channels, num_classes, frames
        t2 = 2 if frames >= 2 else 1            # time halves only while there are frames to halve
        t3 = 2 if frames // t2 >= 2 else 1
        self.trunk = nn.Sequential(*block(channels, 16, (1, 2, 2)), *block(16, 32, (t2, 2, 2)),
                                   *block(32, 64, (t3, 2, 2)), nn.AdaptiveAvgPool3d((2, 2, 2)), nn.Flatten(),
                                   nn.Linear(64 * 8, FEATURE_DIM), nn.ReLU())
        self.classes = nn.Linear(FEATURE_DIM, num_classes) if num_classes else None
        self.order = nn.Linear(FEATURE_DIM, 2)

    @staticmethod
    def prepare(clips: torch.Tensor) -> torch.Tensor:
        """uint8 [n, T, C, H, W] or float in [0, 1] -> float [n, C, T, 32, 32] in [-1, 1]."""
        x = clips.float() / 255.0 if clips.dtype == torch.uint8 else clips.float()
        n, t, c, h, w = x.shape
        if (h, w) != (CLIP_SIDE, CLIP_SIDE):
            x = F.interpolate(x.reshape(n * t, c, h, w), size=(CLIP_SIDE, CLIP_SIDE), mode="bilinear",
                              antialias=True, align_corners=False).reshape(n, t, c, CLIP_SIDE, CLIP_SIDE)
        return (x * 2 - 1).permute(0, 2, 1, 3, 4).contiguous()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        f = self.trunk(x)
        return f, (self.classes(f) if self.classes is not None else None), self.order(f)


@dataclass
class ClipFeatures:
    net: ClipNet
    info: dict[str, Any] = field(default_factory=dict)

    @torch.no_grad()
    def __call__(self, clips: torch.Tensor, batch: int = 64) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Clips -> (float64 features [n, 128], float64 class logits or None)."""
        self.net.eval()
        feats, logits = [], []
        for chunk in clips.split(batch):
            f, lg, _ = self.net(self.net.prepare(chunk))
            feats.append(f.double())
            if lg is not None:
                logits.append(lg.double())
        return torch.cat(feats), (torch.cat(logits) if logits else None)


def _shuffled(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Each clip's frames [n, C, T, H, W] in a random order that is not the identity."""
    n, t = x.shape[0], x.shape[2]
    perm = torch.argsort(torch.rand(n, t, generator=g), 1)
    same = (perm == torch.arange(t)).all(1)
    perm[same] = perm[same].flip(1)
    return torch.gather(x, 2, perm.view(n, 1, t, 1, 1).expand_as(x))


def train_clip_net(data: Dataset, *, steps: int | None = None, batch_size: int = 32, lr: float = 2e-3,
                   seed: int = 0, echo: Callable[[str], None] = print) -> ClipFeatures:
    """Train a ClipNet on data.train: the item's class (where labelled) and in-order vs shuffled,
    for 10 epochs (at least MIN_CLIP_STEPS, at most CLIP_STEPS steps) unless `steps` is given."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, y = data.train["x"], data.train.get("y")
    k = int(data.meta.get("num_classes") or 0) if y is not None else 0
    net = ClipNet(int(x.shape[2]), k, int(x.shape[1]))
    bs = min(batch_size, len(x))
    steps = steps or min(CLIP_STEPS, max(MIN_CLIP_STEPS, math.ceil(10 * len(x) / bs)))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    net.train()
    tic, every = time.perf_counter(), max(1, steps // 5)
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(x), (bs,), generator=g)
        inp = net.prepare(x[idx])
        flip = torch.rand(bs, generator=g) < 0.5  # horizontal flips keep class and order
        inp = torch.where(flip.view(-1, 1, 1, 1, 1), inp.flip(-1), inp)
        shuffled = torch.rand(bs, generator=g) < 0.5
        inp = torch.where(shuffled.view(-1, 1, 1, 1, 1), _shuffled(inp, g), inp)
        _, logits, order = net(inp)
        loss = F.cross_entropy(order, shuffled.long())
        if k:
            loss = loss + F.cross_entropy(logits, y[idx], label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % every == 0 or step == steps:
            echo(f"clip net step {step:,}/{steps:,} loss={loss.item():.4f} {time.perf_counter() - tic:.0f} s")
    net.eval()
    info: dict[str, Any] = {"name": f"{ARCH}-{data.name}", "arch": ARCH, "n_train": len(x), "steps": steps,
                            "batch_size": bs, "seconds": round(time.perf_counter() - tic, 1),
                            "heads": (["class"] if k else []) + ["order"]}
    if data.test is not None and len(data.test["x"]):
        xt = data.test["x"][:1000]
        with torch.no_grad():
            inp = net.prepare(xt)
            mixed = torch.cat([inp, _shuffled(inp, torch.Generator().manual_seed(seed + 1))])
            order = torch.cat([net(c)[2] for c in mixed.split(64)])
            truth = torch.cat([torch.zeros(len(inp)), torch.ones(len(inp))]).long()
            info["test_order_accuracy"] = round(float((order.argmax(1) == truth).double().mean()), 4)
            if k and "y" in data.test:
                logits = torch.cat([net(c)[1] for c in inp.split(64)])
                info["test_accuracy"] = round(float((logits.argmax(1) == data.test["y"][:1000]).double().mean()), 4)
    return ClipFeatures(net, info)


def clip_fingerprint(data: Dataset) -> str:
    return fingerprint(ARCH, CLIP_STEPS, MIN_CLIP_STEPS, tensors_digest(data.train), list(data.train["x"].shape),
                       list(data.meta.get("class_names") or []))


def clip_net_for(data: Dataset, *, echo: Callable[[str], None] = print) -> ClipFeatures:
    """The clip network trained on `data`'s training clips, cached by their fingerprint."""
    key = clip_fingerprint(data)
    path = cache_dir() / "feature-nets" / f"clip-{key}.safetensors"
    if path.is_file() and path.with_suffix(".json").is_file():
        try:
            info = json.loads(path.with_suffix(".json").read_text())
            net = ClipNet(int(info["channels"]), int(info["num_classes"]), int(info["frames"]))
            net.load_state_dict(load_file(str(path)))
            return ClipFeatures(net.eval(), info)
        except (OSError, ValueError, KeyError, RuntimeError):
            pass  # a damaged cache entry is retrained, never trusted
    echo(f"training the clip network on {data.name}'s {len(data):,} training clips (once; cached at {path})")
    feats = train_clip_net(data, echo=echo)
    feats.info.update(name=f"{ARCH}-{data.name}-{key[:8]}", channels=feats.net.channels,
                      num_classes=feats.net.num_classes, frames=feats.net.frames, data_fingerprint=key)
    echo(f"clip network {feats.info['name']}: held-out in-order/shuffled accuracy "
         f"{feats.info.get('test_order_accuracy')}, class accuracy {feats.info.get('test_accuracy')}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda p: save_file(feats.net.state_dict(), str(p)))
        atomic_write_text(path.with_suffix(".json"), json.dumps(feats.info, indent=1))
    except OSError:
        pass
    return feats


# ---------------------------------------------------------------- frames

def frames_dataset(data: Dataset) -> Dataset:
    """FRAME_SAMPLE evenly spaced frames of every training clip (and every test clip) as an image
    dataset labelled with the clip's class: what the frame feature network trains on."""
    def split(part: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = part["x"]
        pick = torch.linspace(0, x.shape[1] - 1, min(FRAME_SAMPLE, x.shape[1])).round().long()
        out = {"x": x[:, pick].reshape(-1, *x.shape[2:]).contiguous()}
        if "y" in part:
            out["y"] = part["y"].repeat_interleave(len(pick))
        return out

    meta = {"source": f"frames of {data.meta.get('source', data.name)}", "shape": list(data.meta["shape"][1:])}
    for key in ("class_names", "num_classes"):
        if key in data.meta:
            meta[key] = data.meta[key]
    return Dataset(f"{data.name}-frames", "image", split(data.train),
                   split(data.test) if data.test is not None else None, meta)


def frame_net_for(data: Dataset, echo: Callable[[str], None]):
    from .features import feature_net_for

    return feature_net_for(frames_dataset(data), echo=echo)


# ---------------------------------------------------------------- motion

def centres(clips: torch.Tensor) -> torch.Tensor:
    """Each frame's centre of brightness [n, T, 2] (row, col in pixels; the frame's middle when blank)."""
    x = clips.float() / 255.0 if clips.dtype == torch.uint8 else clips.float()
    w = (x.mean(2) - BACKGROUND).clamp_min(0)  # [n, T, H, W]
    h, wd = w.shape[-2:]
    total = w.sum((-2, -1))
    rows = (w.sum(-1) * torch.arange(h)).sum(-1)
    cols = (w.sum(-2) * torch.arange(wd)).sum(-1)
    blank = total < 1e-6
    c = torch.stack([rows / total.clamp_min(1e-6), cols / total.clamp_min(1e-6)], -1)
    return torch.where(blank.unsqueeze(-1), torch.tensor([(h - 1) / 2, (wd - 1) / 2]), c)


def motion(clips: torch.Tensor, classes: torch.Tensor | None = None) -> dict[str, Any]:
    """Per-step displacements (pixels, flattened), per-clip mean step, and per-clip identity change
    (first half's majority class != second half's) when per-frame classes [n, T] are given."""
    steps = (centres(clips).diff(dim=1)).norm(dim=-1)  # [n, T-1]
    out: dict[str, Any] = {"steps": steps.reshape(-1).numpy(), "mean_step": steps.mean(1).numpy()}
    if classes is not None:
        half = classes.shape[1] // 2
        first, second = classes[:, :half].mode(1).values, classes[:, half:].mode(1).values
        out["changed"] = (first != second).numpy()
    return out


def motion_scores(fake: dict[str, Any], real: dict[str, Any]) -> dict[str, float]:
    from scipy.stats import wasserstein_distance

    real_mean = float(np.mean(real["steps"]))
    w1 = float(wasserstein_distance(fake["steps"], real["steps"]))
    out = {"displacement_w1_rel": w1 / max(real_mean, 1e-9), "mean_step_px": float(np.mean(fake["steps"])),
           "frozen": float(np.mean(fake["mean_step"] < FROZEN_PX))}
    if "changed" in fake:
        out["identity_changes"] = float(np.mean(fake["changed"]))
    return out


# ---------------------------------------------------------------- evaluation

def _section(name: str, values: dict[str, float], n: int, against: str, features: str, note: str = "") -> dict:
    return {"name": name, "values": values, "n": n, "against": against, "features": features, "note": note,
            "files": [], "intervals": {}}


@dataclass
class Reference:
    """What every evaluation against one dataset shares: networks and the test clips' measurements."""

    frame_net: Any
    clip_net: ClipFeatures
    frame_feats: torch.Tensor
    clip_feats: torch.Tensor
    motion: dict[str, Any]
    n_real: int
    against: str


def reference(data: Dataset, request: Any) -> Reference:
    test = data.split(request.split)
    if len(test["x"]) < 2 or len(data.train["x"]) < 2:
        raise DataError(f"{data.meta.get('source', data.name)} has {len(data.train['x'])} training and "
                        f"{len(test['x'])} {request.split} clips; measuring needs at least 2 of each",
                        "raise data.clips, or add clips to the folder")
    frame_net = frame_net_for(data, request.echo)
    clip_net = clip_net_for(data, echo=request.echo)
    ff, flog = _frame_feats(frame_net, test["x"])
    cf, _ = clip_net(test["x"])
    classes = None if flog is None else flog.argmax(1).reshape(len(test["x"]), -1)
    return Reference(frame_net, clip_net, ff, cf, motion(test["x"], classes),
                     len(test["x"]), f"{request.split} split ({len(test['x']):,} clips)")


def _frame_feats(frame_net: Any, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Every frame of every clip [n, T, C, H, W] -> (frame features [n*T, 128], logits or None)."""
    return frame_net(clips.reshape(-1, *clips.shape[2:]))


def measure(clips: torch.Tensor, asked: torch.Tensor | None, ref: Reference, data: Dataset) -> list[dict]:
    """The sections of one set of clips (uint8 or float [n, T, C, H, W]) against the reference."""
    from .image import fid

    n = len(clips)
    ff, flog = _frame_feats(ref.frame_net, clips)
    cf, clog = ref.clip_net(clips)
    classes = None if flog is None else flog.argmax(1).reshape(n, -1)
    mot = motion(clips, classes)
    frame_note = f"all {clips.shape[1]} frames of each clip ({len(ff):,} frames vs {len(ref.frame_feats):,})"
    sections = [
        _section("frames", {"frame_fid": fid(ff, ref.frame_feats)}, n, ref.against,
                 str(ref.frame_net.name), frame_note),
        _section("clips", {"clip_fd": fid(cf, ref.clip_feats)}, n, ref.against, str(ref.clip_net.info.get("name")),
                 "3-D conv net trained on the real clips (class + in-order/shuffled)"),
        _section("motion", motion_scores(mot, ref.motion), n, ref.against, "centre of brightness",
                 f"frozen: centre moves < {FROZEN_PX} px a frame; identity: the frame classifier's majority "
                 "class differs between the clip's halves"),
    ]
    if asked is not None:
        names = data.meta["class_names"]
        values = {}
        if clog is not None:
            values["label_accuracy"] = float((clog.argmax(1) == asked).double().mean())
        if classes is not None:
            values["frame_label_accuracy"] = float((classes == asked.view(-1, 1)).double().mean())
        sections.append(_section("labels", values, n, ", ".join(names[:10]), "clip and frame classifiers",
                                 "share of clips (frames) the classifiers give the class that was asked for"))
    return sections


def _result(kind: str, data: Dataset, ref: Reference, sections: list[dict], n: int, tic: float,
            request: Any, **facts: Any) -> dict[str, Any]:
    return {"kind": kind, "modality": "video", "data": data.meta.get("source", data.name), "n": n,
            "n_real": ref.n_real, "ref_split": request.split, "against": ref.against,
            "features": {"name": f"{ref.frame_net.name} (frames), {ref.clip_net.info.get('name')} (clips)",
                         "frame_test_accuracy": ref.frame_net.info.get("test_accuracy"),
                         "clip_test_accuracy": ref.clip_net.info.get("test_accuracy"),
                         "clip_test_order_accuracy": ref.clip_net.info.get("test_order_accuracy")},
            "seed": request.seed, **facts, "sections": sections, "seconds": round(time.perf_counter() - tic, 1)}


def floor_clips(data: Dataset, n: int, seed: int) -> torch.Tensor:
    """n training clips (at most all), drawn with `seed`: the real floor's "samples"."""
    n = min(len(data.train["x"]), n)
    return torch.randperm(len(data.train["x"]), generator=torch.Generator().manual_seed(seed))[:n]


def _check_n(n: int) -> None:
    if n < 2:
        raise ConfigError(f"--n is {n}", "measure at least 2 clips (a Frechet distance needs a spread)")


def evaluate_video_real(data: Dataset, request: Any, ref: Reference | None = None) -> dict[str, Any]:
    _check_n(request.n_or(EVAL_N))
    tic = time.perf_counter()
    ref = ref or reference(data, request)
    idx = floor_clips(data, request.n_or(EVAL_N), request.seed)
    y = data.train.get("y")
    sections = measure(data.train["x"][idx], None if y is None else y[idx], ref, data)
    return _result("floor", data, ref, sections, len(idx), tic, request)


def evaluate_clips(clips: torch.Tensor, asked: torch.Tensor | None, data: Dataset, request: Any,
                   kind: str, **facts: Any) -> dict[str, Any]:
    tic = time.perf_counter()
    shape = list(data.meta["shape"])
    if list(clips.shape[1:]) != shape:
        raise DataError(f"the clips are {list(clips.shape[1:])} (frames, channels, height, width) but "
                        f"{data.meta.get('source')} holds {shape}", "evaluate against the data they were made for")
    ref = reference(data, request)
    out = _result(kind, data, ref, measure(clips, asked, ref, data), len(clips), tic, request, **facts)
    if request.floor:
        out["floor"] = evaluate_video_real(data, request, ref)
    return out


def evaluate_video_run(loaded: Any, data: Dataset, request: Any) -> dict[str, Any]:
    n = request.n_or(EVAL_N)
    _check_n(n)
    k = len(loaded.class_names) if getattr(loaded.model, "num_classes", 0) else 0
    request.echo(f"sampling {n} clips ...")
    video = loaded.sample(n, seed=request.seed, **({"labels": list(range(k))} if k else {}))
    return evaluate_clips(video.frames, torch.arange(n) % k if k else None, data, request, "run",
                          run=str(loaded.run_dir), checkpoint=loaded.checkpoint.name)


def read_video_samples(path: Path, data: Dataset, n: int | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Clips made elsewhere -> (uint8 [n, T, C, H, W], asked label indices or None): an npz as
    `aigc sample --format npz` writes it (`x` uint8 [n, T, H, W, C], optional `labels`), or a folder of
    GIFs (labels from names NNN-LABEL.gif, as `aigc sample` writes them)."""
    import re

    from ..data.video import read_gif
    from ..modalities.video import safe_name

    t, c, h, w = data.meta["shape"]
    names = list(data.meta.get("class_names") or [])
    if path.is_file() and path.suffix.lower() == ".npz":
        fix = "write it with `aigc sample RUN --format npz`: x uint8 [n, frames, height, width, channels]"
        try:
            with np.load(path, allow_pickle=False) as z:
                x = z["x"]
                labels = z["labels"] if "labels" in z else None
        except Exception as e:  # a corrupt archive, a missing `x`, or object arrays (never unpickled)
            raise DataError(f"{path} is not an npz of clips ({type(e).__name__}: {str(e)[:100]})", fix) from None
        if x.ndim != 5 or x.dtype != np.uint8:
            raise DataError(f"{path}: x is {x.dtype} {list(x.shape)}", fix)
        if labels is not None and (labels.ndim != 1 or len(labels) != len(x)):
            raise DataError(f"{path}: labels has shape {list(labels.shape)} for {len(x)} clips",
                            "store one class name per clip, or no labels")
        labels = None if labels is None else [str(v) for v in labels]
        clips = torch.from_numpy(x).permute(0, 1, 4, 2, 3).contiguous()
    elif path.is_dir():
        files = sorted(path.glob("*.gif"))
        if not files:
            raise DataError(f"no GIFs in {path}", "give `aigc sample RUN --out DIR` output")
        read = [read_gif(f, w, c)[0] for f in files]
        short = [f.name for f, x in zip(files, read, strict=True) if len(x) < t]
        if short:
            raise DataError(f"{short[0]} in {path} has fewer than {t} frames", "give clips of the data's length")
        clips = torch.stack([torch.from_numpy(x[:t]) for x in read])
        named = [re.fullmatch(r"\d+-(.+)", f.stem) for f in files]
        labels = [m.group(1) for m in named] if all(named) else None
        safe = {safe_name(s): s for s in names}
        labels = None if labels is None else [safe.get(lb, lb) for lb in labels]
    else:
        raise DataError(f"{path} is neither an .npz of clips nor a folder of GIFs",
                        "give `aigc sample RUN --out DIR` (GIFs) or `--format npz` output")
    keep = samples_kept(path, len(clips), n)
    return clips[:keep], asked_labels(labels, names, keep)


def evaluate_video_samples(path: Path, data: Dataset, request: Any) -> dict[str, Any]:
    clips, asked = read_video_samples(path, data, request.n)
    request.echo(f"read {len(clips)} clips from {path}")
    return evaluate_clips(clips, asked, data, request, "samples", samples=str(path))


def summary(result: dict[str, Any]) -> dict[str, float]:
    """{metric: value} of a result's sections (and `floor_` + metric for its floor)."""
    out = {k: v for s in result["sections"] for k, v in s["values"].items()}
    for s in (result.get("floor") or {}).get("sections", []):
        out.update({f"floor_{k}": v for k, v in s["values"].items()})
    return out

