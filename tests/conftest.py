"""Shared fixtures: tiny configs that train in well under a second, and an isolated cache."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets the same session cache, never the user's ~/.cache, and no downloads."""
    monkeypatch.setenv("AIGC_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("AIGC_OFFLINE", "1")


@pytest.fixture(scope="session")
def fashion_features(tmp_path_factory):
    """Fashion-MNIST and the shipped feature network, loaded once (the session cache, never the user's)."""
    from aigc.config import DataConfig
    from aigc.data import load_dataset
    from aigc.metrics.features import feature_net_for

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIGC_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        data = load_dataset(DataConfig(source="fashion-mnist"))
    return data, feature_net_for(data, echo=lambda m: None)


def tiny_gan(**model: Any) -> dict[str, Any]:
    """A digits MLP GAN small enough for many tests."""
    return {
        "name": "tiny",
        "seed": 0,
        "data": {"source": "digits"},
        "model": {"name": "gan-mlp", "z_dim": 8, "g_hidden": [32], "d_hidden": [32], **model},
        "train": {"steps": 20, "batch_size": 32, "log_every": 5, "sample_every": 10, "ckpt_every": 10,
                  "progress": False, "threads": 1},
    }


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python -m aigc ARGS` in a subprocess, as a user would run it."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "aigc", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=300)


SERVE_NAMES = ["anna", "maria", "mark", "martin", "marta", "paul", "paula", "peter", "petra", "john", "joan", "jane"] * 5


@pytest.fixture(scope="session")
def serve_runs(tmp_path_factory):
    """What the service tests serve: a conditional digits GAN, a conditional flow and a names GRU, each
    trained for a few steps (once a session)."""
    from aigc.config import load_config
    from aigc.train import train

    root = tmp_path_factory.mktemp("serve-runs")
    quick = {"log_every": 5, "sample_every": 0, "ckpt_every": 10, "threads": 1, "progress": False}
    lines = root / "names.txt"
    lines.write_text("\n".join(SERVE_NAMES) + "\n", encoding="utf-8")
    configs = {
        "cgan": {"name": "cgan", "seed": 0, "data": {"source": "digits"},
                 "model": {"name": "gan-mlp", "z_dim": 8, "g_hidden": [32], "d_hidden": [32], "conditional": True},
                 "train": {"steps": 10, "batch_size": 32, **quick}},
        "flow": {"name": "flow", "seed": 0, "data": {"source": "digits"},
                 "model": {"name": "flow", "widths": [8, 16], "attention": False, "sample_steps": 4,
                           "conditional": True},
                 "train": {"steps": 4, "batch_size": 16, **quick}},
        "names": {"name": "names", "seed": 0, "data": {"source": f"lines:{lines}", "test_fraction": 0.1},
                  "model": {"name": "gru", "embed": 8, "hidden": 32},
                  "train": {"steps": 20, "batch_size": 8, "lr": 0.01, **quick}},
    }
    for name, cfg in configs.items():
        train(load_config(cfg), root / name, echo=lambda m: None)
    return {name: root / name for name in configs}
