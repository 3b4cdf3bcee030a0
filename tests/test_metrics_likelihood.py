"""Pixel likelihoods against references, and the ELBO / IWAE bounds against an exact log p(x)."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import AffineTransform, SigmoidTransform, TransformedDistribution, Uniform

from aigc.errors import ConfigError
from aigc.metrics.likelihood import (
    bits_per_dim,
    has_likelihood,
    likelihood_markdown,
    likelihood_report,
)
from aigc.models.vae_nets import Bernoulli, DiscretizedLogistic
from aigc.run import build_model

ALL_VALUES = torch.arange(256, dtype=torch.uint8).view(256, 1, 1, 1)


@pytest.mark.parametrize("mu,log_s", [(0.0, 0.0), (-1.0, -7.0), (0.3, -4.0), (1.5, -2.0), (-0.2, 2.0)])
def test_discretized_logistic_sums_to_one_over_256_values(mu, log_s):
    lik = DiscretizedLogistic()
    out = torch.tensor([mu, log_s]).view(1, 2, 1, 1).expand(256, 2, 1, 1)
    logp = lik.log_prob(lik.target(ALL_VALUES), out).double()
    assert torch.isfinite(logp).all()
    assert torch.logsumexp(logp, 0).exp().item() == pytest.approx(1.0, abs=1e-5)


def test_discretized_logistic_matches_bin_masses_of_a_logistic():
    torch.manual_seed(0)
    lik = DiscretizedLogistic()
    x = torch.randint(1, 255, (500,), dtype=torch.uint8).view(500, 1, 1, 1)  # interior bins
    mu, log_s = torch.rand(500) * 2 - 1, torch.rand(500) * 4 - 5
    ours = lik.log_prob(lik.target(x), torch.stack([mu, log_s], 1).view(500, 2, 1, 1))
    logistic = TransformedDistribution(Uniform(torch.zeros(500).double(), torch.ones(500).double()),
                                       [SigmoidTransform().inv, AffineTransform(mu.double(), log_s.double().exp())])
    centre = x.view(-1).double() / 127.5 - 1
    mass = logistic.cdf(centre + 1 / 255) - logistic.cdf(centre - 1 / 255)
    resolved = mass > 1e-12  # the double-precision reference cancels to 0 in the far tails ...
    assert resolved.sum() > 300
    assert torch.allclose(ours.double()[resolved], mass.log()[resolved], atol=1e-4)
    assert torch.isfinite(ours).all() and (ours[~resolved] < math.log(1e-12)).all()  # ... ours does not


def test_bernoulli_matches_torch_distributions():
    torch.manual_seed(0)
    logits = torch.randn(4, 1, 3, 3) * 3
    target = torch.bernoulli(torch.full((4, 1, 3, 3), 0.4))
    ref = torch.distributions.Bernoulli(logits=logits).log_prob(target).flatten(1).sum(1)
    assert torch.allclose(Bernoulli().log_prob(target, logits), ref, atol=1e-5)


def test_bits_per_dim_converts_nats_per_image():
    assert bits_per_dim(784 * math.log(2), 784) == pytest.approx(1.0)


# ---------------------------------------------------------------- bounds on a tiny model

TWO_PIXELS = {"shape": [1, 1, 2]}
ALL_X = torch.tensor([[0, 0], [0, 255], [255, 0], [255, 255]], dtype=torch.uint8).view(4, 1, 1, 2)


@pytest.fixture(scope="module")
def tiny_vae():
    """A 1-d latent VAE on 2-pixel binary data (pixels agree 80% of the time), with a q made poor.

    The shifted, widened q(z|x) keeps the ELBO visibly loose, so the bounds have room to rise.
    """
    torch.set_num_threads(1)  # tiny tensors: extra threads only contend on a shared CPU
    torch.manual_seed(0)
    model = build_model({"name": "vae-mlp", "z_dim": 1, "hidden": [16], "likelihood": "bernoulli"}, TWO_PIXELS)
    opt = {"vae": torch.optim.Adam(model.parameters(), lr=1e-2)}
    data = ALL_X[torch.multinomial(torch.tensor([0.4, 0.1, 0.1, 0.4]), 4000, replacement=True)]
    for step in range(150):
        model.training_step({"x": data[step * 20:(step + 1) * 20]}, opt, step)
    with torch.no_grad():
        model.encoder.head.bias += torch.tensor([0.7, 1.0])  # mu + 0.7, log variance + 1
    return model.eval()


def exact_log_px(model, x: torch.Tensor) -> torch.Tensor:
    """log integral p(x|z) N(z; 0, 1) dz by the trapezoid rule on a fine grid."""
    z = torch.linspace(-12, 12, 40001).view(-1, 1)
    with torch.no_grad():
        logits = model.decoder(z)
    log_prior = -0.5 * (z.view(-1) ** 2 + math.log(2 * math.pi))
    out = []
    for xi in model.target(x):
        integrand = (model.lik.log_prob(xi.expand(len(z), 1, 1, 2), logits) + log_prior).double().exp()
        out.append(torch.trapezoid(integrand, z.view(-1).double()).log())
    return torch.stack(out)


def test_exact_likelihood_of_the_tiny_model_is_a_distribution(tiny_vae):
    assert exact_log_px(tiny_vae, ALL_X).exp().sum().item() == pytest.approx(1.0, abs=1e-6)


def test_iwae_rises_with_k_to_the_exact_log_likelihood(tiny_vae):
    exact = exact_log_px(tiny_vae, ALL_X)
    g = torch.Generator().manual_seed(0)
    reps = 20
    log_w = tiny_vae.log_weights(tiny_vae.target(ALL_X.repeat(reps, 1, 1, 1)), None, 5000, chunk=2048,
                                 generator=g).view(reps, 4, 5000).permute(1, 0, 2).reshape(4, -1)

    def bound(k: int) -> torch.Tensor:  # IWAE_k per x, averaged over disjoint blocks of k draws
        blocks = log_w.view(4, -1, k)
        return (torch.logsumexp(blocks, 2) - math.log(k)).mean(1).double()

    elbo, iwae = log_w.mean(1).double(), {k: bound(k) for k in (10, 100, 5000)}
    assert (elbo < iwae[10]).all() and (iwae[10] < iwae[100]).all() and (iwae[100] < iwae[5000]).all()
    assert (iwae[5000] <= exact + 2e-3).all()            # a lower bound ...
    assert torch.allclose(iwae[5000], exact, atol=5e-3)  # ... that is tight at k = 5000
    assert (exact - elbo).min() > 0.1                    # while the ELBO is visibly loose


def test_likelihood_report_orders_bounds_and_converts_units(tiny_vae):
    x = ALL_X.repeat(50, 1, 1, 1)
    report = likelihood_report(tiny_vae, x, ks=(200, 1, 10), n_images=None, batch=16)
    nll = [r["nll_nats"] for r in report["rows"]]
    assert [r["k"] for r in report["rows"]] == [1, 10, 200] and nll[0] > max(nll[1:]) + 0.1
    assert report["rows"][2]["bits_per_dim"] == pytest.approx(nll[2] / (2 * math.log(2)))
    exact = -exact_log_px(tiny_vae, x).mean().item()
    assert nll[2] == pytest.approx(exact, abs=0.02)
    assert "binarization" in report and report["literature"][0]["nats"] == 86.76
    table = likelihood_markdown(report)
    assert "IWAE k=200" in table and "86.76" in table


def test_binarized_test_set_is_the_same_for_every_call(tiny_vae):
    x = torch.full((40, 1, 1, 2), 128, dtype=torch.uint8)  # every pixel a coin flip
    a = likelihood_report(tiny_vae, x, ks=(1,), n_images=None)
    b = likelihood_report(tiny_vae, x, ks=(1,), n_images=None)
    assert a["rows"] == b["rows"]


def test_report_refuses_models_without_likelihood_and_bad_k(tiny_vae):
    gan = build_model({"name": "gan-mlp", "z_dim": 2, "g_hidden": [4], "d_hidden": [4]}, TWO_PIXELS)
    assert has_likelihood(tiny_vae) and not has_likelihood(gan)
    with pytest.raises(ConfigError, match="no likelihood"):
        likelihood_report(gan, ALL_X)
    with pytest.raises(ConfigError, match="at least 1"):
        likelihood_report(tiny_vae, ALL_X, ks=(0, 10))
