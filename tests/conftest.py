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
