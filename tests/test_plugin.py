"""A new modality and a new family are plug-ins: 2-D point clouds, defined in this file alone.

Nothing in aigc knows "points": the modality (saved as a CSV and a scatter PNG, measured by a
sliced Wasserstein distance), the data source and the family (a tiny GAN with an EMA generator)
are registered here, then trained, resumed, sampled, evaluated and loaded through the public API.
A second test installs a family through an entry point of a package on disk, as pip would.
"""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

import aigc
from aigc.config import load_config
from aigc.data import Dataset
from aigc.errors import ConfigError
from aigc.metrics import EvalRequest, evaluate_real, evaluate_run
from aigc.modalities import Modality
from aigc.models import GenerativeModel, SampleOptions
from aigc.models.capabilities import LatentSpace
from aigc.plugins import DATA_SOURCES, MODALITIES, MODELS, load_entry_points
from aigc.train import train

from .conftest import ROOT

CENTRE = torch.tensor([3.0, -2.0])


# ---------------------------------------------------------------- the modality


def sliced_w1(a: torch.Tensor, b: torch.Tensor, projections: int = 64) -> float:
    """Sliced Wasserstein-1 between two equal-sized point sets (sorted 1-D projections)."""
    g = torch.Generator().manual_seed(0)
    dirs = F.normalize(torch.randn(projections, 2, generator=g), dim=1)
    pa, pb = (a @ dirs.T).sort(0).values, (b @ dirs.T).sort(0).values
    return float((pa - pb).abs().mean())


class PointsModality(Modality):
    name = "points"
    formats = ("csv", "png")
    prints = True

    def save(self, samples: torch.Tensor, path: Path, fmt: str | None = None, **layout: Any) -> Path:
        fmt = self.format_for(Path(path), fmt)
        out = Path(path).with_suffix(f".{fmt}")
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            np.savetxt(out, samples.numpy(), delimiter=",", header="x,y", comments="", fmt="%.6f")
        else:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(3, 3))
            ax.scatter(samples[:, 0], samples[:, 1], s=4)
            fig.savefig(out, dpi=60)
            plt.close(fig)
        return out

    def to_text(self, samples: torch.Tensor) -> str:
        return "\n".join(f"{x:.4f},{y:.4f}" for x, y in samples.tolist())

    def log_samples(self, tb: Any, samples: torch.Tensor, step: int) -> None:
        tb.add_scalar("points/mean_x", float(samples[:, 0].mean()), step)

    def evaluate(self, loaded: Any, data: Dataset, request: EvalRequest) -> dict[str, Any]:
        real = data.split(request.split)["x"]
        n = min(request.n_or(400), len(real))
        fake = loaded.sample(n, seed=request.seed)
        return {"sliced_w1": sliced_w1(fake, real[:n]), "n": n}

    def evaluate_real(self, data: Dataset, request: EvalRequest) -> dict[str, Any]:
        n = min(request.n_or(400), len(data.test["x"]), len(data))
        return {"sliced_w1": sliced_w1(data.train["x"][:n], data.test["x"][:n]), "n": n}


def points_source(cfg: Any, arg: str | None) -> Dataset:
    """`points:N`: N training and N/4 test points around CENTRE (seeded by data.split_seed)."""
    n = int(arg)
    g = torch.Generator().manual_seed(cfg.split_seed)
    x = CENTRE + 0.5 * torch.randn(n + n // 4, 2, generator=g)
    return Dataset(f"points-{n}", "points", {"x": x[:n]}, {"x": x[n:]}, {"shape": [2], "source": cfg.source})


# ---------------------------------------------------------------- the family


@dataclass
class PointGANConfig:
    z_dim: int = 2
    hidden: int = 32
    ema: float = 0.9

    def check(self) -> None:
        if self.hidden <= 0:
            raise ConfigError(f"model.hidden is {self.hidden}", "use a positive width")


@dataclass
class PointSampleOptions(SampleOptions):
    spread: float = 1.0  # scales the latent noise

    def check(self) -> None:
        if not self.spread > 0:
            raise ConfigError(f"spread is {self.spread}", "use a positive number")


def mlp(i: int, h: int, o: int) -> nn.Module:
    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, o))


