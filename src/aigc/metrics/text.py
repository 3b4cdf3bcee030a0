"""Text metrics: held-out NLL (nats and bits per character, perplexity), novelty, distinct-n, length gap."""
from __future__ import annotations

import math
from typing import Any

import torch
from scipy.stats import ks_2samp, wasserstein_distance

from ..data.text import PAD, Vocab, decode_rows


@torch.no_grad()
def nll_per_char(model: Any, x: torch.Tensor, batch_size: int = 512) -> tuple[float, int]:
    """Mean negative log-likelihood in nats per predicted character (end tokens included) and the count."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(x), batch_size):
        rows = x[i:i + batch_size]
        total -= float(model.log_likelihood({"x": rows}).double().sum())
        count += int((rows[:, 1:] != PAD).sum())
    model.train(was_training)
    return (total / count if count else math.nan), count


def decode_split(x: torch.Tensor, meta: dict[str, Any]) -> list[str]:
    """Rows of ids back to strings (the inverse of aigc.data.text.encode_rows)."""
    return decode_rows(x, Vocab.from_meta(meta), meta.get("kind", "lines"), skip=1)


def distinct_n(samples: list[str], n: int) -> float:
    """Distinct character n-grams over all n-grams in all samples (Li et al. 2016, on characters)."""
    grams = [s[i:i + n] for s in samples for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def novelty(samples: list[str], train: list[str], kind: str = "lines") -> float:
    """Share of samples not in the training data (lines: as a whole line; text: as a substring)."""
    if not samples:
        return math.nan
    if kind == "lines":
        seen = set(train)
        return sum(s not in seen for s in samples) / len(samples)
    corpus = "\x00".join(train)
    return sum(s not in corpus for s in samples) / len(samples)


def length_gap(generated: list[str], real: list[str]) -> dict[str, float]:
    """How far generated lengths are from real ones: Wasserstein-1 (characters) and the KS statistic."""
    g, r = [len(s) for s in generated], [len(s) for s in real]
    if not g or not r:
        return {}
    return {"length_mean_generated": sum(g) / len(g), "length_mean_real": sum(r) / len(r),
            "length_w1": float(wasserstein_distance(g, r)), "length_ks": float(ks_2samp(g, r).statistic)}


def evaluate_text_run(loaded: Any, data: Any, n: int = 1000, *, seed: int = 0, split: str = "test",
                      **sample_options: Any) -> dict[str, Any]:
    """All text metrics for a trained run (an aigc.load result or a bare model) on its Dataset.

    NLL on `split` (test by default); n samples (seed, plus any sampling options such as
    temperature) for novelty against the training split, distinct-1/2/3 and the length gap (line
    data only: see sample_metrics).
    """
    model = getattr(loaded, "model", loaded)
    nats, count = nll_per_char(model, data.split(split)["x"])
    out: dict[str, Any] = {"nll": nats, "bpc": nats / math.log(2), "perplexity": math.exp(nats),
                           "tokens": count}
    g = torch.Generator().manual_seed(seed)
    out.update(sample_metrics(model.sample(n, generator=g, **sample_options), data, split))
    return out


STREAM_NOTE = ("novelty and distinct-n left out: for a text: source a sample is a stretch of one continuous "
               "text cut at an arbitrary length, not a whole item, so novelty (the stretch is not found in "
               "the training text) is near 1 for any stretch of a few words and distinct-n follows the "
               "cut length; neither means anything here")


def sample_metrics(samples: list[str], data: Any, split: str = "test") -> dict[str, Any]:
    """What samples alone tell: for line data, novelty against the training split, distinct-1/2/3
    and the length gap to `split`. For a continuous text (`text:`) none of these means anything
    (STREAM_NOTE): they are left out and `note` says so."""
    meta = data.meta
    kind = meta.get("kind", "lines")
    out: dict[str, Any] = {}
    if kind == "lines":
        out["novelty"] = novelty(samples, decode_split(data.train["x"], meta), kind)
        for k in (1, 2, 3):
            out[f"distinct_{k}"] = distinct_n(samples, k)
        out.update(length_gap(samples, decode_split(data.split(split)["x"], meta)))
    else:
        out["note"] = STREAM_NOTE
    out["samples"] = len(samples)
    return out


def evaluate_text_samples(path: Any, data: Any, n: int | None = None, split: str = "test") -> dict[str, float]:
    """Samples made elsewhere (a UTF-8 .txt, one sample a line) against a text source.

    The metrics that need only samples: novelty against the training split, distinct-1/2/3 and,
    for line data, the length gap to `split`. No likelihood: that needs the model.
    """
    from ..data.text import read_utf8
    from ..errors import ConfigError, DataError
    from ..limits import MAX_TEXT_SAMPLES

    samples = [line for line in read_utf8(path, "samples").splitlines() if line]
    if n is not None:
        if n > len(samples):
            raise ConfigError(f"--n is {n:,} but {path} holds {len(samples):,} samples", f"use --n {len(samples)} or fewer")
        samples = samples[:n]
    if not samples:
        raise DataError(f"{path} holds no samples", "write one sample a line")
    if len(samples) > MAX_TEXT_SAMPLES:
        raise DataError(f"{path} holds {len(samples):,} samples", f"evaluate at most {MAX_TEXT_SAMPLES:,} (use --n)")
    return {"samples_file": str(path), **sample_metrics(samples, data, split)}
