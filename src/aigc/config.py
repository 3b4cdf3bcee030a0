"""Run configs: dataclasses with a YAML round-trip, `--set a.b=c` overrides and named recipes."""
from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, closest, unknown
from .limits import (
    MAX_CONFIG_BYTES,
    MAX_DESCRIPTION,
    MAX_EVAL_N,
    MAX_LINE_CHARS,
    MAX_SEED,
    MAX_SIDE,
    MAX_THREADS,
    check_int,
)


@dataclass
class DataConfig:
    """Where the data comes from and how it is shaped before training."""

    source: str = "fashion-mnist"     # name or prefix:PATH (fashion-mnist, digits, folder:DIR, ...)
    root: str | None = None           # folder holding the files of a named dataset
    image_size: int | None = None     # square side after resize/crop; None keeps the source's
    channels: int | None = None       # 1 (grayscale) or 3 (RGB); None keeps the source's
    crop: str = "center"              # center | random | none: how non-square images become square
    limit: int | None = None          # use only the first N training items (quick runs)
    block_size: int = 64              # text: window length for continuous text
    test_fraction: float = 0.1        # used only where the source has no test split
    split_seed: int = 3407
    sample_rate: int | None = None    # audio: Hz the clips are resampled to (default 8000)
    seconds: float | None = None      # audio: clip length; longer files are cut around their loudest part
    label_pattern: str | None = None  # audio: labels from file names, e.g. "{label}_{speaker}_{index}"
    split_pattern: str | None = None  # audio: test split by a name field, e.g. "index=0-4"
    frames: int | None = None         # video: frames a clip (default 16)
    fps: int | None = None            # video: frames a second of generated clips (default 8; clips: the files')
    items: int | None = None          # video, moving:SOURCE: items in each clip (default 1)
    item_size: int | None = None      # video, moving:SOURCE: an item's side in pixels (default half the frame)
    speed: list[float] | None = None  # video, moving:SOURCE: [lowest, highest] pixels a frame (default [1, 3])
    clips: int | None = None          # video, moving:SOURCE: training clips generated (default 10000)
    descriptions: dict[str, str] | None = None  # {class: "phrase; phrase"}: what prompts are matched to

    def check(self) -> None:
        _positive(self, "data", "image_size", "limit", "block_size")
        if self.image_size is not None:
            check_int(self.image_size, "data.image_size", 1, MAX_SIDE, ConfigError)
        check_int(self.block_size, "data.block_size", 1, MAX_LINE_CHARS, ConfigError)
        if self.channels not in (None, 1, 3):
            raise ConfigError(f"data.channels is {self.channels}", "use 1 (grayscale) or 3 (RGB)")
        if self.crop not in ("center", "random", "none"):
            raise ConfigError(f"data.crop is '{self.crop}'", "use center, random or none")
        if not 0.0 <= self.test_fraction < 1.0:
            raise ConfigError(f"data.test_fraction is {self.test_fraction}", "use a value in [0, 1)")
        if self.sample_rate is not None or self.seconds is not None:
            from .audio import audio_settings

            audio_settings(self)
        if self.descriptions is not None:
            self.descriptions = {str(k): v for k, v in self.descriptions.items()}  # YAML reads `3: three` as an int key
            for name, text in self.descriptions.items():
                if not isinstance(text, str) or not 0 < len(text) <= MAX_DESCRIPTION:
                    raise ConfigError(f"data.descriptions[{name!r}] is {text!r}",
                                      f"give a class a text of 1 to {MAX_DESCRIPTION} characters, phrases split by ';'")
        if any(v is not None for v in (self.frames, self.fps, self.items, self.item_size, self.speed, self.clips)):
            from .data.video import video_settings

            video_settings(self)


SCHEDULES = ("constant", "cosine", "linear")