class PointGAN(GenerativeModel, LatentSpace):
    modality = "points"
    Config = PointGANConfig
    SampleOptions = PointSampleOptions

    def __init__(self, cfg: PointGANConfig, meta: dict[str, Any]):
        super().__init__(cfg, meta)
        self.G, self.D = mlp(cfg.z_dim, cfg.hidden, 2), mlp(2, cfg.hidden, 1)

    @property
    def latent_dim(self) -> int:
        return self.cfg.z_dim

    def ema_modules(self) -> dict[str, float]:
        return {"G": self.cfg.ema}

    def configure_optimizers(self, train: Any) -> dict[str, torch.optim.Optimizer]:
        return {"d": torch.optim.Adam(self.D.parameters(), lr=train.lr, betas=tuple(train.betas)),
                "g": torch.optim.Adam(self.G.parameters(), lr=train.lr, betas=tuple(train.betas))}

    def training_step(self, batch, opts, step):
        x = batch["x"]
        fake = self.G(torch.randn(len(x), self.cfg.z_dim))
        d_loss = F.softplus(-self.D(x)).mean() + F.softplus(self.D(fake.detach())).mean()
        opts["d"].zero_grad(set_to_none=True)
        d_loss.backward()
        opts["d"].step()
        g_loss = F.softplus(-self.D(fake)).mean()
        opts["g"].zero_grad(set_to_none=True)
        g_loss.backward()
        opts["g"].step()
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    @torch.no_grad()
    def decode(self, z: torch.Tensor, labels: Any = None) -> torch.Tensor:
        return self.averaged("G")(z)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, spread: float = 1.0) -> torch.Tensor:
        return self.decode(spread * torch.randn(n, self.cfg.z_dim, generator=generator))


@pytest.fixture(scope="module")
def points_plugin():
    MODALITIES.register("points")(PointsModality())
    DATA_SOURCES.register("points", modality="points")(points_source)
    MODELS.register("point-gan")(PointGAN)
    yield
    MODALITIES.unregister("points")
    DATA_SOURCES.unregister("points")
    MODELS.unregister("point-gan")


def points_config(steps: int) -> Any:
    return load_config({
        "name": "points", "seed": 0, "data": {"source": "points:512"}, "model": {"name": "point-gan"},
        "train": {"steps": steps, "batch_size": 64, "lr": 2e-3, "betas": [0.5, 0.99], "log_every": 10,
                  "sample_every": 100, "ckpt_every": 100, "keep_last": 10, "progress": False, "threads": 1,
                  "schedule": "cosine", "warmup": 20, "grad_clip": 5.0},
    })


def tensors(run: Path, step: int) -> dict[str, torch.Tensor]:
    ckpt = run / "checkpoints" / f"step-{step:08d}"
    return {**load_file(str(ckpt / "model.safetensors")),
            **{f"optim/{k}": v for k, v in load_file(str(ckpt / "optim.safetensors")).items()}}


