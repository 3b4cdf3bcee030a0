"""Reading safetensors files someone handed us: the header is checked before any allocation.

The one place that reads tensors from a user's file (checkpoints, prepared datasets, Inception
weights). A pickle is refused with the reason, never opened: unpickling can run code.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from .errors import CheckpointError

PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle"}
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8,
               "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit is 100 MB; we check before reading it


def check_safetensors(path: Path, pickle_hint: str = "convert it to safetensors in a trusted environment") -> None:
    """Refuse a file that is not safetensors, or whose header lies, before any large allocation."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(f"{path} is a pickle file; aigc never unpickles files (they can run code)",
                              pickle_hint)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path} is truncated (no safetensors header)", "use an intact copy")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER or 8 + n > size:
                raise CheckpointError(f"{path} has a header of {n} bytes in a {size}-byte file",
                                      "the file is damaged or not safetensors")
            header = json.loads(f.read(n))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"cannot read {path} as safetensors: {e}", "use an intact safetensors file") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} has a malformed safetensors header", "use an intact file")
    body = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, end = info["data_offsets"]
            if not isinstance(start, int) or not isinstance(end, int):
                raise ValueError
            itemsize = DTYPE_BYTES[info["dtype"]]
            numel = 1
            for d in info["shape"]:
                if not isinstance(d, int) or d < 0:
                    raise ValueError
                numel *= d
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}: tensor '{name}' has a malformed entry", "use an intact file") from None
        if not (0 <= start <= end <= body) or end - start != numel * itemsize:
            raise CheckpointError(f"{path}: tensor '{name}' claims more data than the file holds for it",
                                  "the file is damaged or was crafted; use an intact copy")


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    check_safetensors(path)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot load {path}: {e}", "use an intact safetensors file") from None
