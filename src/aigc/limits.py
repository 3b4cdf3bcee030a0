"""Upper bounds on what a small input may ask of memory or time, and the checks that hold them.

Each is far above what a CPU toolkit's real use needs and far below what would exhaust a machine;
crossing one is a one-line error that states the limit. Every layer may import this leaf.
"""
from __future__ import annotations

from typing import Any

from .errors import UserError

MAX_CLASSES = 10_000           # labels a dataset may have
MAX_DESCRIPTION = 2_000        # characters of one class's description (data.descriptions)
MAX_VOCAB = 65_536             # distinct characters of a text dataset
MAX_LINE_CHARS = 10_000        # characters of one line of a lines: source
MAX_TEXT_BYTES = 256 << 20     # a text or lines file
MAX_EXPLORE = 100              # rows, steps or neighbours of one `aigc explore` picture
MAX_SIDE = 1024                # pixels of an image side (data.image_size, a stored shape)
MAX_ITEM_VALUES = 4 * MAX_SIDE * MAX_SIDE   # values of one data item (C*H*W)
MAX_IMAGE_PIXELS = 50_000_000  # pixels of one image file decoded (a 144-megapixel file is refused)
MAX_FOLDER_ENTRIES = 1_000_000  # files and folders visited when walking an image folder
MAX_WIDTH = 65_536             # a layer width, latent size or embedding size
MAX_LAYERS = 256               # stacked layers or heads
MAX_PARAMETERS = 500_000_000   # parameters of one model (2 GB of float32 before optimizer state)
MAX_THREADS = 256
MAX_SEED = 2**63 - 1
MAX_SAMPLES = 1_000_000        # samples one `aigc sample` writes (npz is written in chunks)
MAX_GRID = 10_000              # images in one PNG grid
MAX_TEXT_SAMPLES = 100_000
MAX_EVAL_N = 100_000           # samples one evaluation measures
MAX_CONFIG_BYTES = 1 << 20     # a YAML config file
MAX_JSON_BYTES = 64 << 20      # a run's data.json (text runs carry their training lines' hashes)


def check_int(value: Any, name: str, lo: int, hi: int, error: type[UserError]) -> int:
    """value must be a whole number in [lo, hi]; else one `error` that names it and the limit."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{name} is {value!r}", "it must be a whole number")
    if not lo <= value <= hi:
        raise error(f"{name} is {value:,}", f"use {lo:,} to {hi:,}")
    return value


def check_sizes(cfg: Any, section: str, names: tuple[str, ...], hi: int, error: type[UserError]) -> None:
    """Each named field (a number or a list of numbers) of a config dataclass lies in [1, hi]."""
    for name in names:
        value = getattr(cfg, name)
        for i, v in enumerate(value if isinstance(value, list) else [value]):
            where = f"{section}.{name}" + (f"[{i}]" if isinstance(value, list) else "")
            check_int(v, where, 1, hi, error)


def check_meta(meta: Any, where: str, error: type[UserError]) -> dict[str, Any]:
    """The facts about a dataset (a run's data.json, a prepared set's manifest): types and bounds
    of every field aigc reads from them, so a lying file is one line, never a terabyte allocation."""
    def bad(what: str) -> UserError:
        return error(f"{where}: {what}", "restore the file from the run, or prepare the data again")

    if not isinstance(meta, dict):
        raise bad("it holds no mapping")
    shape = meta.get("shape")
    if shape is not None:
        if not isinstance(shape, list) or not 1 <= len(shape) <= 4 or \
                not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_SIDE for d in shape):
            raise bad(f"'shape' is {shape!r}; each of at most 4 sizes must lie in 1..{MAX_SIDE}")
        values = 1
        for d in shape:
            values *= d
        if values > MAX_ITEM_VALUES:
            raise bad(f"'shape' {shape} holds {values:,} values per item, more than {MAX_ITEM_VALUES:,}")
    for key, lo, hi in (("sample_rate", 1000, 192_000), ("samples", 1, MAX_ITEM_VALUES)):
        if meta.get(key) is not None:
            check_int(meta[key], f"{where}: '{key}'", lo, hi, error)
    names = meta.get("class_names")
    if names is not None and (not isinstance(names, list) or len(names) > MAX_CLASSES
                              or not all(isinstance(s, str) and len(s) <= 200 for s in names)):
        raise bad(f"'class_names' must be a list of at most {MAX_CLASSES:,} short strings")
    described = meta.get("class_descriptions")
    if described is not None and (not isinstance(described, dict) or len(described) > MAX_CLASSES or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 200 and len(v) <= MAX_DESCRIPTION
            for k, v in described.items())):
        raise bad(f"'class_descriptions' must map at most {MAX_CLASSES:,} class names to texts of at most "
                  f"{MAX_DESCRIPTION} characters")
    k = meta.get("num_classes")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_CLASSES
                          or (names is not None and k != len(names))):
        raise bad(f"'num_classes' is {k!r}")
    vocab = meta.get("vocab")
    if vocab is not None and (not isinstance(vocab, (list, str)) or len(vocab) > MAX_VOCAB
                              or not all(isinstance(c, str) and len(c) == 1 for c in vocab)):
        raise bad(f"'vocab' must be at most {MAX_VOCAB:,} single characters")
    block = meta.get("block_size")
    if block is not None:
        check_int(block, f"{where}: 'block_size'", 1, MAX_LINE_CHARS + 2, error)
    if meta.get("kind") not in (None, "lines", "text"):
        raise bad(f"'kind' is {meta.get('kind')!r}")
    codec = meta.get("codec")
    if codec is not None and (not isinstance(codec, str) or not 0 < len(codec) <= 64):
        raise bad(f"'codec' is {codec!r}")
    tokens = meta.get("tokens")
    if tokens is not None and (not isinstance(tokens, list) or len(tokens) > MAX_VOCAB
                               or not all(isinstance(t, str) and 0 < len(t) <= 32 for t in tokens)):
        raise bad(f"'tokens' must be at most {MAX_VOCAB:,} short names")
    meters = meta.get("meters")
    if meters is not None and (not isinstance(meters, list) or len(meters) > 64
                               or not all(isinstance(m, str) and len(m) <= 8 for m in meters)):
        raise bad("'meters' must be a short list of meters such as '4/4'")
    prompts = meta.get("prompts")
    if prompts is not None:
        size = len(tokens or [])
        if not isinstance(prompts, list) or len(prompts) > MAX_CLASSES or not all(
                isinstance(p, dict) and isinstance(p.get("name", ""), str) and isinstance(p.get("mode", ""), str)
                and isinstance(p.get("ids"), list) and len(p["ids"]) <= MAX_LINE_CHARS
                and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < size for i in p["ids"])
                for p in prompts):
            raise bad(f"'prompts' must be at most {MAX_CLASSES:,} pieces of token ids below {size}")
    bars = meta.get("train_bars")
    if bars is not None and (not isinstance(bars, dict) or not isinstance(bars.get("hashes"), str)
                             or not isinstance(bars.get("lengths"), list)
                             or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in bars["lengths"])
                             or sum(bars["lengths"]) * 8 > len(bars["hashes"]) * 3 // 4):
        raise bad("'train_bars' must hold base64 bar hashes and each piece's count of them")
    hashes = meta.get("train_hashes")
    if hashes is not None and not isinstance(hashes, str):
        raise bad("'train_hashes' must be text")
    return meta
