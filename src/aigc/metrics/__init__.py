"""Measuring generators offline: quality, diversity and memorization, dispatched on the modality.

Three tables, one entry per modality:
- `EVALUATORS[m](loaded, data, n, *, seed, split, **options)` measures a trained run (`aigc eval RUN`);
- `REAL_EVALUATORS[m](data, n, *, seed, **options)` gives the real-data floor (`aigc eval --real`);
- `TRAINING_EVALUATORS[m](cfg, data, echo)` builds the cheap evaluator the trainer calls every
  `train.eval_every` steps (first key: lower is better, marks checkpoints/best.json).
An evaluator receives only the options it names as parameters (see `call_evaluator`).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.base import Dataset, cache_dir, fingerprint
from ..errors import ConfigError, refuse_unknown_options
from ..files import atomic_write_text
from .image_eval import IMAGE_SECTIONS, ImageEvalContext, Section, run_sections
from .likelihood import likelihood_section  # noqa: F401  (registers the "likelihood" section)
from .text import evaluate_text_run

DEFAULT_N = 10_000  # generated vs test images, as Lucic et al. 2018


@dataclass
class EvalOptions:
    """What `aigc eval` asks for; every evaluator reads the fields it understands."""

    n: int = DEFAULT_N
    metrics: list[str] | None = None      # section names; None: all that apply
    seed: int = 0
    split: str = "test"                   # the real split generated images are compared with
    out_dir: Path | None = None           # where figures go (closest pairs)
    inception_weights: str | None = None
    floor: bool = True                    # also compute (or reuse) the real-data floor
    iwae_k: list[int] | None = None       # likelihood section (families with a likelihood): bounds' k
    likelihood_n: int | None = None       # test images for those bounds
    echo: Callable[[str], None] = print


def _quantize(images: torch.Tensor) -> torch.Tensor:
    """float [0, 1] -> uint8, as saving a PNG would: generated and real images meet on equal terms."""
    return images.clamp(0, 1).mul(255).round().to(torch.uint8)


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


def _result(kind: str, data: Dataset, ctx: ImageEvalContext, sections: list[Section], n: int,
            seconds: float, **facts: Any) -> dict[str, Any]:
    return {"kind": kind, "modality": "image", "data": data.meta.get("source", data.name), "n": n,
            "against": ctx.against, "features": ctx.feats.info, "seed": ctx.seed, **facts,
            "sections": [s.to_dict() for s in sections], "seconds": round(seconds, 1)}


def evaluate_image_real(data: Dataset, n: int = DEFAULT_N, *, seed: int = 0, metrics: list[str] | None = None,
                        out_dir: Path | None = None, inception_weights: str | None = None,
                        echo: Callable[[str], None] = print) -> dict[str, Any]:
    """The floor: the same metrics for n real training images against n test images."""
    from .features import data_fingerprint, feature_net_for

    opts = EvalOptions(n=n, metrics=metrics, seed=seed, out_dir=out_dir, inception_weights=inception_weights,
                       echo=echo)

    _check_metrics(opts.metrics)
    tic = time.perf_counter()
    feats = feature_net_for(data, echo=opts.echo)
    ref, split = _reference(data, opts.n, opts.echo)
    if split == "train":
        from ..errors import DataError

        raise DataError(f"{data.name} has no test split, so it has no real-data floor",
                        "set data.test_fraction above 0 for sources without one")
    weights = Path(opts.inception_weights) if opts.inception_weights else None
    stamp = [str(weights.resolve()), weights.stat().st_size, weights.stat().st_mtime_ns] if weights else None
    key = fingerprint("floor", data_fingerprint(data), feats.name, opts.n, opts.seed, opts.metrics, stamp)
    path = cache_dir() / "floors" / f"{key}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            pass
    g = torch.Generator().manual_seed(opts.seed)
    pick = torch.randperm(len(data), generator=g)[:opts.n]
    ctx = ImageEvalContext(data, feats, data.train["x"][pick], ref, split, real=True,
                           out_dir=opts.out_dir, seed=opts.seed, echo=opts.echo,
                           options={"inception_weights": opts.inception_weights})
    sections = run_sections(ctx, opts.metrics)
    result = _result("real", data, ctx, sections, len(pick), time.perf_counter() - tic,
                     samples="real training images")
    try:  # a cache: one that cannot be written is skipped, and a reader never sees half of it
        atomic_write_text(path, json.dumps(result, indent=1))
    except OSError:
        pass
    return result


def evaluate_image_run(loaded: Any, data: Dataset, n: int = DEFAULT_N, *, seed: int = 0, split: str = "test",
                       metrics: list[str] | None = None, out_dir: Path | None = None,
                       inception_weights: str | None = None, floor: bool = True,
                       iwae_k: list[int] | None = None, likelihood_n: int | None = None,
                       echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Sample n images from a loaded run and measure them against n real `split` images (plus the floor)."""
    from .features import feature_net_for

    opts = EvalOptions(n=n, metrics=metrics, seed=seed, split=split, out_dir=out_dir,
                       inception_weights=inception_weights, floor=floor, iwae_k=iwae_k,
                       likelihood_n=likelihood_n, echo=echo)
    _check_metrics(opts.metrics)
    tic = time.perf_counter()
    feats = feature_net_for(data, echo=opts.echo)
    ref, split = _reference(data, opts.n, opts.echo, opts.split)
    labels = None
    kwargs: dict[str, Any] = {}
    if getattr(loaded.model.cfg, "conditional", False) and loaded.class_names:
        k = len(loaded.class_names)
        labels = torch.arange(opts.n) % k
        kwargs["labels"] = list(range(k))  # cycled over the n samples: an equal share per class
    opts.echo(f"sampling {opts.n} images from {loaded.run_dir} ({loaded.checkpoint.name})")
    samples = _quantize(loaded.sample(opts.n, seed=opts.seed, **kwargs))
    ctx = ImageEvalContext(data, feats, samples, ref, split, labels=labels, model=loaded.model,
                           out_dir=opts.out_dir, seed=opts.seed, echo=opts.echo,
                           options={"inception_weights": opts.inception_weights, "iwae_k": opts.iwae_k,
                                    "likelihood_n": opts.likelihood_n})
    sections = run_sections(ctx, opts.metrics)
    result = _result("run", data, ctx, sections, opts.n, time.perf_counter() - tic,
                     run=str(loaded.run_dir), checkpoint=loaded.checkpoint.name, samples="generated")
    if opts.floor and split == "test":
        result["floor"] = evaluate_image_real(data, opts.n, metrics=opts.metrics, seed=opts.seed,
                                              out_dir=opts.out_dir, inception_weights=opts.inception_weights,
                                              echo=opts.echo)
    return result


