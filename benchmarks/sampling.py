"""Sampling speed: images/s of the GAN generators, tokens/s of the Transformer with and without its cache."""
from __future__ import annotations

import importlib.util
import inspect
import time
from pathlib import Path
from typing import Any

import torch

from aigc.config import load_config
from aigc.models.base import build_model

from .timing import interleaved

IMAGE_META = {"shape": [1, 28, 28], "num_classes": 10, "class_names": [str(i) for i in range(10)]}


def image_sampling(recipes: list[str], batches: list[int], repeats: int, threads: int,
                   min_images: int = 256) -> dict[str, Any]:
    """model.sample(b) (EMA generator, eval mode) at each batch size; the weights do not matter for speed."""
    contenders = {}
    for recipe in recipes:
        model = build_model(load_config(recipe).model, IMAGE_META).eval()
        for b in batches:
            calls = max(1, min_images // b)  # enough work per repeat that the timer's resolution does not matter
            g = torch.Generator().manual_seed(0)

            def run(model=model, b=b, calls=calls, g=g) -> None:
                for _ in range(calls):
                    model.sample(b, generator=g)

            contenders[f"{recipe}|{b}"] = (run, calls * b)
    torch.set_num_threads(threads)
    times = interleaved(contenders, repeats, warmup=1)
    rows = []
    for key, t in times.items():
        recipe, b = key.split("|")
        rows.append({"recipe": recipe, "batch": int(b), "images_per_s": t.rate, "range": t.spread})
    return {"rows": rows}


def _find(params: list[str], *words: str) -> str | None:
    for w in words:
        for p in params:
            if w in p:
                return p
    return None


def text_sampling(workdir: Path, new_tokens: list[int], repeats: int, threads: int) -> dict[str, Any]:
    """Tokens/s of the Transformer's sampler with and without the KV cache (when the text family exists)."""
    if importlib.util.find_spec("aigc.models.transformer") is None:
        return {"skipped": "needs aigc.models.transformer (the text issue); rerun after it lands"}
    import aigc
    from aigc.train import train

    try:
        cfg = load_config("names-transformer", ["train.steps=1", "train.progress=false", "train.sample_every=0",
                                                f"train.threads={threads}"])
        train(cfg, workdir / "text-run", echo=lambda m: None)
        model = aigc.load(workdir / "text-run").model
    except Exception as e:  # the text family's API is young: report, do not crash the benchmark
        return {"skipped": f"could not build a names-transformer run: {type(e).__name__}: {e}"}
    params = list(inspect.signature(model.sample).parameters)
    length, cache = _find(params, "max_new", "new_tokens", "max_len", "length"), _find(params, "cache")
    if length is None or cache is None:
        return {"skipped": f"sample{inspect.signature(model.sample)} has no length or cache option to time"}
    rows = []
    for n_new in new_tokens:
        contenders = {}
        for cached in (True, False):
            def run(cached=cached, n_new=n_new) -> None:
                model.sample(1, **{length: n_new, cache: cached}, generator=torch.Generator().manual_seed(0))
            contenders["cached" if cached else "uncached"] = (run, n_new)
        torch.set_num_threads(threads)
        tic = time.perf_counter()
        times = interleaved(contenders, repeats, warmup=1)
        rows.append({"new_tokens": n_new, "cached": times["cached"].rate, "uncached": times["uncached"].rate,
                     "speedup": times["cached"].rate / times["uncached"].rate,
                     "seconds": time.perf_counter() - tic})
    note = (f"timed model.sample(1, {length}=N, {cache}=True/False); tokens/s counts N requested tokens "
            "(a sampler that stops early at an end token makes both rates optimistic alike)")
    return {"rows": rows, "note": note}
