"""A run directory and the model in it: config.yaml, data.json, checkpoints, and sampling with checked options.

Shared by the API, the trainer, the metrics and the CLI, so none of them imports another to open a
run: the trainer writes what this reads; `aigc.load` is `load` below.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import yaml

from .config import Config, family_train_defaults, from_dict, model_config, upgrade
from .errors import CheckpointError, ConfigError
from .models.base import GenerativeModel, parse_sample_options
from .tensorfile import check_safetensors
from .train.checkpoint import find_checkpoint, load_checkpoint
from .train.ema import attach_ema


def build_model(model_section: dict[str, Any], meta: dict[str, Any]) -> GenerativeModel:
    """Config section `{name: ..., **params}` + data facts -> a model with the EMA copies it names."""
    from .plugins import MODELS

    cls = MODELS.get(str(model_section["name"]))
    return attach_ema(cls(model_config(model_section), meta))


def read_run_config(run_dir: Path) -> Config:
    """config.yaml of a run, upgraded from older layouts and checked."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)", "give the folder `aigc train` wrote")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid YAML: {e}", "restore the run's config.yaml") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds no mapping", "restore the run's config.yaml")
    cfg = from_dict(Config, family_train_defaults(upgrade(data)))
    cfg.check()
    return cfg


def read_meta(run_dir: Path) -> dict[str, Any]:
    """data.json: the facts about the training data the model was built for."""
    try:
        meta = json.loads((Path(run_dir) / "data.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{run_dir}/data.json is missing or damaged: {e}", "restore it from the run") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{run_dir}/data.json holds no mapping", "restore it from the run")
    return meta


class Loaded:
    """A trained model plus the facts of its run; `sample()` is the thing you want.

    The model stays in eval mode and sampling never changes it, so threads may share one Loaded.
    """

    def __init__(self, model: GenerativeModel, run_dir: Path, checkpoint: Path, config: Config):
        self.model, self.run_dir, self.checkpoint, self.config = model, run_dir, checkpoint, config

    @property
    def modality(self) -> str:
        return self.model.modality

    @property
    def class_names(self) -> list[str]:
        return list(self.model.meta.get("class_names") or [])

    @property
    def what(self) -> str:
        return f"{self.config.model['name']} runs"

    def sample_options(self, **options: Any) -> dict[str, Any]:
        """The family's full, checked options for these (one ConfigError naming a bad one)."""
        return asdict(parse_sample_options(self.model.SampleOptions, options, self.what))

    def sample(self, n: int = 16, *, seed: int | None = None, **options: Any) -> Any:
        """n samples (images: float [n, C, H, W] in [0, 1]; text: a list of strings).

        Options are the family's (`model.SampleOptions`): e.g. labels= and ema= for GANs,
        temperature=, top_k=, prompt= for text. An unknown or impossible one is a ConfigError.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"n is {n!r}", "ask for at least one sample")
        opts = self.sample_options(**options)
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        return self.model.sample(n, generator=g, **opts)

    def sample_pil(self, n: int = 16, **kwargs: Any):
        """Images as one PIL grid (see aigc.io.to_pil for single images)."""
        from .io import to_pil

        return to_pil(self.sample(n, **kwargs))

    def __repr__(self) -> str:
        return f"Loaded({self.config.model['name']}, {self.run_dir}, {self.checkpoint.name})"


def load(run_dir: str | Path, checkpoint: str = "latest") -> Loaded:
    """Rebuild a run's model from config.yaml + data.json and its newest intact checkpoint.

    `checkpoint` may be "latest", "best" (marked by evaluation during training) or a name like
    "step-00001000". Only safetensors, JSON and YAML are read: nothing is unpickled.
    """
    run_dir = Path(run_dir)
    if run_dir.is_file():
        check_safetensors(run_dir)  # refuses pickles with a reason before anything else
        raise CheckpointError(f"{run_dir} is a file", "give the run directory that holds config.yaml")
    cfg = read_run_config(run_dir)
    model = build_model(cfg.model, read_meta(run_dir))
    ckpt = find_checkpoint(run_dir, checkpoint, warn=lambda m: None)
    if ckpt is None:
        raise CheckpointError(f"{run_dir} has no intact checkpoint", "train it first, or resume it with --resume")
    load_checkpoint(ckpt, model)
    model.eval()
    return Loaded(model, run_dir, ckpt, cfg)