def image_training_evaluator(cfg: Any, data: Dataset, echo: Callable[[str], None] = print
                             ) -> Callable[[Any, Dataset], dict[str, float]]:
    """FID (first key: lower is better, marks best.json) and KID on `train.eval_n` samples."""
    from . import image as M
    from .features import feature_net_for

    feats = feature_net_for(data, echo=echo)
    n = cfg.train.eval_n
    ref, _ = _reference(data, max(n, 2), echo)
    ref_feats = feats(ref)[0]
    ref_stats = M.feature_stats(ref_feats)
    size = min(1000, n, len(ref))

    def evaluate(model: Any, _data: Dataset) -> dict[str, float]:
        g = torch.Generator().manual_seed(cfg.seed + 777)  # the same noise at every evaluation
        f = feats(_quantize(model.sample(n, generator=g)))[0]
        kid_mean, _ = M.kid(f, ref_feats, subsets=10, subset_size=size, seed=cfg.seed)
        return {"fid": M.frechet_distance(*M.feature_stats(f), *ref_stats), "kid": kid_mean}

    return evaluate


EVALUATORS: dict[str, Callable[..., dict[str, Any]]] = {"image": evaluate_image_run, "text": evaluate_text_run}
REAL_EVALUATORS: dict[str, Callable[..., dict[str, Any]]] = {"image": evaluate_image_real}
TRAINING_EVALUATORS: dict[str, Callable[..., Callable[[Any, Dataset], dict[str, float]]]] = {
    "image": image_training_evaluator}
