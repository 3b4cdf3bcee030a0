"""Feature networks: the shipped Fashion-MNIST CNN, and ones trained (and cached) for other data."""
from __future__ import annotations

import json

import torch

from aigc.config import DataConfig
from aigc.data import Dataset, load_dataset
from aigc.metrics.features import ASSETS, SHIPPED, FeatureNet, feature_net_for, load_features


def test_the_shipped_network_is_small_documented_and_accurate():
    weights = ASSETS / f"{SHIPPED}.safetensors"
    info = json.loads(weights.with_suffix(".json").read_text())
    assert weights.stat().st_size < 2_000_000
    assert info["test_accuracy"] >= 0.90 and info["trained_by"].startswith("python -m aigc.metrics.features")
    data = load_dataset(DataConfig(source="fashion-mnist"))
    feats = load_features(weights)
    f, logits = feats(data.test["x"][:500])
    assert f.shape == (500, 128) and f.dtype == torch.float64
    accuracy = (logits.argmax(1) == data.test["y"][:500]).double().mean()
    assert accuracy > 0.85  # the recorded figure is on all 10,000; this is a spot check


def test_other_labelled_data_gets_a_classifier_trained_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_CACHE", str(tmp_path))
    data = load_dataset(DataConfig(source="digits"))
    said: list[str] = []
    first = feature_net_for(data, echo=said.append, max_steps=5)
    assert first.is_classifier and first.info["kind"] == "classifier" and "test_accuracy" in first.info
    assert any("training one" in m for m in said)
    said.clear()
    again = feature_net_for(data, echo=said.append, max_steps=5)
    assert any("trained earlier" in m for m in said)  # it says where the network comes from
    x = data.test["x"][:8]
    assert torch.equal(first(x)[0], again(x)[0])


def test_unlabelled_data_gets_an_autoencoder_embedding(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_CACHE", str(tmp_path))
    x = (torch.rand(96, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    data = Dataset("blobs", "image", {"x": x}, {"x": x[:16]}, {"source": "npz:blobs.npz", "shape": [3, 16, 16]})
    feats = feature_net_for(data, echo=lambda m: None, max_steps=3)
    assert not feats.is_classifier and feats.info["kind"] == "autoencoder"
    f, logits = feats(x[:4])
    assert f.shape == (4, 128) and logits is None


def test_any_image_size_is_resized_to_the_network_input():
    net = FeatureNet(channels=3, num_classes=4)
    x = torch.rand(2, 3, 64, 48)
    assert net.prepare(x).shape == (2, 3, 28, 28)
