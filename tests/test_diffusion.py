"""Diffusion and flow matching: the maths against closed forms, the families on the trainer."""
from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import aigc
from aigc.cli import main
from aigc.config import load_config
from aigc.errors import ConfigError
from aigc.models import samplers as S
from aigc.pixels import from_signed
from aigc.train import train
from aigc.train.checkpoint import list_checkpoints

# ---------------------------------------------------------------- the maths


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_the_forward_process_run_step_by_step_matches_its_closed_form(schedule):
    abar = S.alpha_bars(schedule, 100)
    betas = 1 - abar / torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    assert (abar[1:] < abar[:-1]).all() and 0 < abar[-1] < 0.05 and abar[0] > 0.99
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((20_000, 1), 0.7, dtype=torch.float64)
    x = x0.clone()
    for t in range(60):  # q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t)
        x = (1 - betas[t]).sqrt() * x + betas[t].sqrt() * torch.randn(x.shape, generator=g, dtype=torch.float64)
    closed = S.noised(x0, torch.randn(x0.shape, generator=g, dtype=torch.float64), abar[59].expand(len(x0)))
    for sample in (x, closed):
        assert float(sample.mean()) == pytest.approx(0.7 * float(abar[59].sqrt()), abs=0.01)
        assert float(sample.var()) == pytest.approx(float(1 - abar[59]), rel=0.03)


class Velocity(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 2))

    def forward(self, x, t):
        return self.net(torch.cat([x, t.view(-1, 1).expand(len(x), 1)], 1))


