"""Nearest neighbours and memorization: did the generator copy its training set?

Public API (also used by `aigc explore --neighbours`):

- `nearest_neighbours(queries, refs, k)` -> (distances [N, k], indices [N, k]), chunked;
- `memorization(sample_feats, train_feats, heldout_feats)` -> a `Memorization` report: each sample's
  distance to its nearest training image, compared with the same distance for held-out real images;
- `save_pairs_png(queries, refs, path)` -> a PNG with each query next to its neighbour.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

NEAR_DUPLICATE = 0.2  # held-out items nearer a training item than this x the median are duplicates, set aside


def pairwise_sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances [len(a), len(b)] through |a|^2 + |b|^2 - 2ab (clamped at 0)."""
    d = (a * a).sum(1, keepdim=True) + (b * b).sum(1).unsqueeze(0) - 2.0 * (a @ b.T)
    return d.clamp_(min=0)


def nearest_neighbours(queries: torch.Tensor, refs: torch.Tensor, k: int = 1,
                       chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest rows of `refs` for each row of `queries`: distances (float64) and indices.

    The search runs in float32, chunk by chunk (memory ~ chunk x len(refs)); the chosen
    distances are then recomputed exactly in float64, so an exact copy reads as 0.
    """
    if refs.shape[0] < k:
        raise ValueError(f"need at least {k} reference rows, got {refs.shape[0]}")
    q32, r32 = queries.float(), refs.float()
    r_sq = (r32 * r32).sum(1)
    idx = []
    for q in q32.split(chunk):
        d = (q * q).sum(1, keepdim=True) + r_sq.unsqueeze(0) - 2.0 * (q @ r32.T)
        # take a few extra candidates so float32 round-off cannot hide the true nearest one
        idx.append(d.topk(min(k + 4, refs.shape[0]), dim=1, largest=False).indices)
    cand = torch.cat(idx) if idx else torch.empty(0, k, dtype=torch.int64)
    exact = (queries.double().unsqueeze(1) - refs[cand].double()).square().sum(-1).sqrt()  # candidates only
    dist, order = exact.sort(dim=1)
    return dist[:, :k], cand.gather(1, order[:, :k])


def knn_radii(x: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row (float64), as in Kynkaanniemi / Naeem."""
    if x.shape[0] <= k:
        raise ValueError(f"k-NN radii with k={k} need more than {k} items, got {x.shape[0]}")
    x = x.double()
    out = []
    for q in x.split(chunk):
        d = pairwise_sq_dists(q, x)
        out.append(d.topk(k + 1, dim=1, largest=False).values[:, -1])  # the 0 to itself comes first
    return torch.cat(out).sqrt()


@dataclass
class Memorization:
    """Each sample's nearest-training distance next to the held-out baseline."""

    copies: float                 # share of samples below the threshold
    threshold: float              # the smallest nearest-training distance of a held-out image
    set_aside: int                # held-out images left out of the baseline as duplicates of training images
    sample_dist: torch.Tensor     # [N] float64
    sample_index: torch.Tensor    # [N] index of the nearest training item
    heldout_dist: torch.Tensor    # [M] float64

    def values(self) -> dict[str, float]:
        copied = self.sample_index[self.sample_dist < self.threshold]
        return {"copies": self.copies, "copied_train_images": float(len(copied.unique())),
                "threshold": self.threshold, "heldout_set_aside": float(self.set_aside),
                "sample_median_dist": float(self.sample_dist.median()),
                "heldout_median_dist": float(self.heldout_dist.median())}


def memorization(sample_feats: torch.Tensor, train_feats: torch.Tensor, heldout_feats: torch.Tensor,
                 near_duplicate: float = NEAR_DUPLICATE) -> Memorization:
    """Share of samples closer to the training set than any held-out real image is.

    The threshold is the smallest nearest-training distance among held-out images, so no real
    held-out image counts as a copy by construction. Held-out images that are themselves
    near-duplicates of training images (closer than `near_duplicate` x the median distance; a
    dataset's train and test splits often share a few) are set aside first: one of them would set
    the threshold to ~0 and hide every copy. A generator returning training images verbatim is
    flagged ~100%; `copied_train_images` says how many distinct training images the copies match
    (a blurry generator can sit near one smooth image many times without copying it).
    """
    s_dist, s_idx = nearest_neighbours(sample_feats, train_feats, k=1)
    h_dist, _ = nearest_neighbours(heldout_feats, train_feats, k=1)
    h = h_dist[:, 0]
    kept = h[h >= near_duplicate * h.median()]
    threshold = float(kept.min()) if len(kept) else float(h.min())
    copies = float((s_dist[:, 0] < threshold).double().mean())
    return Memorization(copies, threshold, len(h) - len(kept), s_dist[:, 0], s_idx[:, 0], h)


def closest_pairs(dist: torch.Tensor, count: int = 16) -> torch.Tensor:
    """Indices of the `count` queries with the smallest neighbour distance, closest first."""
    return dist.argsort()[:count]


def save_pairs_png(queries: torch.Tensor, refs: torch.Tensor, path: Path | str) -> Path:
    """Two rows: queries on top, their neighbours below, column by column (images in [0,1] or uint8)."""
    from ..files import atomic_write
    from ..io import to_pil

    def unit(x: torch.Tensor) -> torch.Tensor:
        return x.float() / 255.0 if x.dtype == torch.uint8 else x.float().clamp(0, 1)

    q, r = unit(queries), unit(refs)
    if q.shape[1:] != r.shape[1:]:
        r = torch.nn.functional.interpolate(r, size=q.shape[-2:], mode="bilinear", antialias=True)
        if r.shape[1] != q.shape[1]:
            r = r.mean(1, keepdim=True).expand(-1, q.shape[1], -1, -1)
    grid = to_pil(torch.cat([q, r]), nrow=len(q))
    path = Path(path)
    return atomic_write(path.with_suffix(".png"), lambda p: grid.save(p, format="PNG"))
