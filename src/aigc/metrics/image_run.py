"""Evaluating an image run or an image dataset's real-data floor (the image modality's evaluator)."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..data.base import Dataset, cache_dir, fingerprint
from ..files import atomic_write_text
from ..models.capabilities import is_conditional
from ..pixels import quantize
from .image import HALF_SAMPLES
from .image_eval import IMAGE_SECTIONS, ImageEvalContext, Section, run_sections
from .likelihood import likelihood_section  # noqa: F401  (registers the "likelihood" section)
from .request import EvalRequest

DEFAULT_N = 10_000  # generated vs test images, as Lucic et al. 2018


def _check_metrics(names: list[str] | None) -> None:
    for name in names or []:
        IMAGE_SECTIONS.get(name)  # an unknown name is a one-line error with the closest spelling


def _reference(data: Dataset, n: int, echo: Callable[[str], None], split: str = "test"
               ) -> tuple[torch.Tensor, str]:
    if split != "test" or (data.test is not None and len(data.test["x"]) >= 2):
        x = data.split(split)["x"]
    else:
        x, split = data.train["x"], "train"
        echo(f"note: {data.name} has no test split; comparing against its training split")
    return x[:n], split


def _options(request: EvalRequest, **more: Any) -> dict[str, Any]:
    """What the sections read from the request."""
    return {"inception_weights": request.inception_weights, "name": request.name,
            "intervals": HALF_SAMPLES if request.intervals is None else request.intervals, **more}


def _result(kind: str, data: Dataset, ctx: ImageEvalContext, sections: list[Section], n: int,
            seconds: float, **facts: Any) -> dict[str, Any]:
    return {"kind": kind, "modality": "image", "data": data.meta.get("source", data.name), "n": n,
            "n_real": len(ctx.reference), "ref_split": ctx.ref_split, "intervals": ctx.options.get("intervals", 0),
            "against": ctx.against, "features": ctx.feats.info, "seed": ctx.seed, **facts,
            "sections": [s.to_dict() for s in sections], "seconds": round(seconds, 1)}


def evaluate_image_real(data: Dataset, request: EvalRequest) -> dict[str, Any]:
    """The floor: the same metrics for n real training images against n test images."""
    from .features import data_fingerprint, feature_net_for

    opts = request
    n = opts.n_or(DEFAULT_N)
    _check_metrics(opts.metrics)
    tic = time.perf_counter()
    feats = feature_net_for(data, echo=opts.echo)
    ref, split = _reference(data, n, opts.echo)
    if split == "train":
        from ..errors import DataError

        raise DataError(f"{data.name} has no test split, so it has no real-data floor",
                        "set data.test_fraction above 0 for sources without one")
    weights = Path(opts.inception_weights) if opts.inception_weights else None
    stamp = [str(weights.resolve()), weights.stat().st_size, weights.stat().st_mtime_ns] if weights else None
    options = _options(opts)
    key = fingerprint("floor", data_fingerprint(data), feats.name, n, opts.seed, opts.metrics, stamp,
                      options["intervals"], opts.name)
    path = cache_dir() / "floors" / f"{key}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            pass
    g = torch.Generator().manual_seed(opts.seed)
    pick = torch.randperm(len(data), generator=g)[:n]
    ctx = ImageEvalContext(data, feats, data.train["x"][pick], ref, split, real=True,
                           out_dir=opts.out_dir, seed=opts.seed, echo=opts.echo, options=options)
    sections = run_sections(ctx, opts.metrics)
    result = _result("real", data, ctx, sections, len(pick), time.perf_counter() - tic,
                     samples="real training images")
    try:  # a cache: one that cannot be written is skipped, and a reader never sees half of it
        atomic_write_text(path, json.dumps(result, indent=1))
    except OSError:
        pass
    return result


def evaluate_image_run(loaded: Any, data: Dataset, request: EvalRequest) -> dict[str, Any]:
    """Sample n images from a loaded run and measure them against n real `split` images (plus the floor)."""
    n = request.n_or(DEFAULT_N)
    _check_metrics(request.metrics)
    tic = time.perf_counter()
    labels = None
    kwargs: dict[str, Any] = {}
    if is_conditional(loaded.model) and loaded.class_names:
        k = len(loaded.class_names)
        labels = torch.arange(n) % k
        kwargs["labels"] = list(range(k))  # cycled over the n samples: an equal share per class
    request.echo(f"sampling {n} images from {loaded.run_dir} ({loaded.checkpoint.name})")
    samples = quantize(loaded.sample(n, seed=request.seed, **kwargs))
    return evaluate_image_samples(samples, data, request, labels=labels, model=loaded.model, kind="run", tic=tic,
                                  run=str(loaded.run_dir), checkpoint=loaded.checkpoint.name, samples="generated")


def read_image_samples(path: Path, data: Dataset, n: int | None = None,
                       echo: Callable[[str], None] = print) -> torch.Tensor:
    """uint8 images [n, C, H, W] from a folder of images or an npz (`x`, as `aigc sample --out X.npz`
    writes), shaped like `data`'s images; all of them, or the first n."""
    from ..config import DataConfig
    from ..data import load_dataset
    from ..errors import ConfigError, DataError

    path = Path(path)
    if path.is_dir():
        source = f"folder:{path}"
    elif path.suffix.lower() == ".npz" and path.is_file():
        source = f"npz:{path}"
    else:
        raise DataError(f"--samples {path} is not a folder of images or an .npz file",
                        "give a folder of PNG/JPEG images or an npz of uint8 images (aigc sample --out X.npz)")
    from ..data.images import shape_images

    c, h, w = data.train["x"].shape[1:]
    got = load_dataset(DataConfig(source=source, test_fraction=0.0))
    x = got.train["x"] if got.test is None else torch.cat([got.train["x"], got.test["x"]])
    if tuple(x.shape[1:]) != (c, h, w):
        echo(f"note: the samples are {x.shape[3]}x{x.shape[2]}x{x.shape[1]}; shaped to the real images' "
             f"{w}x{h}x{c} as training data would be")
        x = shape_images(x, h, c)  # the data sources' own shaping (centre crop, area/bilinear resize)
    if n is not None and n > len(x):
        raise ConfigError(f"--n is {n:,} but {path} holds {len(x):,} images", f"use --n {len(x)} or fewer")
    if len(x) < 2:
        raise DataError(f"{path} holds {len(x)} image(s)", "evaluate at least 2 samples")
    return x[:n] if n is not None else x


