"""Image quality and diversity metrics on feature vectors: FID, KID, Inception Score, P/R/D/C.

Everything takes float64 feature matrices [N, D] (see aigc.metrics.features) and is chunked, so
10,000 x 10,000 comparisons fit in a few hundred MB.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .memorization import knn_radii, pairwise_sq_dists

# ---------------------------------------------------------------- FID

def feature_stats(feats: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean [D] and unbiased covariance [D, D] in float64, accumulated chunk by chunk."""
    x = feats.double()
    n = x.shape[0]
    if n < 2:
        raise ValueError("feature statistics need at least two items")
    mu = x.mean(0)
    cov = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64)
    for c in (x - mu).split(chunk):
        cov += c.T @ c
    return mu, cov / (n - 1)


def _sym_sqrt(a: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix through its eigendecomposition."""
    w, v = torch.linalg.eigh((a + a.T) / 2)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> float:
    """|mu1 - mu2|^2 + tr(C1) + tr(C2) - 2 tr((C1^1/2 C2 C1^1/2)^1/2), all symmetric eigh (no sqrtm).

    C1^1/2 C2 C1^1/2 is symmetric PSD and has the same eigenvalues as C1 C2, so the trace of its root
    equals tr((C1 C2)^1/2) of the usual formula, without sqrtm's complex round-off.
    """
    mu1, mu2, cov1, cov2 = (t.double() for t in (mu1, mu2, cov1, cov2))
    s1 = _sym_sqrt(cov1)
    m = s1 @ cov2 @ s1
    eig = torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0)
    diff = mu1 - mu2
    return float(diff @ diff + cov1.trace() + cov2.trace() - 2 * eig.sqrt().sum())


def fid(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """Frechet distance between two feature sets."""
    return frechet_distance(*feature_stats(feats_a), *feature_stats(feats_b))


# ---------------------------------------------------------------- KID

def poly_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """k(x, y) = (x.y / d + 1)^3, the kernel of Binkowski et al. 2018."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased squared MMD with the polynomial kernel (diagonals of k(x,x), k(y,y) left out)."""
    x, y = x.double(), y.double()
    m, n = x.shape[0], y.shape[0]
    kxx, kyy, kxy = poly_kernel(x, x), poly_kernel(y, y), poly_kernel(x, y)
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(sxx + syy - 2 * kxy.mean())


def kid(feats_a: torch.Tensor, feats_b: torch.Tensor, *, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: mean and std of the unbiased MMD^2 over random subsets."""
    size = min(subset_size, feats_a.shape[0], feats_b.shape[0])
    if size < 2:
        raise ValueError("KID needs at least two items on each side")
    g = torch.Generator().manual_seed(seed)
    vals = []
    for _ in range(subsets):
        ia = torch.randperm(feats_a.shape[0], generator=g)[:size]
        ib = torch.randperm(feats_b.shape[0], generator=g)[:size]
        vals.append(mmd2_unbiased(feats_a[ia], feats_b[ib]))
    t = torch.tensor(vals, dtype=torch.float64)
    return float(t.mean()), float(t.std(unbiased=True)) if len(vals) > 1 else 0.0


# ---------------------------------------------------------------- intervals

HALF_SAMPLES = 20   # resamples behind each interval (`aigc eval --intervals`)
Z95 = 1.959964      # a 95% normal interval is the estimate +- Z95 standard errors


def half_sample_intervals(samples: torch.Tensor, reference: torch.Tensor,
                          fn: Callable[[torch.Tensor, torch.Tensor], dict[str, float]],
                          point: dict[str, float], *, reps: int = HALF_SAMPLES, seed: int = 0,
                          bounds: tuple[float, float] | None = None) -> dict[str, list[float]]:
    """95% intervals around `point` (fn on the full sets) from `reps` half-samples of both sides.

    Each resample keeps a random half of each set, without replacement, and recomputes fn. The
    spread of half-sample values estimates the variance of the full-size number (the delete-d
    jackknife with d = n/2, Shao & Wu 1989), which stays valid for statistics that are not smooth,
    such as k-NN precision and recall. A plain bootstrap would draw images twice, and a copy of an
    image sits at distance 0 from itself: it shrinks k-NN balls and inflates FID's bias, so its
    intervals miss the estimate. The interval is point +- 1.96 standard errors, cut to `bounds`.
    """
    g = torch.Generator().manual_seed(seed + 1)
    runs: dict[str, list[float]] = {}
    for _ in range(reps):
        ia = torch.randperm(samples.shape[0], generator=g)[:samples.shape[0] // 2]
        ib = torch.randperm(reference.shape[0], generator=g)[:reference.shape[0] // 2]
        for k, v in fn(samples[ia], reference[ib]).items():
            runs.setdefault(k, []).append(v)
    out = {}
    for k, vals in runs.items():
        if k not in point or len(vals) < 2:
            continue
        half = Z95 * float(torch.tensor(vals, dtype=torch.float64).std(unbiased=True))
        lo, hi = point[k] - half, point[k] + half
        if bounds is not None:
            lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
        out[k] = [lo, hi]
    return out


# ---------------------------------------------------------------- Inception Score

def inception_score(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) over `splits` parts: mean and std. Its maximum is the class count."""
    logp = torch.log_softmax(logits.double(), dim=1)
    scores = []
    for part in logp.chunk(max(1, min(splits, logp.shape[0]))):
        p = part.exp()
        log_py = torch.logsumexp(part, dim=0) - math.log(part.shape[0])
        kl = (p * (part - log_py)).sum(1).mean()
        scores.append(float(kl.exp()))
    t = torch.tensor(scores, dtype=torch.float64)
    return float(t.mean()), float(t.std(unbiased=False))


# ---------------------------------------------------------------- precision, recall, density, coverage

def prdc(real: torch.Tensor, fake: torch.Tensor, k_pr: int = 3, k_dc: int = 5,
         chunk: int = 1024) -> dict[str, float]:
    """Precision and recall (Kynkaanniemi et al. 2019, k_pr) and density and coverage (Naeem et al.
    2020, k_dc), from one chunked pass over the fake x real distances. A point lies inside a k-NN
    ball when its distance is strictly below the radius, as in the reference `prdc` package.
    """
    real, fake = real.double(), fake.double()
    real_r2 = {k: knn_radii(real, k).square() for k in {k_pr, k_dc}}
    fake_r2 = knn_radii(fake, k_pr).square()
    inside_real_any, inside_real_count = [], []
    recalled = torch.zeros(real.shape[0], dtype=torch.bool)
    nearest_fake = torch.full((real.shape[0],), math.inf, dtype=torch.float64)
    for start in range(0, fake.shape[0], chunk):
        d = pairwise_sq_dists(fake[start:start + chunk], real)        # [c, n_real]
        inside_real_any.append((d < real_r2[k_pr]).any(1))
        inside_real_count.append((d < real_r2[k_dc]).sum(1))
        recalled |= (d < fake_r2[start:start + chunk].unsqueeze(1)).any(0)
        nearest_fake = torch.minimum(nearest_fake, d.min(0).values)
    return {"precision": float(torch.cat(inside_real_any).double().mean()),
            "recall": float(recalled.double().mean()),
            "density": float(torch.cat(inside_real_count).double().mean() / k_dc),
            "coverage": float((nearest_fake < real_r2[k_dc]).double().mean())}


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN balls."""
    r = prdc(real, fake, k_pr=k, k_dc=k)
    return r["precision"], r["recall"]


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020): balls around real points only."""
    r = prdc(real, fake, k_pr=k, k_dc=k)
    return r["density"], r["coverage"]
