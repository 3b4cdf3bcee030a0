"""Image metrics on real Fashion-MNIST features: the issue's checks and independent references."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from aigc.metrics import image as M


@pytest.fixture(scope="module")
def fashion(fashion_features):
    """The shipped feature network plus 2,000 train and 2,000 test images with their labels."""
    data, feats = fashion_features
    assert feats.info["arch"] == "aigc-cnn-v1" and "trained_by" in feats.info  # the shipped one
    train_x, train_y = data.train["x"][:2000], data.train["y"][:2000]
    test_x, test_y = data.test["x"][:2000], data.test["y"][:2000]
    train_f, train_logits = feats(train_x)
    test_f, _ = feats(test_x)
    return {"feats": feats, "train_x": train_x, "train_y": train_y, "train_f": train_f,
            "train_logits": train_logits, "test_x": test_x, "test_y": test_y, "test_f": test_f}


def test_fid_of_a_set_with_itself_is_zero(fashion):
    assert abs(M.fid(fashion["test_f"], fashion["test_f"])) < 1e-6


def test_fid_grows_with_the_strength_of_added_noise(fashion):
    x = fashion["test_x"][:1000].float() / 255
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x.shape, generator=g)
    values = [M.fid(fashion["feats"]((x + s * noise).clamp(0, 1))[0], fashion["test_f"][1000:])
              for s in (0.0, 0.05, 0.1, 0.2, 0.4)]
    assert all(a < b for a, b in zip(values, values[1:], strict=False)), values


def test_kid_of_two_halves_of_the_same_real_set_is_zero_within_two_std(fashion):
    f = fashion["test_f"]
    mean, std = M.kid(f[0::2], f[1::2], subsets=50, subset_size=500)
    assert abs(mean) < 2 * std, (mean, std)
    flipped_mean, flipped_std = M.kid(f[0::2], fashion["feats"](fashion["train_x"][:1000].flip(-2))[0],
                                      subsets=50, subset_size=500)
    assert flipped_mean > 3 * flipped_std and flipped_mean > 100 * abs(mean)  # upside-down clothes differ


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # a few ReLU features never fire
def test_fid_matches_the_classic_sqrtm_formula(fashion):
    scipy_linalg = pytest.importorskip("scipy.linalg")
    a, b = fashion["train_f"].numpy(), fashion["test_f"].numpy()
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy_linalg.sqrtm(s1 @ s2)
    reference = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))
    ours = M.fid(fashion["train_f"], fashion["test_f"])
    assert abs(ours - reference) / reference < 1e-4, (ours, reference)


def test_kid_matches_torchmetrics_on_the_same_subsets(fashion):
    tm_kid = pytest.importorskip("torchmetrics.image.kid")
    a, b = fashion["train_f"][:700], fashion["test_f"][:700]  # torchmetrics assumes equal sizes
    reference = float(tm_kid.poly_mmd(a, b, degree=3, gamma=None, coef=1.0))
    ours = M.mmd2_unbiased(a, b)
    assert abs(ours - reference) / abs(reference) < 1e-4, (ours, reference)


def test_inception_score_spans_one_to_the_class_count(fashion):
    confident = torch.eye(10).repeat(100, 1) * 50.0   # sure of each class, all classes equally often
    assert M.inception_score(confident)[0] == pytest.approx(10.0, rel=1e-6)
    one_class = torch.zeros(1000, 10)
    one_class[:, 3] = 50.0
    assert M.inception_score(one_class)[0] == pytest.approx(1.0, abs=1e-6)
    real = M.inception_score(fashion["train_logits"])[0]
    assert 5.0 < real < 10.0  # a good classifier on real clothes: high but below the maximum


def _prdc_reference(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float, float, float]:
    """The prdc package's formulas (Naeem et al.), written out with scikit-learn's distances."""
    from sklearn.metrics import pairwise_distances

    def radii(x):
        d = pairwise_distances(x, x)
        return np.partition(d, k, axis=1)[:, k]

    rr, fr = radii(real), radii(fake)
    d = pairwise_distances(real, fake)
    precision = (d < rr[:, None]).any(axis=0).mean()
    recall = (d < fr[None, :]).any(axis=1).mean()
    density = (1.0 / k) * (d < rr[:, None]).sum(axis=0).mean()
    coverage = (d.min(axis=1) < rr).mean()
    return precision, recall, density, coverage


def test_prdc_matches_the_reference_formulas(fashion):
    real, fake = fashion["test_f"][:600], fashion["train_f"][:500]
    p3, r3, _, _ = _prdc_reference(real.numpy(), fake.numpy(), 3)
    _, _, d5, c5 = _prdc_reference(real.numpy(), fake.numpy(), 5)
    assert M.precision_recall(real, fake, k=3) == pytest.approx((p3, r3), abs=1e-12)
    assert M.density_coverage(real, fake, k=5) == pytest.approx((d5, c5), abs=1e-12)


def test_a_generator_of_half_the_classes_loses_recall_and_coverage_but_keeps_precision(fashion):
    real = fashion["test_f"][:1000]
    y = fashion["train_y"]
    full = fashion["train_f"][:1000]
    half_mask = y < 5
    half = fashion["train_f"][half_mask][:1000]  # as many samples, only 5 of the 10 classes
    p_full, r_full = M.precision_recall(real, full)
    p_half, r_half = M.precision_recall(real, half)
    _, c_full = M.density_coverage(real, full)
    _, c_half = M.density_coverage(real, half)
    assert p_half > 0.9 * p_full                     # what it makes still looks real
    assert 0.3 < r_half / r_full < 0.7               # roughly half the data is missed
    assert 0.3 < c_half / c_full < 0.7
