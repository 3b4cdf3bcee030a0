"""Measuring with little data: intervals that match the real spread, metrics refused where the real set
cannot carry them, a feature network trained long enough and named by its data, honest warnings."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from aigc.cli import main
from aigc.metrics import image as M
from aigc.metrics.memorization import memorization
from aigc.metrics.report import diagnose, format_table


def gaussians(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """'Generated' and 'real' features that differ in scale and mean, 32-d."""
    return (torch.randn(n, 32, generator=g, dtype=torch.float64) * 1.2,
            torch.randn(n, 32, generator=g, dtype=torch.float64) + 0.15)


def test_half_sample_intervals_match_the_spread_of_fresh_draws():
    """The interval's width comes from one sample; the truth from 30 independent pairs of sets."""
    g = torch.Generator().manual_seed(0)
    n = 300

    def numbers(a, b):
        return {"fid": M.fid(a, b), **M.prdc(b, a)}

    fresh = [numbers(*gaussians(n, g)) for _ in range(30)]
    a, b = gaussians(n, g)
    point = numbers(a, b)
    iv = M.half_sample_intervals(a, b, numbers, point, reps=30, seed=0)
    for key in ("fid", "precision", "recall", "coverage"):
        true_sd = float(np.std([f[key] for f in fresh], ddof=1))
        lo, hi = iv[key]
        assert lo < point[key] < hi
        assert 0.5 < (hi - lo) / (2 * M.Z95) / true_sd < 2.0, key  # the width is the real spread's, within 2x


def test_memorization_flags_no_held_out_image_and_sees_past_a_duplicate_in_the_baseline():
    g = torch.Generator().manual_seed(1)
    train = torch.randn(3000, 16, generator=g, dtype=torch.float64)
    heldout = torch.cat([torch.randn(500, 16, generator=g, dtype=torch.float64), train[:1]])  # one test = train
    fresh = torch.randn(400, 16, generator=g, dtype=torch.float64)
    real = memorization(fresh, train, heldout)
    assert real.copies < 0.01 and real.set_aside == 1  # the duplicate did not set the threshold to 0
    copier = memorization(train[100:150], train, heldout)
    assert copier.copies == 1.0 and copier.values()["copied_train_images"] == 50
    one_image = memorization(train[7:8].repeat(30, 1), train, heldout)
    assert one_image.copies == 1.0 and one_image.values()["copied_train_images"] == 1


def result(**values):
    prdc = {k: values.pop(k) for k in ("precision", "recall", "density", "coverage") if k in values}
    fid = {"fid": values.pop("fid")} if "fid" in values else {}
    floor_fid = values.pop("floor_fid", None)
    sections = [{"name": name, "values": v, "n": 10_000, "against": "test", "features": "f", "note": ""}
                for name, v in (("fid", fid), ("prdc", prdc), ("other", values)) if v]
    out = {"kind": "run", "n": 10_000, "n_real": 10_000, "run": "r", "checkpoint": "c", "against": "test split",
           "features": {"name": "f"}, "data": "d", "sections": sections}
    if floor_fid is not None:
        out["floor"] = {"sections": [{"name": "fid", "values": {"fid": floor_fid}}]}
    return out


def test_a_conditional_model_collapsed_per_class_is_warned_about():
    # the case: recall 0.006, FID 47 times the floor, the classes right but each one image
    said = diagnose(result(fid=47.0, floor_fid=1.0, precision=0.3, recall=0.006, coverage=0.02,
                           label_accuracy=0.93))
    assert any("mode collapse" in w and "93% label accuracy" in w for w in said)
    assert any("far from the data" in w and "47 times the real floor" in w for w in said)
    assert diagnose(result(fid=3.0, floor_fid=1.0, precision=0.7, recall=0.6, coverage=0.6)) == []


def test_a_likelihood_worse_than_uniform_pixels_is_remarked():
    (warning,) = diagnose(result(elbo_bits_per_dim=9.3, elbo_nll_nats=5000.0))
    assert "9.30 bits/dim" in warning and "uniform" in warning
    assert diagnose(result(elbo_bits_per_dim=1.2)) == []


def test_a_small_real_side_is_said_with_n_on_both_sides():
    r = result(fid=5.0)
    r["n_real"], r["ref_split"] = 500, "test"
    (note,) = diagnose(r)
    assert "only 500 real test images" in note and "10,000 on the other side" in note
    assert note in format_table(r)


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """100 small greyscale images of 25x25 (digits blown up), as a user's folder would hold them."""
    from sklearn.datasets import load_digits

    folder = tmp_path_factory.mktemp("faces")
    x = load_digits().images[:100]
    for i, img in enumerate(x):
        Image.fromarray((img * 255 / 16).astype(np.uint8)).resize((25, 25)).save(folder / f"{i:03d}.png")
    return folder


def test_a_hundred_images_get_refusals_not_confident_numbers(faces, tmp_path, capsys):
    out = tmp_path / "floor.json"
    assert main(["eval", "--real", f"folder:{faces}", "--out", str(out)]) == 0
    said = capsys.readouterr()
    result = json.loads(out.read_text())
    by = {s["name"]: s for s in result["sections"]}
    assert result["n"] == 90 and result["n_real"] == 10
    for name in ("fid", "prdc", "memorization"):  # 10 real images cannot carry them
        assert by[name]["values"] == {} and by[name]["note"].startswith("not computed")
    assert "rank-deficient" in by["fid"]["note"] and "at least 50" in by["prdc"]["note"]
    lo, hi = by["kid"]["intervals"]["kid"]
    assert lo <= by["kid"]["values"]["kid"] <= hi
    assert "note: only 10 real test images to measure against (90 on the other side" in said.out
    feats = result["features"]  # an autoencoder trained long enough, its quality against a yardstick
    assert feats["kind"] == "autoencoder" and feats["steps"] >= 500
    assert feats["test_mse"] < feats["test_mse_mean_image"]
    assert "held-out reconstruction MSE" in said.out and f"trained {feats['steps']:,} steps" in said.out
    assert "feature net step 500/500" in said.err and "cached at" in said.err  # progress and the cache shown


def test_feature_networks_are_named_by_the_data_they_were_trained_on():
    from aigc.config import DataConfig
    from aigc.data import load_dataset
    from aigc.metrics.features import feature_net_for

    nets = [feature_net_for(load_dataset(DataConfig(source="digits", limit=limit)), echo=lambda m: None, max_steps=3)
            for limit in (300, 400)]
    a, b = (n.name for n in nets)
    assert a != b and a.startswith("aigc-cnn-v1-digits-") and b.startswith("aigc-cnn-v1-digits-")
    assert nets[0].info["data_fingerprint"][:8] in a
