"""Sampling speed: images/s of the GAN generators, tokens/s of the Transformer with and without its cache."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from aigc.config import load_config
from aigc.run import build_model

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


TEXT_BATCHES = (1, 64)  # one user asking for one text; `aigc sample --n 64`


def text_sampling(workdir: Path, new_tokens: list[int], repeats: int, threads: int) -> dict[str, Any]:
    """Tokens/s of the Transformer's sampler with and without the KV cache.

    The model is names-transformer's (4 layers, 4 heads, 64 wide) over a-z, built for continuous
    text (no end token, so every row really generates N tokens) with a context that holds them all.
    Untrained weights: speed does not depend on what the weights say.
    """

    section = {k: v for k, v in load_config("names-transformer").model.items()}
    meta = {"kind": "text", "block_size": max(new_tokens) + 8, "vocab": list("abcdefghijklmnopqrstuvwxyz")}
    torch.manual_seed(0)
    model = build_model(section, meta).eval()
    rows = []
    for batch in TEXT_BATCHES:
        for n_new in new_tokens:
            contenders = {}
            for cached in (True, False):
                def run(cached=cached, n_new=n_new, batch=batch) -> None:
                    model.generate([model.vocab.encode("a")[0]], batch, n_new, cache=cached,
                                   generator=torch.Generator().manual_seed(0))
                contenders["cached" if cached else "uncached"] = (run, n_new * batch)
            torch.set_num_threads(threads)
            tic = time.perf_counter()
            times = interleaved(contenders, repeats, warmup=1)
            rows.append({"batch": batch, "new_tokens": n_new, "cached": times["cached"].rate,
                         "uncached": times["uncached"].rate, "speedup": times["cached"].rate / times["uncached"].rate,
                         "seconds": time.perf_counter() - tic})
    note = ("timed model.generate(prefix, batch, N, cache=True/False) of the names-transformer architecture "
            f"({sum(p.numel() for p in model.parameters()):,} parameters), context {meta['block_size']}; "
            "tokens/s counts every row's tokens; uncached recomputes the whole prefix for every new token "
            "(causal attention, no cache allocated)")
    return {"rows": rows, "note": note}
