"""Nearest neighbours and copy detection: a copying generator is caught, real test images are not."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from aigc.metrics.memorization import (
    closest_pairs,
    knn_radii,
    memorization,
    nearest_neighbours,
    save_pairs_png,
)


def test_nearest_neighbours_agree_with_brute_force():
    g = torch.Generator().manual_seed(0)
    refs = torch.randn(700, 16, generator=g, dtype=torch.float64) * 10 + 100  # far from 0: round-off
    queries = torch.cat([refs[:5], torch.randn(300, 16, generator=g, dtype=torch.float64) * 10 + 100])
    dist, idx = nearest_neighbours(queries, refs, k=3, chunk=128)
    brute = torch.cdist(queries, refs)
    ref_dist, ref_idx = brute.topk(3, dim=1, largest=False)
    assert torch.allclose(dist, ref_dist, atol=1e-9)
    assert torch.equal(idx, ref_idx)
    assert torch.all(dist[:5, 0] == 0) and torch.equal(idx[:5, 0], torch.arange(5))  # exact copies read 0


def test_knn_radii_leave_the_point_itself_out():
    x = torch.tensor([[0.0], [1.0], [3.0], [6.0]], dtype=torch.float64)
    assert knn_radii(x, 1).tolist() == [1.0, 1.0, 2.0, 3.0]
    assert knn_radii(x, 2).tolist() == [3.0, 2.0, 3.0, 5.0]


@pytest.fixture(scope="module")
def fashion_feats(fashion_features):
    data, feats = fashion_features
    return {"train": feats(data.train["x"][:3000])[0], "test": feats(data.test["x"][:1500])[0]}


def test_a_generator_returning_training_images_is_flagged_as_copying(fashion_feats):
    train, heldout = fashion_feats["train"], fashion_feats["test"][:1000]
    copier = train[torch.randperm(3000, generator=torch.Generator().manual_seed(1))[:500]]
    mem = memorization(copier, train, heldout)
    assert mem.copies > 0.99
    assert mem.values()["sample_median_dist"] == 0.0


def test_real_test_images_are_not_flagged(fashion_feats):
    train, heldout, fresh = fashion_feats["train"], fashion_feats["test"][:1000], fashion_feats["test"][1000:]
    mem = memorization(fresh, train, heldout)
    assert mem.copies < 0.05
    assert mem.threshold > 0


def test_closest_pairs_png_puts_each_sample_above_its_neighbour(tmp_path):
    queries = torch.rand(5, 1, 28, 28)
    refs = (torch.rand(5, 1, 28, 28) * 255).to(torch.uint8)
    dist = torch.tensor([0.5, 0.1, 0.9, 0.0, 0.3])
    assert closest_pairs(dist, 3).tolist() == [3, 1, 4]
    path = save_pairs_png(queries, refs, tmp_path / "pairs")
    img = Image.open(path)
    assert path.suffix == ".png" and img.size == (5 * 30 + 2, 2 * 30 + 2)  # 2 rows x 5 columns, padded
