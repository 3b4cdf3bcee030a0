"""The VAE family: every variant trains, samples and resumes through the shared trainer."""
from __future__ import annotations

import pytest
import torch

import aigc
from aigc.config import load_config
from aigc.data import load_dataset
from aigc.errors import ConfigError
from aigc.run import build_model
from aigc.train import train


def digits_config(model: dict, steps: int = 6, **train_extra):
    return load_config({
        "name": "t", "data": {"source": "digits"},
        "model": model,
        "train": {"steps": steps, "batch_size": 32, "lr": 1e-3, "betas": [0.9, 0.999], "threads": 1,
                  "log_every": 2, "sample_every": 0, "ckpt_every": 0, "progress": False, **train_extra},
    })


@pytest.fixture(scope="module")
def digits():
    return load_dataset(digits_config({"name": "vae-mlp"}).data)


@pytest.mark.parametrize("model", [
    {"name": "vae-mlp", "z_dim": 4, "hidden": [32]},
    {"name": "vae-conv", "z_dim": 4, "channels": 8, "likelihood": "bernoulli"},
    {"name": "beta-vae", "z_dim": 4, "arch": "mlp", "hidden": [32]},
    {"name": "cvae", "z_dim": 4, "channels": 8},
])
def test_each_vae_trains_samples_and_loads(tmp_path, digits, model):
    result = train(digits_config(model), tmp_path / "run", data=digits, echo=lambda m: None)
    assert result.step == 6
    rows = [line for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if line]
    assert len(rows) == 3 and '"neg_elbo"' in rows[-1] and '"kl"' in rows[-1]
    assert (tmp_path / "run" / "samples.png").is_file()

    loaded = aigc.load(tmp_path / "run")
    images = loaded.sample(5, seed=1)
    assert images.shape == (5, 1, 8, 8) and 0.0 <= images.min() and images.max() <= 1.0
    assert torch.equal(images, loaded.sample(5, seed=1))
    with pytest.raises(ConfigError, match="sample option 'ema' does not apply to [a-z-]+ runs"):
        loaded.sample(2, ema=False)


def test_cvae_generates_by_label_name(digits):
    model = build_model({"name": "cvae", "z_dim": 4, "arch": "mlp", "hidden": [16]}, digits.meta)
    z = torch.zeros(2, 4)
    sevens, ones = model.decode(z, labels="7"), model.decode(z, labels=1)
    assert not torch.equal(sevens, ones)  # the label, not only z, shapes the image
    assert model.sample(3, labels=["3"]).shape == (3, 1, 8, 8)
    with pytest.raises(ConfigError, match="unknown label"):
        model.sample(1, labels="eleven")


def test_beta_weights_the_kl_term(digits):
    batch = {k: v[:16] for k, v in digits.train.items()}
    logs = {}
    for beta in (1.0, 4.0):
        torch.manual_seed(0)
        model = build_model({"name": "vae-mlp", "z_dim": 4, "hidden": [16], "beta": beta}, digits.meta)
        opts = model.configure_optimizers(digits_config({"name": "vae-mlp"}).train)
        torch.manual_seed(1)
        logs[beta] = model.training_step(batch, opts, 0)
    # same weights and noise: only the KL weight differs, and the ELBO itself does not
    assert torch.allclose(logs[1.0]["neg_elbo"], logs[4.0]["neg_elbo"])
    assert torch.allclose(logs[4.0]["loss"] - logs[1.0]["loss"], 3.0 * logs[1.0]["kl"], rtol=1e-4)


def test_dynamic_binarization_draws_afresh_but_a_seeded_one_is_fixed(digits):
    model = build_model({"name": "vae-mlp", "likelihood": "bernoulli"}, digits.meta)
    x = digits.test["x"][:20]
    a, b = model.target(x), model.target(x)
    assert set(a.unique().tolist()) <= {0.0, 1.0} and not torch.equal(a, b)
    fixed = [model.target(x, torch.Generator().manual_seed(0)) for _ in range(2)]
    assert torch.equal(*fixed)


def test_bad_settings_are_one_line_errors():
    with pytest.raises(ConfigError, match="beta"):
        digits_config({"name": "beta-vae", "beta": -1})
    with pytest.raises(ConfigError, match="did you mean 'logistic'"):
        digits_config({"name": "vae-mlp", "likelihood": "logistc"})
    with pytest.raises(ConfigError, match="arch"):
        digits_config({"name": "cvae", "arch": "transformer"})
    with pytest.raises(ConfigError, match="unknown key 'model.arch'"):
        digits_config({"name": "vae-mlp", "arch": "conv"})  # the name already says mlp


def test_resume_gives_the_same_weights_as_one_go(tmp_path, digits):
    model = {"name": "vae-mlp", "z_dim": 4, "hidden": [32], "likelihood": "bernoulli", "kl_warmup": 5}
    train(digits_config(model, steps=20), tmp_path / "once", data=digits, echo=lambda m: None)
    train(digits_config(model, steps=10), tmp_path / "twice", data=digits, echo=lambda m: None)
    train(digits_config(model, steps=20), tmp_path / "twice", resume=True, data=digits, echo=lambda m: None)
    weights = [(tmp_path / r / "checkpoints" / "step-00000020" / "model.safetensors").read_bytes()
               for r in ("once", "twice")]
    assert weights[0] == weights[1]
