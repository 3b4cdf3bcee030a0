"""Test-set likelihoods of latent-variable models: ELBO and IWAE bounds, nats/image and bits/dim.

A model takes part by declaring aigc.models.capabilities.LatentLikelihood: `target(x_uint8, generator)`,
`log_weights(target, y, k, chunk=, generator=)` (log p(x, z) - log q(z|x) for k draws, [B, k]),
`dims`, `binary` and `likelihood_name`; a Conditional one is given the items' labels.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..errors import ConfigError
from ..models.capabilities import DensityLikelihood, LatentLikelihood, is_conditional
from .image_eval import ImageEvalContext, Section, image_section

TEST_BINARIZATION_SEED = 0  # binarized test sets: torch.bernoulli(x / 255) under Generator(seed 0)
LOG2 = math.log(2.0)

# Published figures for binarized data, so a run's number has a yardstick (say the data differs).
LITERATURE = [
    {"model": "VAE, 1 stochastic layer (50 z), k=5000", "data": "binarized MNIST", "nats": 86.76,
     "source": "Burda, Grosse & Salakhutdinov 2016, Importance Weighted Autoencoders, Table 1"},
    {"model": "IWAE, 1 stochastic layer (50 z), k=5000", "data": "binarized MNIST", "nats": 85.54,
     "source": "Burda, Grosse & Salakhutdinov 2016, Importance Weighted Autoencoders, Table 1"},
]


DEFAULT_EVAL_KS = (1, 100)   # `aigc eval`: ELBO and IWAE_100; --iwae-k asks for more (up to 5000)
DEFAULT_EVAL_N = 1000         # held-out images for those bounds (--likelihood-n)
DEFAULT_DENSITY_N = 64        # flows: held-out images through the likelihood ODE (each costs 2 x ODE_STEPS
ODE_STEPS = 32                #   forward and backward passes of the network; --likelihood-n asks for more)


def has_likelihood(model: Any) -> bool:
    """Whether `aigc eval` can report ELBO / IWAE for this model."""
    return isinstance(model, LatentLikelihood)


def density_report(model: DensityLikelihood, test_x: torch.Tensor, test_y: torch.Tensor | None = None, *,
                   n_images: int = DEFAULT_DENSITY_N, batch: int = 64, steps: int = ODE_STEPS, seed: int = 0,
                   echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Negative log-likelihood of uint8 test images under a continuous density (a flow's ODE), on the
    8-bit scale through uniform dequantization, as rows shaped like `likelihood_report`'s."""
    n = min(n_images, len(test_x))
    if n == 0:
        raise ConfigError("the test split is empty", "use data with a test split")
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    y = test_y[:n] if (test_y is not None and is_conditional(model)) else None
    parts, tic = [], time.perf_counter()
    for s in range(0, n, batch):
        parts.append(model.dequantized_log_likelihood(test_x[s:s + batch], None if y is None else y[s:s + batch],
                                                      steps=steps, generator=g))
        if echo:
            echo(f"likelihood: {min(s + batch, n)}/{n} images through the ODE, {time.perf_counter() - tic:.0f} s")
    model.train(was_training)
    nll = -torch.cat(parts).double()
    mean = float(nll.mean())
    se = float(nll.std() / math.sqrt(n)) if n > 1 else float("nan")
    return {"likelihood": f"8-bit pixels, uniformly dequantized; probability-flow ODE, Heun {steps} steps, "
                          "one Hutchinson probe per step",
            "test_images": n, "dims": int(model.dims), "seconds": round(time.perf_counter() - tic, 1), "seed": seed,
            "rows": [{"k": 0, "bound": "ODE, dequantized", "nll_nats": mean, "stderr_nats": se,
                      "bits_per_dim": bits_per_dim(mean, model.dims)}]}


def bits_per_dim(nats_per_image: float, dims: int) -> float:
    """Negative log-likelihood in nats per image -> bits per pixel value."""
    return nats_per_image / (dims * LOG2)


def bounds(log_w: torch.Tensor, ks: Sequence[int]) -> dict[int, torch.Tensor]:
    """Per-image IWAE_k estimates from one [B, K] block of log weights (k <= K; k=1: the ELBO).

    IWAE_k uses the first k draws: log (1/k) sum_i w_i. For k=1 it averages the K single-draw
    ELBOs instead, the same expectation with less noise.
    """
    out = {}
    for k in ks:
        if k == 1:
            out[k] = log_w.mean(1)
        else:
            out[k] = torch.logsumexp(log_w[:, :k], 1) - math.log(k)
    return out


