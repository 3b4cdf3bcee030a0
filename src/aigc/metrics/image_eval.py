"""Evaluating image generators: a context of features computed once, and a table of result sections.

Each section is a function `(ctx) -> Section | None` registered with `@image_section("name")`; it
returns None where it does not apply (e.g. `conditional` for an unconditional model). Another
module adds a section the same way (a likelihood section for families that have one), and
`--metrics` selects among the names in `IMAGE_SECTIONS`.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..data.base import Dataset, cache_dir
from ..files import atomic_write
from ..plugins import missing
from ..registry import Registry
from . import image as M
from .features import Features, data_fingerprint
from .memorization import closest_pairs, memorization, save_pairs_png


@dataclass
class Section:
    """One group of numbers, with what they were measured on."""

    name: str
    values: dict[str, float]
    n: int = 0                  # generated (or query) items measured
    against: str = ""           # the real split and its size
    features: str = ""          # the feature network
    note: str = ""
    files: list[str] = field(default_factory=list)
    intervals: dict[str, list[float]] = field(default_factory=dict)  # 95% [low, high] per value

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "values": self.values, "n": self.n, "against": self.against,
                "features": self.features, "note": self.note, "files": self.files, "intervals": self.intervals}


SectionFn = Callable[["ImageEvalContext"], "Section | None"]
IMAGE_SECTIONS = Registry("metric", missing=missing)  # `--metrics` names -> section functions, run in registration order


def image_section(name: str) -> Callable[[SectionFn], SectionFn]:
    """Register a section under `name` (sections run in registration order)."""
    return IMAGE_SECTIONS.register(name)


@dataclass
class ImageEvalContext:
    """What every section may need, each computed once on first use."""

    data: Dataset
    feats: Features
    samples: torch.Tensor               # uint8 [N, C, H, W]: generated images (or real ones for the floor)
    reference: torch.Tensor             # uint8 real images to compare against
    ref_split: str                      # "test" (or "train" where the data has no test split)
    labels: torch.Tensor | None = None  # requested class per sample (conditional models)
    model: Any = None                   # the GenerativeModel, None for the real-data floor
    real: bool = False                  # samples are real training images (the floor)
    out_dir: Path | None = None         # where sections may write figures
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    echo: Callable[[str], None] = print

    @property
    def against(self) -> str:
        return f"{self.ref_split} split ({len(self.reference)} real images)"

    def section(self, name: str, values: dict[str, float], **kw: Any) -> Section:
        return Section(name, values, kw.pop("n", len(self.samples)), kw.pop("against", self.against),
                       kw.pop("features", self.feats.name), **kw)

    def refused(self, name: str, why: str) -> Section:
        """A section the data cannot support: no numbers, and the reason in words."""
        return self.section(name, {}, note=f"not computed: {why}")

    def intervals(self, fn: Callable[[torch.Tensor, torch.Tensor], dict[str, float]], point: dict[str, float],
                  need: int = 2, bounds: dict[str, tuple[float, float]] | None = None) -> dict[str, list[float]]:
        """95% intervals of fn's values from half-samples of both feature sets (none when asked for
        none, or when a half would hold fewer than `need` items)."""
        reps = int(self.options.get("intervals") or 0)
        if reps < 2 or min(len(self.samples), len(self.reference)) // 2 < need:
            return {}
        out = M.half_sample_intervals(self.sample_feats, self.ref_feats, fn, point, reps=reps, seed=self.seed)
        for k, (lo, hi) in (bounds or {}).items():
            if k in out:
                out[k] = [max(out[k][0], lo), min(out[k][1], hi)]
        return out

    def file_name(self, stem: str) -> str:
        """A figure's file name, carrying the evaluation's name so a second eval never overwrites it."""
        prefix = self.options.get("name")
        return f"{prefix}-{stem}" if prefix else stem

    @functools.cached_property
    def _sample_out(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.feats(self.samples)

    @functools.cached_property
    def _ref_out(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.feats(self.reference)

    @property
    def sample_feats(self) -> torch.Tensor:
        return self._sample_out[0]

    @property
    def sample_logits(self) -> torch.Tensor | None:
        return self._sample_out[1]

    @property
    def ref_feats(self) -> torch.Tensor:
        return self._ref_out[0]

    @functools.cached_property
    def train_feats(self) -> torch.Tensor:
        return train_features(self.data, self.feats, self.echo)


def train_features(data: Dataset, feats: Features, echo: Callable[[str], None] = print) -> torch.Tensor:
    """Features of the whole training split, cached on disk by network and data fingerprint."""
    path = cache_dir() / "features" / f"{feats.name}-{data_fingerprint(data)}.safetensors"
    x = data.train["x"]
    try:
        cached = load_file(str(path))["feats"]
        if cached.shape[0] == len(x):
            return cached
    except (OSError, KeyError, RuntimeError, ValueError):
        pass
    echo(f"computing features of the {len(x)} training images (once; cached)")
    out = feats(x)[0]
    try:  # a cache: one that cannot be written (a full disk) is skipped
        atomic_write(path, lambda p: save_file({"feats": out.contiguous()}, str(p)))
    except OSError:
        pass
    return out


# ---------------------------------------------------------------- sections

MIN_KNN = 50         # k-NN precision/recall/density/coverage need this many items on each side
MIN_BASELINE = 50    # memorization needs this many held-out images to set its threshold
INTERVAL_NOTE = "95% intervals from half-samples of both sides (delete-half jackknife)"


@image_section("fid")
def fid_section(ctx: ImageEvalContext) -> Section:
    dim = ctx.sample_feats.shape[1]
    if min(len(ctx.samples), len(ctx.reference)) <= dim:
        return ctx.refused("fid", f"FID needs more images than the features' {dim} dimensions on each side "
                                  f"({len(ctx.samples)} generated, {len(ctx.reference)} real): with fewer its "
                                  "covariance is rank-deficient and the distance means little; read KID")
    point = {"fid": M.fid(ctx.sample_feats, ctx.ref_feats)}
    iv = ctx.intervals(lambda a, b: {"fid": M.fid(a, b)}, point, need=dim + 1, bounds={"fid": (0.0, math.inf)})
    short = ctx.options.get("intervals") and not iv
    return ctx.section("fid", point, intervals=iv, note=INTERVAL_NOTE if iv else (
        f"no interval: a half-sample would hold fewer than {dim + 1} images on a side" if short else ""))


@image_section("kid")
def kid_section(ctx: ImageEvalContext) -> Section:
    size = min(1000, len(ctx.samples), len(ctx.reference))
    mean, std = M.kid(ctx.sample_feats, ctx.ref_feats, subset_size=size, seed=ctx.seed)
    half = min(1000, len(ctx.samples) // 2, len(ctx.reference) // 2)
    subsets = max(10, min(100, 10_000 // max(half, 1)))  # small halves: more subsets, so their own noise stays small
    iv = ctx.intervals(lambda a, b: {"kid": M.kid(a, b, subsets=subsets, subset_size=half, seed=ctx.seed)[0]},
                       {"kid": mean})
    return ctx.section("kid", {"kid": mean, "kid_std": std}, intervals=iv,
                       note=f"100 subsets of {size}, cubic kernel" + (f"; {INTERVAL_NOTE}" if iv else ""))


@image_section("is")
def inception_score_section(ctx: ImageEvalContext) -> Section | None:
    if ctx.sample_logits is None:
        return None  # an autoencoder feature network has no classes
    mean, std = M.inception_score(ctx.sample_logits)
    k = ctx.feats.net.num_classes
    return ctx.section("is", {"is": mean, "is_std": std}, against="none (classifier's own classes)",
                       note=f"classifier Inception Score over 10 splits; maximum {k} (the class count)")


@image_section("prdc")
def prdc_section(ctx: ImageEvalContext) -> Section:
    if min(len(ctx.samples), len(ctx.reference)) < MIN_KNN:
        return ctx.refused("prdc", f"k-NN precision, recall, density and coverage need at least {MIN_KNN} images "
                                   f"on each side ({len(ctx.samples)} generated, {len(ctx.reference)} real): "
                                   "balls around a handful of points do not describe a distribution")
    point = M.prdc(ctx.ref_feats, ctx.sample_feats, k_pr=3, k_dc=5)
    unit = {k: (0.0, 1.0) for k in ("precision", "recall", "coverage")}
    iv = ctx.intervals(lambda a, b: M.prdc(b, a, k_pr=3, k_dc=5), point, need=MIN_KNN // 2,
                       bounds={**unit, "density": (0.0, math.inf)})
    return ctx.section("prdc", point, intervals=iv,
                       note="precision/recall k=3 (Kynkaanniemi 2019), density/coverage k=5 (Naeem 2020)"
                            + (f"; {INTERVAL_NOTE}" if iv else ""))


@image_section("conditional")
def conditional_section(ctx: ImageEvalContext) -> Section | None:
    if ctx.labels is None or ctx.sample_logits is None:
        return None
    names = list(ctx.feats.info.get("class_names") or [])
    if len(names) != ctx.sample_logits.shape[1] or names != list(ctx.data.meta.get("class_names") or []):
        return None  # the classifier does not know the model's classes
    hit = ctx.sample_logits.argmax(1) == ctx.labels
    values = {"label_accuracy": float(hit.double().mean())}
    for i, name in enumerate(names):
        mask = ctx.labels == i
        if mask.any():
            values[f"label_accuracy/{name}"] = float(hit[mask].double().mean())
    return ctx.section("conditional", values, against="the requested labels",
                       note="share of samples the feature classifier assigns to the requested class")


@image_section("memorization")
def memorization_section(ctx: ImageEvalContext) -> Section:
    if ctx.real:  # the floor: held-out images play the samples, the other half is the baseline
        queries, heldout = ctx.ref_feats[0::2], ctx.ref_feats[1::2]
        images = ctx.reference[0::2]
        what = "held-out test images (even half) vs the odd half as baseline"
    else:
        queries, heldout, images = ctx.sample_feats, ctx.ref_feats, ctx.samples
        what = "generated samples vs held-out real images as baseline"
    mem = memorization(queries, ctx.train_feats, heldout)
    files = []
    if ctx.out_dir is not None:
        top = closest_pairs(mem.sample_dist, 16)
        stem = ctx.file_name("closest-pairs-real" if ctx.real else "closest-pairs")
        path = save_pairs_png(images[top], ctx.data.train["x"][mem.sample_index[top]], ctx.out_dir / stem)
        files.append(str(path))
    against = f"train split ({len(ctx.train_feats)} images); baseline {len(heldout)} {ctx.ref_split} images"
    if len(heldout) < MIN_BASELINE:
        return ctx.section("memorization", {}, n=len(queries), against=against, files=files,
                           note=f"not computed: the share of copies needs at least {MIN_BASELINE} held-out images to "
                                f"set its threshold, and there are {len(heldout)}; the closest pairs are drawn")
    aside = f" ({mem.set_aside} held-out near-duplicates of training images set aside)" if mem.set_aside else ""
    return ctx.section("memorization", mem.values(), n=len(queries), against=against,
                       note=f"{what}; copy = nearer a training image than any baseline image is{aside}", files=files)


@image_section("inception-fid")
def inception_fid_section(ctx: ImageEvalContext) -> Section | None:
    weights = ctx.options.get("inception_weights")
    if not weights:
        return Section("inception-fid", {}, note="skipped: standard Inception FID needs "
                       "--inception-weights PATH (pytorch-fid's pt_inception-2015-12-05 weights as "
                       "safetensors); "
                       "not computed, never faked")
    from .inception import InceptionFeatures

    net = InceptionFeatures(weights)
    value = M.fid(net(ctx.samples), net(ctx.reference))
    return ctx.section("inception-fid", {"inception_fid": value}, features=net.name,
                       note="2048-d pool3 features of the FID Inception-v3, images resized to 299")


def run_sections(ctx: ImageEvalContext, names: list[str] | None = None) -> list[Section]:
    """Run the selected sections (all by default) in registration order."""
    out = []
    for name, fn in IMAGE_SECTIONS.items():
        if names is not None and name not in names:
            continue
        section = fn(ctx)
        if section is not None:
            out.append(section)
    return out
