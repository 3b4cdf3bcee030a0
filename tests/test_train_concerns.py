"""What the trainer applies to every family: schedules, clipping, EMA, and runs written before they moved."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from safetensors.torch import load_file

import aigc
from aigc.config import load_config
from aigc.train import train
from aigc.train.schedule import StepHooks, lr_factor

from .conftest import tiny_gan


def test_schedules_warm_up_then_decay_to_their_floor():
    assert [lr_factor(s, 10, "constant", 4) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert lr_factor(9, 10, "linear", 0, 0.1) == pytest.approx(1 - 0.9 * 0.9)
    assert lr_factor(10, 10, "cosine", 0, 0.1) == pytest.approx(0.1)
    assert lr_factor(0, 10, "cosine", 0, 0.1) == pytest.approx(1.0)


def test_clipping_bounds_each_optimizers_own_gradient_norm():
    """A real SGD step through the trainer's hooks: the update is lr x the clipped gradient."""
    net = torch.nn.ModuleDict({"a": torch.nn.Linear(4, 4, bias=False), "b": torch.nn.Linear(4, 1, bias=False)})
    opts = {"a": torch.optim.SGD(net["a"].parameters(), lr=0.1), "b": torch.optim.SGD(net["b"].parameters(), lr=0.1)}
    cfg = load_config({"train": {"grad_clip": 0.5, "schedule": "linear", "steps": 4}}).train
    hooks = StepHooks(net, opts, cfg)
    hooks.step = 2
    before = [p.detach().clone() for p in net.parameters()]
    for p in net.parameters():
        p.grad = torch.full_like(p, 3.0)
    opts["a"].step()
    opts["b"].step()
    factor = lr_factor(2, 4, "linear", 0, 0.1)
    for p, old in zip(net.parameters(), before, strict=True):
        moved = (old - p.detach()).norm()
        assert moved == pytest.approx(0.1 * factor * 0.5, rel=1e-5)  # each optimizer's norm clipped to 0.5
    assert opts["a"].param_groups[0]["lr"] == 0.1                     # the nominal rate is restored


def test_a_gan_gets_the_schedule_too(tmp_path):
    cfg = load_config(tiny_gan())
    cfg.train.schedule, cfg.train.warmup, cfg.train.log_every = "cosine", 5, 1
    train(cfg, tmp_path / "run", echo=lambda m: None)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in rows]
    assert lrs[:5] == pytest.approx([2e-4 * (s + 1) / 5 for s in range(5)]) and lrs[-1] < lrs[5]


def old_layout(run, step: int, text: bool) -> None:
    """Rewrite a run as aigc wrote it before the platform change: no train.schedule/warmup/min_lr/
    grad_clip keys; a text family's schedule given under model, its clipping (norm 1) and cosine
    floor left to the family's defaults; no EMA update count in state.json."""
    path = run / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    for key in ("schedule", "warmup", "min_lr", "grad_clip"):
        value = cfg["train"].pop(key)
        if text and key in ("schedule", "warmup"):
            cfg["model"][key] = value
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    state_path = run / "checkpoints" / f"step-{step:08d}" / "state.json"
    state = json.loads(state_path.read_text())
    state.pop("ema_updates")
    state_path.write_text(json.dumps(state))


@pytest.mark.parametrize("kind", ["gan", "text"])
def test_runs_written_before_the_change_load_and_resume_exactly(tmp_path, kind):
    if kind == "gan":
        cfg = load_config(tiny_gan(loss="wgan-gp", n_critic=2))  # the EMA steps every second step
    else:
        lines = tmp_path / "names.txt"
        lines.write_text("\n".join(["anna", "bob", "carla", "dave", "emma", "fred"] * 10) + "\n")
        cfg = load_config({"name": "t", "data": {"source": f"lines:{lines}"},
                           "model": {"name": "gru", "embed": 8, "hidden": 16, "dropout": 0.1},
                           "train": {"steps": 20, "batch_size": 8, "ckpt_every": 10, "sample_every": 0,
                                     "threads": 1, "progress": False, "schedule": "cosine", "warmup": 3}})
        assert cfg.train.grad_clip == 1.0  # the text families' own default
    once, twice = tmp_path / "once", tmp_path / "twice"
    train(cfg, once, echo=lambda m: None)
    train(cfg, twice, echo=lambda m: None)
    shutil.rmtree(twice / "checkpoints" / "step-00000020")
    old_layout(twice, 10, text=kind == "text")
    assert aigc.load(twice).sample(2, seed=0) is not None  # loads as it is
    train(cfg, twice, resume=True, echo=lambda m: None)
    for name in ("model.safetensors", "optim.safetensors"):
        a = load_file(str(once / "checkpoints" / "step-00000020" / name))
        b = load_file(str(twice / "checkpoints" / "step-00000020" / name))
        assert all(torch.equal(a[k], b[k]) for k in a), name