def test_a_one_step_euler_flow_on_a_2d_mixture_lands_on_the_mixture_mean():
    """At t = 0 the path point is the noise alone, so the best velocity is E[data] - noise: one
    Euler step from noise gives the data's mean (and nothing of its spread)."""
    torch.manual_seed(0)
    centres = torch.tensor([[2.0, 0.0], [-1.0, 1.5], [0.5, -2.0]])
    weights = torch.tensor([0.5, 0.3, 0.2])
    mean = (weights[:, None] * centres).sum(0)
    v = Velocity()
    opt = torch.optim.Adam(v.parameters(), lr=3e-3)
    for _ in range(1500):
        data = centres[torch.multinomial(weights, 512, replacement=True)] + 0.1 * torch.randn(512, 2)
        noise, t = torch.randn(512, 2), torch.rand(512)
        loss = ((v(S.flow_point(noise, data, t), t) - (data - noise)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = S.integrate(lambda x, t: v(x, torch.full((len(x),), t)), torch.randn(4000, 2), 1, "euler")
    assert torch.allclose(out.mean(0), mean, atol=0.1)
    data_std = (centres[torch.multinomial(weights, 4000, replacement=True)]).std(0)
    assert (out.std(0) < 0.3 * data_std).all()  # gathered at the mean, as the one-step maths says


def test_the_ode_likelihood_of_a_gaussian_matches_the_exact_value():
    """Data N(0, s^2 I): the linear path's velocity is known in closed form; the ODE likelihood with
    Hutchinson's trace must give log N(x; 0, s^2 I) within 2%."""
    s, d = 0.5, 16

    def velocity(x, t):
        var = (1 - t) ** 2 + t**2 * s**2
        return x * (-(1 - t) + t * s**2) / var

    g = torch.Generator().manual_seed(0)
    x = s * torch.randn(64, d, generator=g, dtype=torch.float64)
    exact = -0.5 * (x**2).sum(1) / s**2 - d * math.log(s) - 0.5 * d * math.log(2 * math.pi)
    est = S.ode_log_likelihood(velocity, x, 100, probes=8, generator=g)
    assert float(est.mean()) == pytest.approx(float(exact.mean()), rel=0.02)
    exact_trace = S.ode_log_likelihood(velocity, x[:8], 100, exact_trace=True)
    assert torch.allclose(exact_trace, exact[:8], rtol=0.01)


def test_samplers_take_the_steps_they_are_given():
    assert S.timesteps(1000, 4) == [999, 666, 333, 0] and S.timesteps(10, 50) == list(range(9, -1, -1))
    assert S.evaluations("heun", 10) == 20 and S.evaluations("euler", 10) == 10


# ---------------------------------------------------------------- the families


def tiny(name: str, **model) -> dict:
    return {"name": f"tiny-{name}", "seed": 0, "data": {"source": "digits"},
            "model": {"name": name, "widths": [8, 16], "attention": True, "sample_steps": 4, **model},
            "train": {"steps": 6, "batch_size": 16, "lr": 2e-3, "log_every": 3, "sample_every": 0, "ckpt_every": 3,
                      "threads": 1}}


@pytest.mark.parametrize("name, model", [("diffusion", {}), ("diffusion", {"prediction": "v", "noise_schedule": "linear"}),
                                         ("flow", {"conditional": True}), ("flow", {"time_sampling": "logit-normal"}),
                                         ("flow", {"patch": 2})])
def test_each_family_trains_resumes_byte_identically_samples_and_loads(tmp_path, name, model):
    cfg = tiny(name, **model)
    train(load_config(cfg), tmp_path / "once", echo=lambda m: None)
    train(load_config(cfg, ["train.steps=3"]), tmp_path / "twice", echo=lambda m: None)
    train(load_config(cfg), tmp_path / "twice", resume=True, echo=lambda m: None)
    a, b = (load_file(str(list_checkpoints(tmp_path / r)[-1] / "model.safetensors")) for r in ("once", "twice"))
    assert a.keys() == b.keys() and any("net_ema" in k for k in a)  # the EMA copy is saved with the model
    assert all(torch.equal(a[k], b[k]) for k in a)
    loaded = aigc.load(tmp_path / "once")
    x = loaded.sample(5, seed=1)
    assert x.shape == (5, 1, 8, 8) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.equal(x, loaded.sample(5, seed=1))  # deterministic samplers: same seed, same images
    assert not torch.equal(x, loaded.sample(5, seed=2))


def test_ddim_is_deterministic_and_both_solvers_run_at_any_step_count(tmp_path):
    train(load_config(tiny("diffusion")), tmp_path / "r", echo=lambda m: None)
    loaded = aigc.load(tmp_path / "r")
    for sampler in ("ddim", "dpm++2m"):
        for steps in (1, 2, 7):
            a = loaded.sample(3, seed=0, sampler=sampler, steps=steps)
            assert torch.equal(a, loaded.sample(3, seed=0, sampler=sampler, steps=steps))


def test_guidance_zero_is_the_unconditional_model_and_one_the_conditional(tmp_path):
    train(load_config(tiny("flow", conditional=True)), tmp_path / "r", echo=lambda m: None)
    model = aigc.load(tmp_path / "r").model
    noise = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    unguided = model.sample(4, labels=[3], guidance=0.0, noise=noise)
    net, no_label = model.averaged("net"), torch.full((4,), model.num_classes)  # the "no label" class itself
    with torch.no_grad():
        null = model.run_sampler(lambda x, t: net(x, t, no_label), noise, 4, "euler", None, None)
    assert torch.equal(unguided, from_signed(null.clamp(-1, 1)))
    plain = model.sample(4, labels=[3], noise=noise)
    assert torch.equal(plain, model.sample(4, labels=[3], guidance=1.0, noise=noise))
    guided = model.sample(4, labels=[3], guidance=3.0, noise=noise)
    assert not torch.equal(plain, guided)
    model.sample_chunk = 2  # guided predictions go through the network a chunk at a time: same images
    assert torch.allclose(guided, model.sample(4, labels=[3], guidance=3.0, noise=noise), atol=1e-5)


@pytest.mark.parametrize("flags, words", [
    (["--sample-steps", "0"], "sample steps 0"),
    (["--guidance", "-1"], "guidance -1"),
    (["--sampler", "ddim"], "sampler 'ddim' is not one of Flow's"),
    (["--guidance", "2"], "guidance needs a conditional model"),
])
def test_bad_sampling_values_are_one_line_through_the_cli_and_the_api(tmp_path, capsys, flags, words):
    train(load_config(tiny("flow")), tmp_path / "r", echo=lambda m: None)
    assert main(["sample", str(tmp_path / "r"), "--n", "2", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and words in err and "\n" not in err
    key = {"--sample-steps": "steps", "--guidance": "guidance", "--sampler": "sampler"}[flags[0]]
    value = {"steps": int, "guidance": float, "sampler": str}[key](flags[1])
    with pytest.raises(ConfigError, match=words.split("'")[0].strip()):
        aigc.load(tmp_path / "r").sample(2, **{key: value})


def test_explore_shows_the_path_from_noise_and_walks_between_noises(tmp_path):
    from PIL import Image

    train(load_config(tiny("diffusion")), tmp_path / "r", echo=lambda m: None)
    assert main(["explore", str(tmp_path / "r"), "--trajectory", "--interpolate", "--rows", "3", "--steps", "5",
                 "--out", str(tmp_path / "x")]) == 0
    strip = Image.open(tmp_path / "x" / "trajectory-noise-to-image.png")
    walk = Image.open(tmp_path / "x" / "interpolate-random-latents.png")
    assert strip.size == (5 * 10 + 2, 3 * 10 + 2)  # the noise + 4 sampler steps, 3 rows of 8x8 tiles
    assert walk.size == (5 * 10 + 2, 3 * 10 + 2)
    model = aigc.load(tmp_path / "r").model
    path = model.trajectory(2, generator=torch.Generator().manual_seed(0))
    again = model.sample(2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(path[:, -1], again)  # the strip ends on the sample itself
    assert main(["explore", str(tmp_path / "r"), "--traverse"]) == 2  # no encoder: one line


def test_an_untrained_flow_is_a_standard_gaussian_so_its_dequantized_likelihood_is_known():
    """The U-Net's output layer starts at zero, so before training the velocity is 0 and the flow's
    density is N(0, I) on [-1, 1): the 8-bit bits/dim then follow from the dequantization alone."""
    from aigc.metrics.likelihood import density_report
    from aigc.models.capabilities import DensityLikelihood
    from aigc.models.diffusion import Flow, FlowConfig

    model = Flow(FlowConfig(widths=[8, 16]), {"shape": [1, 8, 8]})
    assert isinstance(model, DensityLikelihood) and model.dims == 64
    x = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    rep = density_report(model, x, n_images=40, steps=4, seed=3)
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    signed = (x.double() + u) * (2 / 256) - 1
    nll = 0.5 * (signed ** 2).sum((1, 2, 3)) + 32 * math.log(2 * math.pi) - 64 * math.log(2 / 256)
    assert rep["rows"][0]["nll_nats"] == pytest.approx(float(nll.mean()), rel=1e-6)
    assert rep["rows"][0]["bits_per_dim"] == pytest.approx(float(nll.mean()) / (64 * math.log(2)), rel=1e-6)


def test_eval_reports_a_trained_flows_likelihood_in_bits_per_dim(tmp_path):
    import json

    train(load_config(tiny("flow"), ["train.steps=30"]), tmp_path / "r", echo=lambda m: None)
    assert main(["eval", str(tmp_path / "r"), "--n", "160", "--metrics", "likelihood", "--likelihood-n", "32",
                 "--no-floor"]) == 0
    (section,) = json.loads((tmp_path / "r" / "eval.json").read_text())["sections"]
    assert section["name"] == "likelihood" and section["n"] == 32 and "dequantized" in section["note"]
    from aigc.config import DataConfig
    from aigc.data import load_dataset
    from aigc.metrics.likelihood import density_report
    from aigc.models.diffusion import Flow, FlowConfig

    test = load_dataset(DataConfig(source="digits")).split("test")["x"]
    untrained = density_report(Flow(FlowConfig(widths=[8, 16]), {"shape": [1, 8, 8]}), test, n_images=32, steps=4)
    assert 0 < section["values"]["ode_bits_per_dim"] < untrained["rows"][0]["bits_per_dim"] - 0.5


def test_a_recipe_sets_the_default_sampler_guidance_and_bf16_sampling(tmp_path):
    cfg = tiny("flow", conditional=True, guidance=2.0, sampler="heun", sample_precision="bf16")
    train(load_config(cfg), tmp_path / "r", echo=lambda m: None)
    model = aigc.load(tmp_path / "r").model
    noise = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    default = model.sample(4, labels=[3], noise=noise)
    assert torch.equal(default, model.sample(4, labels=[3], noise=noise, guidance=2.0, sampler="heun"))
    assert not torch.equal(default, model.sample(4, labels=[3], noise=noise, guidance=1.0))
    model.cfg.sample_precision = "fp32"  # bf16 convolutions move pixels a little, not the picture
    exact = model.sample(4, labels=[3], noise=noise)
    assert not torch.equal(default, exact) and float((default - exact).abs().mean()) < 0.02


@pytest.mark.parametrize("model, words", [
    ({"guidance": 2.0}, "model.guidance is 2.0 but the model has no labels"),
    ({"sampler": "ddim"}, "model.sampler is 'ddim'"),
    ({"sample_precision": "fp16"}, "model.sample_precision is 'fp16'"),
    ({"patch": 3}, "model.patch is 3"),
    ({"patch": 4, "widths": [8, 16, 32]}, "pictures of 8x8 are too small for 3 levels at patch 4"),
])
def test_bad_sampling_defaults_in_a_config_are_one_line(tmp_path, capsys, model, words):
    import yaml

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(tiny("flow", **model)))
    assert main(["train", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and words in err and "\n" not in err
