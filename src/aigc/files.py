"""Atomic file writes, kept free of heavy imports so every layer (data, metrics, train) can use them.

Every write that fails (a full disk, a read-only folder, a path under a file) becomes one
OutputError that names the path and the fix; whatever was already at the path is left as it was.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

from safetensors import SafetensorError

from .errors import OutputError

WRITE_ERRORS = (OSError, SafetensorError)  # safetensors raises its own type for ENOSPC, not OSError
PSEUDO_FS = ("/proc", "/sys", "/dev")  # kernel file systems: never an output folder, never walked for data


def write_reason(e: BaseException) -> str:
    """What went wrong with a write, in the system's words ("No space left on device")."""
    return e.strerror if isinstance(e, OSError) and e.strerror else str(e)


def write_failed(path: Path, e: BaseException) -> OutputError:
    """The one-line error for a write to `path` that raised `e`."""
    if isinstance(e, OutputError):
        return e
    reason = write_reason(e)
    full = (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "No space left" in reason
    hint = ("free disk space or choose another --out; files written before are intact" if full else
            "choose an --out in a folder you can write to; files written before are intact")
    return OutputError(f"cannot write {path}: {reason}", hint)


def make_dirs(folder: Path) -> Path:
    """mkdir -p, or one OutputError (a path under a file, a read-only or pseudo file system)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot write {folder}: it is a file, not a folder", "choose another --out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_failed(folder, e) from None
    return folder


def check_output_file(path: Path) -> Path:
    """Refuse, before any work, an output file we could not write: an existing non-regular file
    (a device such as /dev/null, a folder), or a place whose nearest existing folder is unwritable."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise OutputError(f"--out {path} is not a regular file", "give the path of a file to create, e.g. out.png")
    check_output_folder(path.parent)
    return path


def check_output_folder(folder: Path) -> Path:
    """Refuse, before any work, a folder that could not be created or written (nothing is created)."""
    folder = Path(folder)
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK) or str(probe.resolve()).startswith(PSEUDO_FS):
        raise OutputError(f"cannot write to {folder}", "choose an --out in a folder you can write to")
    return folder


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Write through a temporary file and rename, so a reader never sees half a file."""
    path = Path(path)
    make_dirs(path.parent)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except WRITE_ERRORS as e:
        raise write_failed(path, e) from None
    finally:
        try:
            if tmp.exists():
                tmp.unlink()
        except OSError:
            pass
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """atomic_write of UTF-8 text."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
