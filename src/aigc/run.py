"""A run directory and the model in it: config.yaml, data.json, checkpoints, and sampling with checked options.

Shared by the API, the trainer, the metrics and the CLI, so none of them imports another to open a
run: the trainer writes what this reads; `aigc.load` is `load` below.
"""
from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch
import yaml

from .config import Config, family_train_defaults, from_dict, model_config, safe_yaml, upgrade
from .devices import on_device, resolve_device, to_cpu
from .errors import CheckpointError, ConfigError, UserError
from .limits import (
    MAX_CONFIG_BYTES,
    MAX_JSON_BYTES,
    MAX_PARAMETERS,
    MAX_SEED,
    check_int,
    check_meta,
)
from .models.base import GenerativeModel, parse_sample_options
from .tensorfile import check_safetensors
from .train.checkpoint import find_checkpoint, load_checkpoint
from .train.ema import attach_ema


def build_model(model_section: dict[str, Any], meta: dict[str, Any]) -> GenerativeModel:
    """Config section `{name: ..., **params}` + data facts -> a model with the EMA copies it names.

    The model is first built on the meta device (no memory, no random numbers), so one whose
    parameters would not fit is refused in one line before anything is allocated.
    """
    from .plugins import MODELS

    cls = MODELS.get(str(model_section["name"]))
    cfg = model_config(model_section)
    try:
        with torch.device("meta"):
            size = sum(p.numel() for p in cls(cfg, meta).parameters())
    except UserError:
        raise
    except Exception:  # a family whose set-up cannot run on the meta device is simply built
        size = 0
    if size > MAX_PARAMETERS:
        raise ConfigError(f"model {model_section['name']} would have {size:,} parameters",
                          f"at most {MAX_PARAMETERS:,}: make the model section's widths smaller")
    return attach_ema(cls(cfg, meta))


