"""Duplicate finding on uint8 image tensors: exact content hashes and near-duplicate pairs.

A near-duplicate is judged on a small, brightness-blind picture of each image: grey, resized
to 32x32 (and lightly blurred when that shrinks it, so JPEG noise and resampling do not count),
mean removed, unit length. Two images are near-duplicates when the cosine of those vectors is at
least `NEAR` (0.995). Images of 32 pixels or less keep their finest detail; the price: a copy of
such an image that was resized (which blurs it at that scale) is mostly missed.

Why not a perceptual hash: on 3,000 Fashion-MNIST training items, imagehash's 64-bit pHash puts
10% of distinct items within 4 bits of another, while brightness-shifted copies drift up to 16
bits, so no radius separates them; this feature does (tests/test_data_audit.py).

The pair search is exact and never loops over items in Python: projecting onto principal axes
can only shrink distances, so two near-duplicates lie in the same or adjacent slabs of the first
axis and close on the second; blocks of rows are compared (one matrix product) only with those
windows, and the survivors are checked in the full feature space.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

NEAR = 0.995          # cosine at or above which two images count as near-duplicates
FEATURE_SIDE = 32
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's convert("L")


def content_hash(a: np.ndarray) -> str:
    """A hex digest of one image's exact pixel content (shape included)."""
    return hashlib.blake2b(str(a.shape).encode() + np.ascontiguousarray(a).tobytes(), digest_size=12).hexdigest()


def content_hashes(x: torch.Tensor) -> list[str]:
    """One content_hash per image of a uint8 batch."""
    return [content_hash(row) for row in x.numpy()]


def grey(x: torch.Tensor) -> torch.Tensor:
    """uint8 [N,C,H,W] -> float [N,1,H,W] luma in [0, 255]."""
    f = x.float()
    if x.shape[1] == 1:
        return f
    return (f[:, :3] * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)


@lru_cache(maxsize=16)
def _axis_matrix(src: int, dst: int) -> torch.Tensor:
    """[dst, src]: antialiased bilinear resize along one axis, as a matrix; when shrinking, also a
    [1, 2, 1] blur, so resampling and JPEG noise do not count. Images at or under 32 pixels keep
    their finest detail: a 2-pixel check pattern is what tells two Fashion-MNIST shirts apart."""
    eye = torch.eye(src).view(src, 1, 1, src)
    cols = F.interpolate(eye, size=(1, dst), mode="bilinear", antialias=True, align_corners=False)
    resize = cols.view(src, dst).T
    if src <= dst:
        return resize
    blur = torch.zeros(dst, dst)
    for i in range(dst):  # replicate padding at both ends
        for j, w in ((i - 1, 0.25), (i, 0.5), (i + 1, 0.25)):
            blur[i, min(max(j, 0), dst - 1)] += w
    return blur @ resize


