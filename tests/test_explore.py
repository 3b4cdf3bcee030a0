"""`aigc explore`: every picture on tiny digit runs, for a VAE and a GAN, plus its building blocks."""
from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from aigc.cli import main
from aigc.config import load_config
from aigc.data import load_dataset
from aigc.errors import ConfigError
from aigc.explore import explore, slerp
from aigc.train import train

PAD = 2  # torchvision grid padding


def tiny_run(tmp_path_factory, name: str, model: dict):
    cfg = load_config({"name": name, "data": {"source": "digits"}, "model": model,
                       "train": {"steps": 4, "batch_size": 32, "threads": 1, "log_every": 2, "sample_every": 0,
                                 "ckpt_every": 0, "progress": False}})
    run = tmp_path_factory.mktemp(name)
    train(cfg, run, data=load_dataset(cfg.data), echo=lambda m: None)
    return run


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    return tiny_run(tmp_path_factory, "vae", {"name": "vae-mlp", "z_dim": 3, "hidden": [16]})


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    return tiny_run(tmp_path_factory, "gan", {"name": "gan-mlp", "z_dim": 4, "g_hidden": [16], "d_hidden": [16],
                                              "conditional": True})


def grid_shape(path) -> tuple[int, int]:
    """(rows, columns) of 8x8 tiles in a grid PNG."""
    w, h = Image.open(path).size
    return (h - PAD) // (8 + PAD), (w - PAD) // (8 + PAD)


def test_vae_run_gets_every_picture_linked_from_its_report(vae_run):
    written = explore(vae_run, rows=3, steps=5, neighbours=4, echo=lambda m: None)
    names = {p.name: p for p in written.values()}
    assert set(names) == {"interpolate-random-latents.png", "interpolate-real-images.png",
                          "traverse-latents-by-kl.png", "reconstruct-test-images.png",
                          "neighbours-samples-vs-train.png"}
    assert grid_shape(names["interpolate-random-latents.png"]) == (3, 5)
    assert grid_shape(names["interpolate-real-images.png"]) == (3, 7)   # real A, 5 decodes, real B
    assert grid_shape(names["traverse-latents-by-kl.png"]) == (3, 5)    # one row per latent dimension
    assert grid_shape(names["reconstruct-test-images.png"]) == (8, 5)   # 20 images and their reconstructions
    assert grid_shape(names["neighbours-samples-vs-train.png"]) == (3, 5)

    facts = json.loads((vae_run / "explore" / "explore.json").read_text())
    kl = facts["traverse"]["kl_nats_per_dimension"]
    assert sorted(facts["traverse"]["dimensions_shown"]) == [0, 1, 2]
    assert [kl[d] for d in facts["traverse"]["dimensions_shown"]] == sorted(kl, reverse=True)
    assert len(facts["neighbours"]["train_indices"]) == 3

    report = (vae_run / "report.md").read_text()
    assert report.count("## Latent space (aigc explore)") == 1
    assert "(explore/traverse-latents-by-kl.png)" in report
    explore(vae_run, ["interpolate"], rows=2, steps=3, echo=lambda m: None)  # a rerun refreshes the section
    report = (vae_run / "report.md").read_text()
    assert report.count("## Latent space (aigc explore)") == 1 and "traverse-latents" not in report


def test_gan_run_gets_walks_and_neighbours_but_no_traversal(gan_run, capsys):
    written = explore(gan_run, rows=4, steps=6, echo=lambda m: None)
    assert sorted(p.name for p in written.values()) == ["interpolate-random-latents.png",
                                                       "neighbours-samples-vs-train.png"]
    assert grid_shape(gan_run / "explore" / "interpolate-random-latents.png") == (4, 6)
    assert main(["explore", str(gan_run), "--traverse"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --traverse needs a model with an encoder") and err.count("\n") == 1


def test_cli_writes_only_what_is_asked_where_it_is_told(vae_run, tmp_path, capsys):
    assert main(["explore", str(vae_run), "--reconstruct", "--steps", "4", "--out", str(tmp_path / "pics")]) == 0
    assert sorted(p.name for p in (tmp_path / "pics").glob("*.png")) == ["reconstruct-test-images.png"]
    assert main(["explore", str(tmp_path / "nowhere")]) == 2
    assert "no config.yaml" in capsys.readouterr().err


def test_slerp_keeps_the_ends_and_a_typical_norm():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 64, generator=g), torch.randn(4, 64, generator=g)
    path = slerp(a, b, torch.linspace(0, 1, 9))
    assert torch.allclose(path[:, 0], a, atol=1e-5) and torch.allclose(path[:, -1], b, atol=1e-5)
    middle, straight = path[:, 4].norm(dim=1), ((a + b) / 2).norm(dim=1)
    assert (middle > straight).all()  # the straight midpoint is atypically close to the origin
    assert torch.allclose(middle, (a.norm(dim=1) + b.norm(dim=1)) / 2, rtol=0.1)


def test_unknown_kind_is_a_one_line_error(vae_run):
    with pytest.raises(ConfigError, match="unknown explore output 'traverses'"):
        explore(vae_run, ["traverses"], echo=lambda m: None)


def test_conditional_vae_encodes_real_images_with_their_own_labels(tmp_path_factory):
    run = tiny_run(tmp_path_factory, "cvae", {"name": "cvae", "arch": "mlp", "z_dim": 2, "hidden": [16]})
    written = explore(run, rows=2, steps=3, neighbours=2, echo=lambda m: None)
    assert len(written) == 5
    assert grid_shape(run / "explore" / "traverse-latents-by-kl.png") == (2, 3)