def read_run_config(run_dir: Path) -> Config:
    """config.yaml of a run, upgraded from older layouts and checked."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)", "give the folder `aigc train` wrote")
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path} is {path.stat().st_size:,} bytes", "restore the run's config.yaml")
        data = safe_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as e:
        raise ConfigError(f"{path} is not valid YAML: {e}", "restore the run's config.yaml") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds no mapping", "restore the run's config.yaml")
    cfg = from_dict(Config, family_train_defaults(upgrade(data)))
    cfg.check()
    return cfg


def read_meta(run_dir: Path) -> dict[str, Any]:
    """data.json: the facts about the training data the model was built for."""
    path = Path(run_dir) / "data.json"
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise CheckpointError(f"{path} is {path.stat().st_size:,} bytes", "restore it from the run")
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise CheckpointError(f"{path} is missing or damaged: {e}", "restore it from the run") from None
    return check_meta(meta, str(path), CheckpointError)


class Loaded:
    """A trained model plus the facts of its run; `sample()` is the thing you want.

    The model stays in eval mode and sampling never changes it, so threads may share one Loaded.
    """

    def __init__(self, model: GenerativeModel, run_dir: Path, checkpoint: Path, config: Config,
                 skipped: list[str] | None = None, device: torch.device | str = "cpu"):
        self.model, self.run_dir, self.checkpoint, self.config = model, run_dir, checkpoint, config
        self.skipped = list(skipped or [])  # newer checkpoints that failed their check and were passed over
        # `model` stays on the CPU (likelihoods, encoders and features take CPU tensors); sampling runs
        # on a copy on `device` and hands back CPU tensors
        self.device = torch.device(device)
        self._sampler = model if self.device.type == "cpu" else copy.deepcopy(model).to(self.device)

    @property
    def modality(self) -> str:
        return self.model.modality

    @property
    def class_names(self) -> list[str]:
        return list(self.model.meta.get("class_names") or [])

    @property
    def what(self) -> str:
        return f"{self.config.model['name']} runs"

    @property
    def prompt_is_prefix(self) -> bool:
        """Whether `prompt=` is the family's own option (text: every sample starts with it) rather than
        words matched to a conditional model's classes."""
        return "prompt" in {f.name for f in fields(self.model.SampleOptions)}

    def match(self, prompt: str) -> Any:
        """Free words -> the class of this conditional model they mean, or a Mix of classes, with every
        class's score (an aigc.prompts.Answer; its `.label` is what `sample(labels=...)` takes). Below
        the threshold: one ConfigError naming what the model makes. Loads the sentence model once."""
        from .models.capabilities import is_conditional
        from .prompts import match

        if not is_conditional(self.model):
            raise ConfigError(f"a prompt does not apply to this {self.config.model['name']} run: it was trained "
                              "without labels, so words have no class to pick",
                              "train a conditional recipe (e.g. fashion-cflow) to sample from words")
        return match(prompt, self.class_names, self.model.meta.get("class_descriptions"))

    def prompt_labels(self, options: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        """Options with a class-matching `prompt` turned into `labels` (one column), and the match
        (None when there is no such prompt: none given, or text's own prefix)."""
        if options.get("prompt") is None or self.prompt_is_prefix:
            return options, None
        options = dict(options)
        prompt = options.pop("prompt")
        if options.get("labels") is not None:
            raise ConfigError("both a prompt and labels were given", "give one of them")
        answer = self.match(prompt)
        options["labels"] = [answer.label]
        return options, answer

    def sample_options(self, **options: Any) -> dict[str, Any]:
        """The family's full, checked options for these (one ConfigError naming a bad one); a prompt
        to a conditional model becomes its labels (`prompt_labels`)."""
        options, _ = self.prompt_labels(options)
        return asdict(parse_sample_options(self.model.SampleOptions, options, self.what))

    def sample(self, n: int = 16, *, seed: int | None = None, **options: Any) -> Any:
        """n samples (images: float [n, C, H, W] in [0, 1]; text: a list of strings).

        Options are the family's (`model.SampleOptions`): e.g. labels= and ema= for GANs,
        temperature=, top_k=, prompt= for text. An unknown or impossible one is a ConfigError.
        """
        self.check_n(n)
        opts = self.sample_options(**options)
        return self._sample(n, self._generator(seed), opts)

    def _sample(self, n: int, generator: torch.Generator | None, opts: dict[str, Any]) -> Any:
        with on_device(self.device):
            return to_cpu(self._sampler.sample(n, generator=generator, **opts))

    def check_n(self, n: Any, fmt: str | None = None) -> int:
        """n must be a whole number from 1 to what the modality holds at once (or writes in `fmt`)."""
        from .plugins import MODALITIES

        limit = MODALITIES.get(self.modality).sample_limit(self.model.meta, fmt)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= limit:
            raise ConfigError(f"n is {n!r}" if not isinstance(n, int) else f"--n is {n:,}",
                              f"ask for 1 to {limit:,} samples" + (f" as {fmt}" if fmt else " at once"))
        return n

    def sample_chunks(self, n: int, chunk: int, *, seed: int | None = None, **options: Any) -> Iterator[Any]:
        """n samples in chunks of `chunk`, drawn from one random stream (for writing large outputs)."""
        opts = self.sample_options(**options)
        self.check_n(min(n, chunk))
        g = self._generator(seed)
        for start in range(0, n, chunk):
            yield self._sample(min(chunk, n - start), g, opts)

    @staticmethod
    def _generator(seed: int | None) -> torch.Generator | None:
        if seed is None:
            return None
        check_int(seed, "seed", 0, MAX_SEED, ConfigError)
        return torch.Generator().manual_seed(seed)

    def sample_pil(self, n: int = 16, **kwargs: Any):
        """Images as one PIL grid (see aigc.io.to_pil for single images); with several `labels`,
        one column per label (aigc.io.label_grid), else a square."""
        from .io import label_grid, to_pil

        nrow = None
        if kwargs.get("labels") is not None:
            kwargs["labels"], nrow = label_grid(kwargs["labels"], n)
        return to_pil(self.sample(n, **kwargs), nrow)

    def __repr__(self) -> str:
        return f"Loaded({self.config.model['name']}, {self.run_dir}, {self.checkpoint.name})"


def load(run_dir: str | Path, checkpoint: str = "latest", *, warn: Callable[[str], None] | None = None,
         device: str = "cpu") -> Loaded:
    """Rebuild a run's model from config.yaml + data.json and its newest intact checkpoint.

    `checkpoint` may be "latest", "best" (marked by evaluation during training) or a name like
    "step-00001000". Only safetensors, JSON and YAML are read: nothing is unpickled. A newer
    checkpoint that fails its check is passed over with a warning (on stderr unless `warn` says
    otherwise) and named in `Loaded.skipped`. `device` (cpu, auto, cuda, cuda:N, mps) is where
    `sample` runs.
    """
    run_dir = Path(run_dir)
    where = resolve_device(device, what="--device")
    if run_dir.is_file():
        check_safetensors(run_dir)  # refuses pickles with a reason before anything else
        raise CheckpointError(f"{run_dir} is a file", "give the run directory that holds config.yaml")
    cfg = read_run_config(run_dir)
    model = build_model(cfg.model, read_meta(run_dir))
    skipped: list[str] = []
    ckpt = find_checkpoint(run_dir, checkpoint, warn=warn or (lambda m: print(m, file=sys.stderr)), skipped=skipped)
    if ckpt is None:
        raise CheckpointError(f"{run_dir} has no intact checkpoint", "train it first, or resume it with --resume")
    load_checkpoint(ckpt, model)
    model.eval()
    return Loaded(model, run_dir, ckpt, cfg, skipped, where)