def near_features(x: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """uint8 [N,C,H,W] -> float [N, 1024] unit vectors that ignore brightness, JPEG noise and size."""
    n, _, h, w = x.shape
    mh, mw = _axis_matrix(h, FEATURE_SIDE), _axis_matrix(w, FEATURE_SIDE)
    out = []
    for part in x.split(chunk):
        m = len(part)
        g = grey(part)[:, 0]                                               # [m, H, W]
        g = (g.reshape(m * h, w) @ mw.T).reshape(m, h, FEATURE_SIDE)       # 2-D products are fast
        g = (mh @ g).reshape(m, -1)                                        # [m, 32*32]
        g = g - g.mean(1, keepdim=True)
        out.append(g / g.norm(dim=1, keepdim=True).clamp_min(1e-6))
    return torch.cat(out) if out else torch.zeros(0, FEATURE_SIDE * FEATURE_SIDE)


def near_pairs(feats: torch.Tensor, threshold: float = NEAR, dims: int = 32,
               block: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i < j) of unit vectors with cosine >= threshold, as int64 [P, 2] and their cosines."""
    n = len(feats)
    empty = np.zeros((0, 2), np.int64), np.zeros(0, np.float32)
    if n < 2:
        return empty
    radius = float(np.sqrt(max(2.0 - 2.0 * threshold, 0.0))) + 1e-4  # |a-b| for unit a, b
    sample = feats[torch.randperm(n, generator=torch.Generator().manual_seed(0))[:10000]]
    mean = sample.mean(0)
    with torch.random.fork_rng():  # pca_lowrank draws a random start; any orthonormal axes do
        torch.manual_seed(0)
        _, _, axes = torch.pca_lowrank(sample - mean, q=min(dims, *sample.shape), center=False)
    proj = (feats - mean) @ axes        # orthonormal axes: distances can only shrink
    sq = (proj * proj).sum(1)
    # pairs within `radius` lie in the same or adjacent slabs of the first axis; inside a slab
    # pair, a sweep along the second axis compares each block of rows with a window of columns
    slab = torch.floor(proj[:, 0] / radius).long()
    found_i, found_j = [], []
    for a in torch.unique(slab).tolist():
        rows = torch.nonzero(slab == a).flatten()
        cols = torch.nonzero((slab == a) | (slab == a + 1)).flatten()
        rows, cols = rows[torch.argsort(proj[rows, 1])], cols[torch.argsort(proj[cols, 1])]
        cpc2 = proj[cols, 1].contiguous()
        for start in range(0, len(rows), block):
            r = rows[start:start + block]
            lo = int(torch.searchsorted(cpc2, proj[r[0], 1] - radius))
            hi = int(torch.searchsorted(cpc2, proj[r[-1], 1] + radius, right=True))
            c = cols[lo:hi]
            near = proj[r] @ proj[c].T >= (sq[r, None] + sq[None, c] - radius * radius) / 2
            ri, ci = torch.nonzero(near, as_tuple=True)
            i, j = r[ri], c[ci]
            keep = (slab[j] != a) | (i < j)             # a pair inside one slab is seen twice
            found_i.append(i[keep]), found_j.append(j[keep])
    i, j = torch.cat(found_i), torch.cat(found_j)
    cos = (feats[i] * feats[j]).sum(1)                  # the candidates, checked in full
    ok = (cos >= threshold).numpy()
    if not ok.any():
        return empty
    i, j = i.numpy()[ok], j.numpy()[ok]
    pairs = np.stack([np.minimum(i, j), np.maximum(i, j)], 1).astype(np.int64)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return pairs[order], cos.numpy()[ok][order].astype(np.float32)


def groups_from_keys(keys: list[str]) -> list[list[int]]:
    """Indices sharing one key (e.g. a content hash), groups of size >= 2."""
    by: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        by.setdefault(k, []).append(i)
    return sorted((g for g in by.values() if len(g) > 1), key=lambda c: (-len(c), c[0]))


def keep_first(n: int, edges: np.ndarray, is_test: np.ndarray) -> np.ndarray:
    """bool [n], True for items to drop: going through training items first, then test items,
    each in order, an item is dropped when one of its duplicates is already kept.

    So test items copying training items go, and a chain a~b~c (a and c not alike) keeps a and c.
    """
    drop = np.zeros(n, bool)
    for i, partners in _keep_order(n, edges, is_test):
        drop[i] = any(not drop[j] for j in partners if _before(j, i, is_test))
    return drop


def representatives(n: int, edges: np.ndarray, is_test: np.ndarray) -> list[list[int]]:
    """Groups without chaining: each kept item followed by the dropped items it duplicates."""
    drop = keep_first(n, edges, is_test)
    groups: dict[int, list[int]] = {}
    for i, partners in _keep_order(n, edges, is_test):
        if drop[i]:
            keeper = min((j for j in partners if not drop[j] and _before(j, i, is_test)),
                         key=lambda j: (is_test[j], j))
            groups.setdefault(keeper, [keeper]).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def _before(j: int, i: int, is_test: np.ndarray) -> bool:
    return (is_test[j], j) < (is_test[i], i)


def _keep_order(n: int, edges: np.ndarray, is_test: np.ndarray):
    partners: dict[int, list[int]] = {}
    for a, b in edges.tolist():
        if a != b:
            partners.setdefault(a, []).append(b)
            partners.setdefault(b, []).append(a)
    for i in sorted(partners, key=lambda i: (is_test[i], i)):
        yield i, partners[i]
