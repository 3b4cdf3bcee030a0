"""One training per run folder: an exclusive lock (flock) held from set-up to the last write.

The kernel drops the lock when its process dies, even by SIGKILL, so a killed run never leaves
a stale lock behind; the lock file records who holds it, so the refusal can name the process.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from ..errors import ConfigError
from ..files import make_dirs, write_failed

LOCK_NAME = ".lock"


class RunLock:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        make_dirs(self.run_dir)
        path = self.run_dir / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise write_failed(path, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise ConfigError(f"{self.run_dir} is being trained by another process ({holder})",
                              "wait for it to finish, stop it, or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __del__(self) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {int(info['pid'])} on {info.get('host', '?')}, started {info.get('started', '?')}"
    except (ValueError, KeyError, TypeError, OSError):
        return "pid unknown"
