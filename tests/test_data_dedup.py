"""The duplicate-finding building blocks, checked against brute force and by hand."""
from __future__ import annotations

import numpy as np
import torch

from aigc.data import dedup


def test_near_pairs_equals_brute_force_on_clustered_vectors():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(60, 64, generator=g)
    x = centres[torch.randint(0, 60, (2000,), generator=g)] + 0.1 * torch.randn(2000, 64, generator=g)
    x = x / x.norm(dim=1, keepdim=True)
    c = (x.double() @ x.double().T).triu(1)
    for threshold in (0.98, 0.99, 0.995):
        pairs, cos = dedup.near_pairs(x, threshold, block=128)
        sure = set(map(tuple, torch.nonzero(c >= threshold + 1e-5).tolist()))
        maybe = set(map(tuple, torch.nonzero(c >= threshold - 1e-5).tolist()))  # float rounding
        found = set(map(tuple, pairs.tolist()))
        assert len(sure) > 0 and sure <= found <= maybe
        assert np.all(cos >= threshold)


def test_near_features_ignore_brightness_and_scale_but_not_content():
    g = torch.Generator().manual_seed(1)
    a = torch.randint(0, 200, (1, 1, 24, 24), generator=g, dtype=torch.uint8)
    b = torch.randint(0, 200, (1, 1, 24, 24), generator=g, dtype=torch.uint8)
    brighter = (a.int() + 40).clamp(max=255).to(torch.uint8)
    f = dedup.near_features(torch.cat([a, brighter, b]))
    assert float(f[0] @ f[1]) > 0.999 and float(f[0] @ f[2]) < 0.5
    assert torch.allclose(f.norm(dim=1), torch.ones(3))
    rgb = dedup.near_features(a.expand(-1, 3, -1, -1).contiguous())  # grey stays grey in RGB
    assert torch.allclose(rgb, f[:1], atol=1e-5)


def test_content_hashes_group_identical_pixels_only():
    x = torch.zeros(4, 1, 5, 5, dtype=torch.uint8)
    x[1, 0, 2, 2] = 1
    x[3] = x[1]
    keys = dedup.content_hashes(x)
    assert dedup.groups_from_keys(keys) == [[0, 2], [1, 3]]


def test_keep_first_keeps_a_training_copy_and_drops_leaked_test_items():
    is_test = np.array([False, False, True, True, True, False])
    edges = np.array([[0, 2], [3, 4], [1, 5]])   # 2 copies train item 0; 3-4 only in test; 1-5 in train
    drop = dedup.keep_first(6, edges, is_test)
    assert drop.tolist() == [False, False, True, False, True, True]
    assert dedup.representatives(6, edges, is_test) == [[0, 2], [1, 5], [3, 4]]


def test_a_chain_of_look_alikes_keeps_its_ends():
    """a~b and b~c, but a and c differ: only b goes, and no group chains a to c."""
    edges, is_test = np.array([[0, 1], [1, 2]]), np.zeros(3, bool)
    assert dedup.keep_first(3, edges, is_test).tolist() == [False, True, False]
    assert dedup.representatives(3, edges, is_test) == [[0, 1]]
