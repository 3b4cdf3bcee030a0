"""What `aigc eval` (or a caller of aigc.metrics) asks for: one explicit request object.

The common fields apply to every modality; the optional ones apply where a modality says it
honours them (`Modality.eval_options`), and a request that sets one elsewhere is refused in one
line that names the flag, instead of being silently ignored.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, DataError
from ..limits import MAX_EVAL_N, MAX_SEED, check_int

MAX_INTERVALS = 1000


@dataclass
class EvalRequest:
    n: int | None = None                  # samples to measure (None: the modality's standard)
    seed: int = 0
    split: str = "test"                   # the held-out split samples are compared with
    checkpoint: str = "latest"
    device: str = "cpu"                   # where samples are drawn (cpu, auto, cuda, cuda:N, mps)
    out_dir: Path | None = None           # where figures go (closest pairs)
    name: str | None = None               # figures' file names start with it (one eval's files apart from another's)
    echo: Callable[[str], None] = print
    # optional: honoured where the modality names them in eval_options
    metrics: list[str] | None = None      # section names; None: all that apply
    inception_weights: str | None = None
    floor: bool = True                    # also compute (or reuse) the real-data floor
    iwae_k: list[int] | None = None       # families with a latent likelihood: the bounds' k
    likelihood_n: int | None = None       # held-out items for those bounds
    intervals: int | None = None          # half-samples behind 95% intervals (None: the modality's default, 0: none)

    OPTIONAL = ("metrics", "inception_weights", "floor", "iwae_k", "likelihood_n", "intervals")
    FLAGS = {"metrics": "--metrics", "inception_weights": "--inception-weights", "floor": "--no-floor",
             "iwae_k": "--iwae-k", "likelihood_n": "--likelihood-n", "intervals": "--intervals"}

    def given(self) -> list[str]:
        """The optional fields set to something other than their default."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return [k for k in self.OPTIONAL if getattr(self, k) != defaults[k]]

    def refuse_unhonoured(self, honoured: frozenset[str] | set[str], what: str) -> None:
        for key in self.given():
            if key not in honoured:
                raise ConfigError(f"{self.FLAGS[key]} does not apply to {what}", "leave it out")

    def check(self) -> None:
        if self.n is not None and self.n < 2:
            raise ConfigError(f"--n is {self.n}", "evaluate at least 2 samples (10000 is the standard for images)")
        if self.n is not None and self.n > MAX_EVAL_N:
            raise ConfigError(f"--n is {self.n:,}", f"evaluate at most {MAX_EVAL_N:,} samples")
        check_int(self.seed, "--seed", 0, MAX_SEED, ConfigError)
        if self.intervals is not None:
            check_int(self.intervals, "--intervals", 0, MAX_INTERVALS, ConfigError)
            if self.intervals == 1:
                raise ConfigError("--intervals is 1", "use 0 (no intervals) or at least 2 half-samples, e.g. 20")
        if self.split not in ("test", "val"):
            raise ConfigError(f"split '{self.split}'", "use test or val")

    def n_or(self, default: int) -> int:
        return default if self.n is None else self.n


def samples_kept(path: Path, count: int, n: int | None) -> int:
    """How many of the `count` clips in a file at `path` to measure: all, or the first n (one line if
    there are fewer than 2, or fewer than n)."""
    if count < 2:
        raise DataError(f"{path} holds {count} clip(s)", "evaluate at least 2 samples")
    if n is not None and n > count:
        raise ConfigError(f"--n is {n:,} but {path} holds {count:,} clips", f"use --n {count} or fewer")
    return count if n is None else n


def asked_labels(labels: list[str] | None, names: list[str], keep: int,
                 echo: Callable[[str], None] | None = None):
    """The class index each of the first `keep` samples was asked for, from the label names stored
    with them; None (with a note to `echo`, if given) unless every one is a class of the data."""
    import torch

    if labels is None or not names:
        return None
    if all(lb in names for lb in labels[:keep]):
        return torch.tensor([names.index(lb) for lb in labels[:keep]])
    if echo is not None:
        echo(f"note: the clips' labels are not all classes of the data ({', '.join(names[:10])}): no label accuracy")
    return None