@dataclass
class TrainConfig:
    """The loop's settings; the maths of each step belongs to the model."""

    steps: int = 2000
    batch_size: int = 64
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    weight_decay: float = 0.0
    log_every: int = 50               # steps between metrics.jsonl / TensorBoard rows
    sample_every: int = 500           # steps between sample grids from fixed noise (0: never)
    ckpt_every: int = 1000            # steps between checkpoints (a final one is always written)
    keep_last: int = 3                # checkpoints kept on disk
    threads: int | None = None        # torch intra-op threads; None: all cores (shared by the processes of a job)
    device: str = "cpu"               # cpu | auto (a GPU when there is one) | cuda | cuda:N | mps
    eval_every: int = 0               # steps between cheap evaluations (0: never)
    eval_n: int = 2000                # samples per cheap evaluation
    max_rollbacks: int = 3            # non-finite losses: rollbacks (lr halved) before giving up
    progress: bool = True             # tqdm bar
    precision: str = "fp32"           # fp32 | bf16: bf16 autocasts matmuls/convs (changes numerics)
    compile: bool = False             # torch.compile the model's networks (same maths, slow first steps)
    channels_last: bool = True        # conv weights/activations in NHWC layout: faster CPU convs (rounding only)
    schedule: str = "constant"        # learning rate over the run: constant | cosine | linear (decay to min_lr)
    warmup: int = 0                   # steps of linear warm-up from 0 to the rate (any schedule)
    min_lr: float = 0.1               # where cosine/linear end, as a fraction of the rate
    grad_clip: float = 0.0            # max global gradient norm per optimizer step (0: off)

    def check(self) -> None:
        _positive(self, "train", "steps", "batch_size", "log_every", "keep_last", "threads", "eval_n")
        if self.threads is not None:
            check_int(self.threads, "train.threads", 1, MAX_THREADS, ConfigError)
        from .devices import check_device_name

        check_device_name(self.device)
        check_int(self.eval_n, "train.eval_n", 1, MAX_EVAL_N, ConfigError)
        _non_negative(self, "train", "sample_every", "ckpt_every", "eval_every", "max_rollbacks",
                      "weight_decay", "warmup", "grad_clip")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ConfigError(f"train.lr is {self.lr}", "use a positive learning rate such as 2e-4")
        for key in ("grad_clip", "min_lr", "weight_decay"):
            if not math.isfinite(getattr(self, key)):
                raise ConfigError(f"train.{key} is {getattr(self, key)}", "use a finite number")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"train.schedule is '{self.schedule}'", f"use {', '.join(SCHEDULES)}")
        if not 0.0 < self.min_lr <= 1.0:
            raise ConfigError(f"train.min_lr is {self.min_lr}", "use a fraction of train.lr in (0, 1], e.g. 0.1")
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(f"train.precision is '{self.precision}'", "use fp32 or bf16")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"train.betas is {self.betas}", "use two numbers in [0, 1), e.g. [0.5, 0.999]")


@dataclass
class Config:
    """Everything needed to rebuild and retrain a run."""

    name: str = "run"
    description: str = ""
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=lambda: {"name": "gan-mlp"})
    train: TrainConfig = field(default_factory=TrainConfig)

    def check(self) -> None:
        check_int(self.seed, "seed", 0, MAX_SEED, ConfigError)
        self.data.check()
        self.train.check()
        model_config(self.model)  # validates the model section against its family's dataclass

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


def _positive(obj: Any, section: str, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        if v is not None and v <= 0:
            raise ConfigError(f"{section}.{n} is {v}", "it must be a positive number")


def _non_negative(obj: Any, section: str, *names: str) -> None:
    for n in names:
        v = getattr(obj, n)
        if v is not None and v < 0:
            raise ConfigError(f"{section}.{n} is {v}", "it must be zero or more")


# ---------------------------------------------------------------- dict -> dataclass

def coerce_value(value: Any, tp: Any, where: str) -> Any:
    """Check (and gently convert) one value against a type hint."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce_value(value, a, where)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is Any:
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} is {value!r}", "it must be a list, e.g. [1, 2]")
        (item,) = typing.get_args(tp)[:1] or (Any,)
        return [coerce_value(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} is {value!r}", "it must be a mapping of keys to values")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} is {value!r}", "it must be true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"{where} is {value!r}", "it must be a whole number")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads 1e-4 (no dot) as a string
            except ValueError:
                pass
        raise ConfigError(f"{where} is {value!r}", "it must be a number")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where} is {value!r}", "it must be text")
    return value


def from_dict(cls: type, data: Any, where: str = "config") -> Any:
    """Build dataclass `cls` from a mapping; unknown keys and wrong types are ConfigErrors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where} is {data!r}", "it must be a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            guess = closest(str(key), fields)
            hint = f"did you mean '{_join(where, guess)}'?" if guess else f"known keys: {', '.join(fields)}"
            raise ConfigError(f"unknown key '{_join(where, key)}'", hint)
    kwargs = {k: coerce_value(v, hints[k], _join(where, k)) for k, v in data.items()}
    return cls(**kwargs)


def _join(where: str, key: Any) -> str:
    return str(key) if where == "config" else f"{where}.{key}"


def model_config(model: dict[str, Any]) -> Any:
    """The model section as its family's config dataclass (validated)."""
    from .plugins import MODELS

    if not isinstance(model, dict) or "name" not in model:
        raise ConfigError("the model section has no 'name'", "add e.g. `model: {name: dcgan}`")
    cls = MODELS.get(str(model["name"]))
    params = {k: v for k, v in model.items() if k != "name"}
    cfg = from_dict(cls.Config, params, "model")
    if hasattr(cfg, "check"):
        cfg.check()
    return cfg