def evaluate_image_samples(images: torch.Tensor, data: Dataset, request: EvalRequest, *,
                           labels: torch.Tensor | None = None, model: Any = None, kind: str = "samples",
                           tic: float | None = None, **facts: Any) -> dict[str, Any]:
    """Measure uint8 images [n, C, H, W] against as many real `split` images, with the floor if asked.

    Whatever made them (a run, another program, a folder of PNGs), they meet the same feature
    network, real images and metrics as a run's samples do.
    """
    from .features import feature_net_for

    opts = request
    _check_metrics(opts.metrics)
    tic = time.perf_counter() if tic is None else tic
    n = len(images)
    images = images.contiguous().view(images.shape)  # standard strides, so the features' kernels are the run's
    feats = feature_net_for(data, echo=opts.echo)
    ref, split = _reference(data, n, opts.echo, opts.split)
    ctx = ImageEvalContext(data, feats, images, ref, split, labels=labels, model=model,
                           out_dir=opts.out_dir, seed=opts.seed, echo=opts.echo,
                           options=_options(opts, iwae_k=opts.iwae_k, likelihood_n=opts.likelihood_n))
    sections = run_sections(ctx, opts.metrics)
    result = _result(kind, data, ctx, sections, n, time.perf_counter() - tic, **facts)
    if opts.floor and split == "test":
        result["floor"] = evaluate_image_real(data, EvalRequest(
            n=n, metrics=opts.metrics, seed=opts.seed, out_dir=opts.out_dir, name=opts.name,
            inception_weights=opts.inception_weights, intervals=opts.intervals, echo=opts.echo))
    return result


def image_training_evaluator(cfg: Any, data: Dataset, echo: Callable[[str], None] = print
                             ) -> Callable[[Any, Dataset], dict[str, float]]:
    """FID (first key: lower is better, marks best.json), KID and precision/recall on `train.eval_n`
    samples (a conditional model's cycle through its classes)."""
    from . import image as M
    from .features import feature_net_for
    from .image_eval import MIN_KNN

    feats = feature_net_for(data, echo=echo)
    n = cfg.train.eval_n
    ref, _ = _reference(data, max(n, 2), echo)
    ref_feats = feats(ref)[0]
    ref_stats = M.feature_stats(ref_feats)
    size = min(1000, n, len(ref))

    classes = list(range(len(data.meta.get("class_names") or [])))

    def evaluate(model: Any, _data: Dataset) -> dict[str, float]:
        g = torch.Generator().manual_seed(cfg.seed + 777)  # the same noise at every evaluation
        kwargs = {"labels": classes} if is_conditional(model) and classes else {}
        f = feats(quantize(model.sample(n, generator=g, **kwargs)))[0]
        kid_mean, _ = M.kid(f, ref_feats, subsets=10, subset_size=size, seed=cfg.seed)
        out = {"fid": M.frechet_distance(*M.feature_stats(f), *ref_stats), "kid": kid_mean}
        if min(len(f), len(ref_feats)) >= MIN_KNN:
            out["precision"], out["recall"] = M.precision_recall(ref_feats, f)
        return out

    return evaluate