FLAGS = {"metrics": "--metrics", "inception_weights": "--inception-weights", "floor": "--no-floor"}


def call_evaluator(fn: Callable[..., dict[str, Any]], what: str, *args: Any, context: dict[str, Any],
                   options: dict[str, Any], **common: Any) -> dict[str, Any]:
    """Call fn with the common arguments, the context it names (out_dir, echo) and the user's options.

    An option the evaluator does not name is a mistake of the user's, said in one line.
    """
    names = refuse_unknown_options(fn, options, what, FLAGS)
    kwargs = {k: v for k, v in {**common, **context}.items() if k in names and v is not None}
    return fn(*args, **kwargs, **options)


def evaluate_run(run_dir: str | Path, *, checkpoint: str = "latest", n: int | None = None, seed: int = 0,
                 split: str = "test", out_dir: Path | None = None, echo: Callable[[str], None] = print,
                 **options: Any) -> dict[str, Any]:
    """Evaluate a run directory with the evaluator of its model's modality.

    Image runs give {"kind", "sections": [...], "floor": {...}, ...}; other modalities may give a
    flat dict of scores (then "checkpoint" is added to it).
    """
    from ..api import load
    from ..data import load_dataset

    if n is not None and n < 2:
        raise ConfigError(f"--n is {n}", "evaluate at least 2 samples (10000 is the standard for images)")
    loaded = load(run_dir, checkpoint)
    if loaded.modality not in EVALUATORS:
        raise ConfigError(f"no evaluation for {loaded.modality} runs yet", f"evaluable: {', '.join(EVALUATORS)}")
    data = load_dataset(loaded.config.data)
    result = call_evaluator(EVALUATORS[loaded.modality], f"{loaded.modality} runs", loaded, data,
                            context={"out_dir": out_dir, "echo": echo}, options=options,
                            n=n, seed=seed, split=split)
    return result if "sections" in result else {"checkpoint": loaded.checkpoint.name, **result}


def evaluate_real(source: str | Dataset, *, n: int | None = None, seed: int = 0, out_dir: Path | None = None,
                  echo: Callable[[str], None] = print, **options: Any) -> dict[str, Any]:
    """The real-data floor of a dataset (training split measured against the test split)."""
    from ..config import DataConfig
    from ..data import load_dataset

    if n is not None and n < 2:
        raise ConfigError(f"--n is {n}", "evaluate at least 2 items (10000 is the standard for images)")
    data = source if isinstance(source, Dataset) else load_dataset(DataConfig(source=source))
    if data.modality not in REAL_EVALUATORS:
        raise ConfigError(f"no real-data floor for {data.modality} data yet",
                          f"known: {', '.join(REAL_EVALUATORS)}")
    return call_evaluator(REAL_EVALUATORS[data.modality], f"{data.modality} data", data,
                          context={"out_dir": out_dir, "echo": echo}, options=options, n=n, seed=seed)


def training_evaluator(cfg: Any, data: Dataset, echo: Callable[[str], None] = print
                       ) -> Callable[[Any, Dataset], dict[str, float]] | None:
    """The cheap evaluator for the trainer, or None where the data's modality has none."""
    build = TRAINING_EVALUATORS.get(data.modality)
    return build(cfg, data, echo) if build else None


__all__ = ["DEFAULT_N", "EVALUATORS", "IMAGE_SECTIONS", "REAL_EVALUATORS", "TRAINING_EVALUATORS",
           "EvalOptions", "Section", "evaluate_image_run", "evaluate_real", "evaluate_run", "evaluate_text_run",
           "training_evaluator"]