@torch.no_grad()
def likelihood_report(model: Any, test_x: torch.Tensor, test_y: torch.Tensor | None = None, *,
                      ks: Sequence[int] = (1, 100, 1000, 5000), n_images: int | None = 1000,
                      batch: int = 100, chunk: int = 1024, seed: int = 0,
                      echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """ELBO and IWAE_k bounds of `model` on uint8 test images, as a JSON-able dict.

    All k use the first `n_images` test images (None: all) and the same draws (IWAE_k reads the
    first k of max(ks) per image). Images are binarized once with TEST_BINARIZATION_SEED when
    the model's likelihood is over binary pixels, so every model meets the same test set.
    Negative log-likelihoods are reported: lower is better; IWAE_k rises toward log p(x) with k.
    """
    if not has_likelihood(model):
        raise ConfigError(f"{type(model).__name__} has no likelihood", "ELBO/IWAE apply to VAE runs")
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ConfigError(f"importance samples k={ks}", "use whole numbers of at least 1, e.g. 1 100 1000")
    if test_x.dim() != 4 or test_x.dtype != torch.uint8:
        raise ConfigError("likelihood_report needs uint8 images [N, C, H, W]", "pass the test split's x")
    n = len(test_x) if n_images is None else min(n_images, len(test_x))
    if n == 0:
        raise ConfigError("the test split is empty", "use data with a test split")
    was_training = model.training
    model.eval()
    binary = model.binary
    target = model.target(test_x[:n], torch.Generator().manual_seed(TEST_BINARIZATION_SEED))
    y = test_y[:n] if (test_y is not None and is_conditional(model)) else None
    if is_conditional(model) and y is None:
        raise ConfigError("a conditional VAE's likelihood needs the test labels", "pass test_y")
    g = torch.Generator().manual_seed(seed)
    per_k: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    tic = time.perf_counter()
    for s in range(0, n, batch):
        log_w = model.log_weights(target[s:s + batch], None if y is None else y[s:s + batch], ks[-1],
                                  chunk=chunk, generator=g)
        for k, v in bounds(log_w, ks).items():
            per_k[k].append(v)
        if echo:
            echo(f"likelihood: {min(s + batch, n)}/{n} images, k={ks[-1]}, {time.perf_counter() - tic:.0f} s")
    seconds = time.perf_counter() - tic
    model.train(was_training)
    rows = []
    for k in ks:
        nll = -torch.cat(per_k[k]).double()
        mean = float(nll.mean())
        se = float(nll.std() / math.sqrt(n)) if n > 1 else float("nan")
        rows.append({"k": k, "bound": "ELBO" if k == 1 else f"IWAE k={k}", "nll_nats": mean, "stderr_nats": se,
                     "bits_per_dim": bits_per_dim(mean, model.dims)})
    report = {"likelihood": model.likelihood_name,
              "test_images": n, "dims": int(model.dims), "rows": rows, "seconds": round(seconds, 1),
              "draws_per_image": ks[-1], "seed": seed}
    if binary:
        report["binarization"] = f"torch.bernoulli(x/255), torch.Generator seeded {TEST_BINARIZATION_SEED}"
        report["literature"] = LITERATURE
    return report


def likelihood_markdown(report: dict[str, Any], data: str = "the test split") -> str:
    """The report as a markdown table (for report.md / README)."""
    lines = [f"Test negative log-likelihood on {report['test_images']} images of {data} "
             f"({report['likelihood']}, {report['dims']} dims; lower is better):", "",
             "| bound | NLL (nats/image) | bits/dim |", "|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['bound']} | {r['nll_nats']:.2f} ± {r['stderr_nats']:.2f} | {r['bits_per_dim']:.4f} |")
    if report.get("binarization"):
        lines += ["", f"Test binarization: {report['binarization']}."]
    for ref in report.get("literature") or []:
        lines.append(f"- For comparison, {ref['model']} on {ref['data']}: {ref['nats']} nats ({ref['source']}).")
    return "\n".join(lines)


@image_section("likelihood")
def likelihood_section(ctx: ImageEvalContext) -> Section | None:
    """Test negative log-likelihood on the held-out split, for families that have one: ELBO and IWAE
    bounds (VAEs), or the dequantized ODE likelihood (flows); both in bits/dim on the 8-bit scale."""
    density = isinstance(ctx.model, DensityLikelihood)
    if ctx.model is None or not (density or has_likelihood(ctx.model)):
        return None
    held_out = ctx.data.split(ctx.ref_split)
    if density:
        n = ctx.options.get("likelihood_n") or DEFAULT_DENSITY_N
        ctx.echo(f"likelihood: the ODE on {min(n, len(held_out['x']))} {ctx.ref_split} images")
        rep = density_report(ctx.model, held_out["x"], held_out.get("y"), n_images=n, seed=ctx.seed, echo=ctx.echo)
    else:
        ks = ctx.options.get("iwae_k") or DEFAULT_EVAL_KS
        n = ctx.options.get("likelihood_n") or DEFAULT_EVAL_N
        ctx.echo(f"likelihood: ELBO and IWAE k={max(ks)} on {min(n, len(held_out['x']))} {ctx.ref_split} images")
        rep = likelihood_report(ctx.model, held_out["x"], held_out.get("y"), ks=ks, n_images=n, seed=ctx.seed)
    values: dict[str, float] = {}
    for row in rep["rows"]:
        key = "ode" if row["k"] == 0 else "elbo" if row["k"] == 1 else f"iwae{row['k']}"
        values[f"{key}_nll_nats"] = row["nll_nats"]
        values[f"{key}_bits_per_dim"] = row["bits_per_dim"]
    note = rep["likelihood"] + (f"; test binarization {rep['binarization']}" if rep.get("binarization") else "")
    return ctx.section("likelihood", values, n=rep["test_images"],
                       against=f"{ctx.ref_split} split ({rep['test_images']} images)",
                       features="none: the model's own bounds (negative log-likelihood, lower is better)",
                       note=note)
