"""Evaluating image generators: a context of features computed once, and a table of result sections.

Each section is a function `(ctx) -> Section | None` registered with `@image_section("name")`; it
returns None where it does not apply (e.g. `conditional` for an unconditional model). Another
module adds a section the same way (a likelihood section for families that have one), and
`--metrics` selects among the names in `IMAGE_SECTIONS`.
"""
from __future__ import annotations

import functools
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

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "values": self.values, "n": self.n, "against": self.against,
                "features": self.features, "note": self.note, "files": self.files}


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

@image_section("fid")
def fid_section(ctx: ImageEvalContext) -> Section:
    return ctx.section("fid", {"fid": M.fid(ctx.sample_feats, ctx.ref_feats)})


@image_section("kid")
def kid_section(ctx: ImageEvalContext) -> Section:
    size = min(1000, len(ctx.samples), len(ctx.reference))
    mean, std = M.kid(ctx.sample_feats, ctx.ref_feats, subset_size=size, seed=ctx.seed)
    return ctx.section("kid", {"kid": mean, "kid_std": std}, note=f"100 subsets of {size}, cubic kernel")


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
    return ctx.section("prdc", M.prdc(ctx.ref_feats, ctx.sample_feats, k_pr=3, k_dc=5),
                       note="precision/recall k=3 (Kynkaanniemi 2019), density/coverage k=5 (Naeem 2020)")


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
        path = save_pairs_png(images[top], ctx.data.train["x"][mem.sample_index[top]],
                              ctx.out_dir / ("closest-pairs-real" if ctx.real else "closest-pairs"))
        files.append(str(path))
    return ctx.section("memorization", mem.values(), n=len(queries),
                       against=f"train split ({len(ctx.train_feats)} images); baseline {len(heldout)} "
                               f"{ctx.ref_split} images",
                       note=f"{what}; copy = nearest-training distance below the {mem.quantile:.0%} "
                            "quantile of the baseline's", files=files)


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