# ---------------------------------------------------------------- recipes and overrides

def recipe_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("aigc.recipes").iterdir() if p.name.endswith(".yaml"))


def recipe_text(name: str) -> str:
    path = resources.files("aigc.recipes") / f"{name}.yaml"
    if not path.is_file():
        raise unknown("recipe", name, recipe_names())
    return path.read_text(encoding="utf-8")


class StrictLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key '{key}' is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def safe_yaml(text: str) -> Any:
    """yaml.safe_load with duplicate keys refused; a structure nested too deep is a YAMLError too."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except RecursionError:
        raise yaml.YAMLError("it is nested too deeply") from None


def _parse_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        data = safe_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        problem = str(getattr(e, "problem", None) or e)
        special = any(p in problem for p in ("given twice", "nested too deeply"))
        what = f" ({problem})" if special else ""
        raise ConfigError(f"{where} is not valid YAML{at}{what}",
                          "give each key once" if "given twice" in what else
                          "fix the syntax (indentation, colons)") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where} holds {type(data).__name__}, not a mapping", "write `key: value` lines")
    return data


def raw_config(spec: str) -> dict[str, Any]:
    """A recipe name or a YAML file path, as a plain dict."""
    path = Path(spec)
    if spec.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise ConfigError(f"config file {spec} does not exist", "check the path, or name a recipe")
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"config file {spec} is {size:,} bytes",
                              f"a config is at most {MAX_CONFIG_BYTES:,} bytes of YAML")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"config file {spec} is not UTF-8 text", "save it as UTF-8 YAML") from None
        return _parse_yaml(text, f"config file {spec}")
    return _parse_yaml(recipe_text(spec), f"recipe {spec}")


def set_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one `a.b=c` to a nested dict; the value is parsed as YAML (numbers, lists, true)."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r} has no '='", "write it as key.sub=value, e.g. train.steps=500")
    key, _, text = assignment.partition("=")
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {assignment!r} names no key", "write it as key.sub=value")
    try:
        value = safe_yaml(text) if text.strip() else None
    except yaml.YAMLError as e:
        if "given twice" in str(e):
            raise ConfigError(f"--set {assignment!r}: {getattr(e, 'problem', e)}", "give each key once") from None
        value = text  # not YAML: taken as the text it is
    node = data
    for p in parts[:-1]:
        child = node.get(p)
        if child is None:
            child = node[p] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: '{p}' is a value, not a section", "check the key path")
        node = child
    node[parts[-1]] = value


# Keys that moved between sections (old place -> new place); configs written before are upgraded on read.
MOVED = {("model", "grad_clip"): ("train", "grad_clip"), ("model", "schedule"): ("train", "schedule"),
         ("model", "warmup"): ("train", "warmup"), ("model", "min_lr"): ("train", "min_lr")}


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Move keys an older aigc kept elsewhere (the text families' schedule and clipping were
    model.* keys before they became train.* for every family); a value given in both places is
    a conflict the user must settle."""
    for (old_sec, key), (new_sec, new_key) in MOVED.items():
        old = data.get(old_sec)
        if not isinstance(old, dict) or key not in old:
            continue
        new = data.setdefault(new_sec, {})
        if not isinstance(new, dict):
            continue
        value = old.pop(key)
        if new_key in new and new[new_key] != value:
            raise ConfigError(f"{old_sec}.{key} and {new_sec}.{new_key} are both set",
                              f"keep only {new_sec}.{new_key} ({old_sec}.{key} is its old name)")
        new[new_key] = value
    return data


def family_train_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """Fill train.* keys the config leaves unset with the family's own defaults (`train_defaults`),
    e.g. the text families' gradient clipping at norm 1, which they applied themselves before the
    trainer took it over: their configs, old runs included, keep training as they did."""
    from .plugins import MODELS

    model, train = data.get("model"), data.setdefault("train", {})
    if isinstance(model, dict) and isinstance(train, dict) and "name" in model:
        defaults = MODELS.get(str(model["name"])).train_defaults
        for key, value in defaults.items():
            train.setdefault(key, value)
    return data


def load_config(spec: str | dict[str, Any], overrides: list[str] | None = None) -> Config:
    """Recipe name, YAML path or dict, plus `a.b=c` overrides -> a checked Config."""
    data = copy.deepcopy(spec) if isinstance(spec, dict) else raw_config(spec)
    for item in overrides or []:
        set_override(data, item)
    family_train_defaults(upgrade(data))
    cfg = from_dict(Config, data)
    cfg.check()
    return cfg