def test_a_new_modality_and_family_train_resume_sample_evaluate_and_load(points_plugin, tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(points_config(300), whole, echo=lambda m: None)
    train(points_config(300), split, echo=lambda m: None)
    for late in ("step-00000200", "step-00000300"):  # as if killed after step 100's checkpoint
        shutil.rmtree(split / "checkpoints" / late)
    train(points_config(300), split, resume=True, echo=lambda m: None)
    a, b = tensors(whole, 300), tensors(split, 300)
    assert a.keys() == b.keys() and "g_ema.shadow.0.weight" in a
    assert all(torch.equal(a[k], b[k]) for k in a), "resume is not byte-identical"

    # the modality wrote the samples and the report shows them
    assert (whole / "samples.csv").is_file() and (whole / "samples" / "step-00000100.csv").is_file()
    with open(whole / "samples.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["x", "y"] and len(rows) == 65
    assert "## Samples" in (whole / "report.md").read_text()

    # loaded through the public API, with the family's own, validated sample options
    gen = aigc.load(whole)
    points = gen.sample(400, seed=1)
    assert points.shape == (400, 2) and torch.equal(points, gen.sample(400, seed=1))
    assert gen.sample(400, seed=1, spread=0.0001).std(0).max() < 0.05
    with pytest.raises(ConfigError, match="sample option 'temperature' does not apply to point-gan runs"):
        gen.sample(3, temperature=0.5)
    with pytest.raises(ConfigError, match="spread is -1"):
        gen.sample(3, spread=-1)
    with pytest.raises(ConfigError, match="must be a number"):
        gen.sample(3, spread="wide")

    # evaluated by the modality's evaluator: training moved the samples onto the data
    trained = evaluate_run(whole, EvalRequest(n=400))
    untrained = evaluate_run(whole, EvalRequest(n=400, checkpoint="step-00000000"))
    floor = evaluate_real("points:512", EvalRequest(n=100))
    assert trained["checkpoint"] == "step-00000300"
    assert trained["sliced_w1"] < 0.25 * untrained["sliced_w1"], (trained, untrained)
    assert floor["sliced_w1"] < untrained["sliced_w1"]
    with pytest.raises(ConfigError, match="--metrics does not apply to points runs"):
        evaluate_run(whole, EvalRequest(metrics=["fid"]))

    # the trainer applied the schedule (it logs the rate) and named no family
    rows = [json.loads(line) for line in (whole / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in rows if "lr" in r]
    assert lrs[0] < 2e-3 and max(lrs) == pytest.approx(2e-3, rel=0.05) and lrs[-1] < 5e-4


ENTRY_POINT_FAMILY = '''
"""A family shipped by a package of its own: the document's MLP GAN with a wider first layer."""
from dataclasses import dataclass, field

from aigc.models.gan import MLPGAN, MLPGANConfig
from aigc.plugins import MODELS


@dataclass
class WideConfig(MLPGANConfig):
    g_hidden: list = field(default_factory=lambda: [48])
    d_hidden: list = field(default_factory=lambda: [48])


@MODELS.register("wide-gan")
class WideGAN(MLPGAN):
    Config = WideConfig
'''


def install_fake_distribution(site: Path) -> None:
    """What `pip install` leaves: a module and a dist-info folder whose entry_points.txt names it."""
    (site / "aigc_wide_plugin.py").write_text(ENTRY_POINT_FAMILY)
    info = site / "aigc_wide_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: aigc-wide-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[aigc.families]\nwide-gan = aigc_wide_plugin\n")


def test_a_family_from_an_installed_package_registers_through_its_entry_point(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    install_fake_distribution(site)

    # in a fresh process, as a user runs it: the CLI trains and samples the plug-in's family
    env = {"PYTHONPATH": f"{site}:{ROOT / 'src'}"}
    cfg = tmp_path / "wide.yaml"
    cfg.write_text(textwrap.dedent("""
        name: wide
        data: {source: digits}
        model: {name: wide-gan, z_dim: 8}
        train: {steps: 12, batch_size: 32, log_every: 4, sample_every: 0, ckpt_every: 6, threads: 1, progress: false}
    """))
    run = tmp_path / "run"
    for args in (["train", str(cfg), "--out", str(run), "--quiet"], ["sample", str(run), "--n", "4"]):
        done = subprocess.run([sys.executable, "-m", "aigc", *args], capture_output=True, text=True, timeout=300,
                              env={**__import__("os").environ, **env})
        assert done.returncode == 0, done.stderr
    assert (run / "sample.png").is_file()
    assert load_file(str(run / "checkpoints" / "step-00000012" / "model.safetensors"))["G.net.0.weight"].shape[0] == 48

    # and in this process, once the package is importable
    monkeypatch.syspath_prepend(str(site))
    try:
        assert "wide-gan" in load_entry_points()
        assert "wide-gan" in MODELS
        assert aigc.load(run).sample(3, seed=0).shape == (3, 1, 8, 8)
    finally:
        MODELS.unregister("wide-gan")
        sys.modules.pop("aigc_wide_plugin", None)


def test_a_broken_plugin_is_one_warning_not_a_crash(tmp_path):
    site = tmp_path / "site"
    info = site / "broken-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[aigc.families]\nbroken = no_such_module_here\n")
    done = subprocess.run([sys.executable, "-m", "aigc", "train", "digits-gan", "--steps", "2", "--quiet",
                           "--set", "train.threads=1", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": f"{site}:{ROOT / 'src'}"})
    assert done.returncode == 0 and (tmp_path / "run" / "samples.png").is_file()
    warnings = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and "plug-in 'broken'" in warnings[0] and "no_such_module_here" in warnings[0]
